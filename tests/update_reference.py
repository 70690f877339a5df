"""Twenty SAC updates on fixed synthetic batches, for every method and network shape: the per-task losses of
each update and the parameters after the last one.

`tests/data/update_reference.pt` holds these numbers as the code produced them when they were last recorded;
`tests/test_update_reference.py` checks that the current code still produces them. A change that is meant to
alter the update's numbers records them anew, and says why in its commit:

    python -m tests.update_reference        # rewrites tests/data/update_reference.pt
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from agents.mtsac import MTSAC
from mtrl.config import Config, load_config
from mtrl.replay import MultiTaskReplay

REFERENCE = Path(__file__).resolve().parent / "data" / "update_reference.pt"
K, STATE, ACT, UPDATES = 10, 39, 4, 20
SMALL_NET = ["net.hidden_dim=32", "net.hidden_layers=2", "sac.batch_size=80"]  # 8 rows per task

# name -> (method, config overrides beyond SMALL_NET)
CASES: dict[str, tuple[str, list[str]]] = {
    "mtsac": ("mtsac", []),
    "ntkmtl": ("ntkmtl", []),
    "ntkmtl_n2": ("ntkmtl", ["methods.ntkmtl.subbatches=2"]),
    "ntkmtl_sr": ("ntkmtl_sr", []),
    "pcgrad": ("pcgrad", []),
    "cagrad": ("cagrad", []),
    "nashmtl_every3": ("nashmtl", ["methods.nashmtl.update_every=3"]),
    "fairgrad": ("fairgrad", []),
    "famo": ("famo", []),
    "aligned_mtl": ("aligned_mtl", []),
    "stl": ("mtsac", ["net.head_layers=3"]),
    "shared_mtsac": ("mtsac", ["net.head_layers=0"]),
    "shared_ntkmtl_sr": ("ntkmtl_sr", ["net.head_layers=0"]),
    "shared_pcgrad": ("pcgrad", ["net.head_layers=0"]),
    "ntkmtl_residual_categorical": ("ntkmtl", ["net.critic.residual=true", "net.critic.hidden_layers=3",
                                               "sac.critic_loss=categorical", "sac.bins=21"]),
    "ntkmtl_sr_layer_norm_clipped": ("ntkmtl_sr", ["net.layer_norm=true", "sac.critic_grad_clip=1.0",
                                                   "sac.actor_grad_clip=1.0"]),
}


def synthetic_batches(count: int, per_task: int, seed: int = 0) -> list:
    """`count` task-balanced batches from a replay filled with random transitions (some episode ends)."""
    rng = np.random.default_rng(seed)
    replay = MultiTaskReplay(K, 200, STATE, ACT, min_episode_length=10)
    obs = rng.normal(size=(K, STATE)).astype(np.float32)
    for step in range(200):
        next_obs = rng.normal(size=(K, STATE)).astype(np.float32)
        done = np.full(K, step % 50 == 49)
        terminated = done & (np.arange(K) % 3 == 0)
        replay.add(obs, rng.uniform(-1, 1, (K, ACT)).astype(np.float32), rng.normal(size=K), next_obs,
                   terminated, done)
        obs = next_obs
    generator = torch.Generator().manual_seed(seed)
    return [replay.sample(per_task, generator=generator) for _ in range(count)]


def run_updates(method: str, overrides: list[str]) -> dict[str, torch.Tensor]:
    """Losses `[UPDATES, 3, K]` (critic, actor, temperature) and the final parameters of one case."""
    torch.set_num_threads(1)
    cfg: Config = load_config(None, SMALL_NET + overrides, method=method)
    torch.manual_seed(0)
    agent = MTSAC(cfg, STATE + K, ACT, K, torch.device("cpu"))
    losses = []
    for batch in synthetic_batches(UPDATES, cfg.sac.batch_size // K):
        metrics = agent.update(batch)
        losses.append(torch.stack([metrics[f"loss/{name}"] for name in ("critic", "actor", "temperature")]))
    params = {f"actor.{n}": p.detach().clone() for n, p in agent.actor.named_parameters()}
    params |= {f"critic.{n}": p.detach().clone() for n, p in agent.critic.named_parameters()}
    params["log_alpha"] = agent.log_alpha.detach().clone()
    return {"losses": torch.stack(losses), **params}


def main() -> None:
    REFERENCE.parent.mkdir(exist_ok=True)
    torch.save({name: run_updates(method, overrides) for name, (method, overrides) in CASES.items()}, REFERENCE)
    print(f"wrote {REFERENCE}")


if __name__ == "__main__":
    main()
