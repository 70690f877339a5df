"""The multi-task SAC agent: `MTSAC(cfg, obs_dim, action_dim, num_tasks, device)`, with `update(batch)`,
`act(obs, deterministic)` and its `state_dict`. Its code is `mtrl/sac.py` (the library's trainer, benchmarks
and sweeps build it too); read `MTSAC.update` there to follow one batch from the replay to the optimizer step."""

from mtrl.sac import MTSAC

__all__ = ["MTSAC"]
