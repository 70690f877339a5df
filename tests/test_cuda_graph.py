"""The update captured in a CUDA graph (`sac.cuda_graph`) computes what the eager update computes. Runs where
there is a GPU (the GPU check's machine); on a CPU only the refusals are checked."""

from __future__ import annotations

import pytest
import torch

from mtrl.config import ConfigError, load_config
from mtrl.envs import NUM_TASKS, STATE_DIM

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")


def test_cuda_graph_is_refused_for_a_method_that_keeps_state_and_on_the_cpu():
    with pytest.raises(ConfigError, match="supports the methods whose rule can be recorded in a CUDA graph"):
        load_config("configs/mt10.yaml", ["sac.cuda_graph=true"], method="famo")
    with pytest.raises(ConfigError, match="needs a CUDA device"):
        load_config("configs/mt10.yaml", ["sac.cuda_graph=true", "device=cpu"])


@cuda
@pytest.mark.parametrize("preset", ["configs/mt10.yaml", "configs/mt10_gpu.yaml"])  # MSE; categorical, residual
def test_graphed_update_follows_the_eager_update(preset):
    from mtrl.apps.bench import _filled_replay
    from mtrl.sac import MTSAC

    device = torch.device("cuda")
    replay = _filled_replay(device, 300)
    agents = []
    for graphed in (False, True):
        torch.manual_seed(0)
        cfg = load_config(preset, ["net.hidden_dim=64", "sac.compile=false",
                                   f"sac.cuda_graph={str(graphed).lower()}"])
        agents.append(MTSAC(cfg, STATE_DIM + NUM_TASKS, 4, NUM_TASKS, device))
    generator = torch.Generator(device).manual_seed(1)
    for update in range(8):  # 3 eager warm-up updates, the recording, then replays
        batch = replay.sample(16, generator=generator)
        metrics = []
        for agent in agents:
            torch.manual_seed(update)
            metrics.append(agent.update(batch))
        for key in ("loss/critic", "q", "train/nonfinite_updates"):
            torch.testing.assert_close(metrics[1][key], metrics[0][key], rtol=1e-3, atol=1e-4)
    for eager, graphed in zip(agents[0].critic.parameters(), agents[1].critic.parameters()):
        torch.testing.assert_close(graphed, eager, rtol=1e-3, atol=1e-4)
