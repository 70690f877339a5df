"""Benchmarks, measured side by side in one process; writes BENCHMARKS.md.

    python -m mtrl.bench                    # everything, on this machine's default device
    python -m mtrl.bench --only update --repeats 15

Update cost: every method's full SAC update (critic, actor, temperature) on the same batch, for the paper's
network size and for the CPU preset, interleaved round-robin so that drifts of the machine hit every method
alike; medians over repeats, as a ratio to `mtsac`.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from agents.mtsac import MTSAC
from mtrl.combiners import COMBINERS
from mtrl.config import Config, load_config
from mtrl.envs import NUM_TASKS, STATE_DIM
from mtrl.replay import MultiTaskReplay

ROOT = Path(__file__).resolve().parents[1]
PRESETS = {"paper (3x400, batch 1280)": ROOT / "configs/mt10.yaml",
           "cpu preset (2x256, batch 640)": ROOT / "configs/mt10_cpu.yaml"}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _filled_replay(cfg: Config, device: torch.device, transitions: int = 2000) -> MultiTaskReplay:
    rng = np.random.default_rng(0)
    replay = MultiTaskReplay(NUM_TASKS, transitions, STATE_DIM, 4, device)
    for _ in range(transitions):
        obs = rng.normal(size=(NUM_TASKS, STATE_DIM)).astype(np.float32)
        replay.add(obs, rng.uniform(-1, 1, (NUM_TASKS, 4)), rng.normal(size=NUM_TASKS), obs,
                   np.zeros(NUM_TASKS, bool))
    return replay


def update_costs(config_path: Path, device: torch.device, repeats: int, updates: int) -> dict[str, float]:
    """Median seconds per update for every method on one fixed batch."""
    agents = {}
    for method in COMBINERS:
        cfg = load_config(config_path, method=method)
        torch.manual_seed(0)
        agents[method] = MTSAC(cfg, STATE_DIM + NUM_TASKS, 4, NUM_TASKS, device)
    batch = _filled_replay(cfg, device).sample(cfg.sac.batch_size // NUM_TASKS)
    for agent in agents.values():  # warm-up: allocator, lazy init, first-call overheads
        for _ in range(3):
            agent.update(batch)
    samples: dict[str, list[float]] = {m: [] for m in agents}
    for _ in range(repeats):
        for method, agent in agents.items():
            _sync(device)
            start = time.perf_counter()
            for _ in range(updates):
                agent.update(batch)
            _sync(device)
            samples[method].append((time.perf_counter() - start) / updates)
    return {m: statistics.median(s) for m, s in samples.items()}


TARGETS = {"mtsac": 1.0, "ntkmtl_sr": 1.10, "famo": 1.10, "ntkmtl": 1.30, "pcgrad": 1.5, "cagrad": 1.5,
           "fairgrad": 1.5, "aligned_mtl": 1.5, "nashmtl": 2.0}


def update_section(device: torch.device, repeats: int, updates: int) -> list[str]:
    lines = ["## Update cost per method", "",
             "One full SAC update (critic + actor + temperature) on the same batch, every method interleaved "
             f"round-robin, median of {repeats} repeats of {updates} updates each; ratio to `mtsac`.", ""]
    header = "| method | target |"
    rows: dict[str, str] = {m: f"| `{m}` | <= {TARGETS[m]:.2f}x |" for m in COMBINERS}
    for name, path in PRESETS.items():
        costs = update_costs(path, device, repeats, updates)
        header += f" {name}: ms | ratio |"
        for method, seconds in costs.items():
            ratio = seconds / costs["mtsac"]
            verdict = "" if ratio <= TARGETS[method] + 1e-9 else " (missed)"
            rows[method] += f" {seconds * 1e3:.2f} | {ratio:.2f}x{verdict} |"
        print(f"{name}: " + ", ".join(f"{m} {costs[m] / costs['mtsac']:.2f}x" for m in costs))
    lines += [header, "|" + "---|" * (header.count("|") - 1)] + list(rows.values())
    return lines + [""]


def replay_section() -> list[str]:
    cfg = load_config(PRESETS["cpu preset (2x256, batch 640)"])
    replay = MultiTaskReplay(NUM_TASKS, 1000, STATE_DIM, 4)
    stored = sum(t.element_size() * t.numel() for t in (replay.obs, replay.next_obs, replay.action,
                                                          replay.reward, replay.terminal))
    per_transition = stored / (NUM_TASKS * 1000)
    raw = 4 * (STATE_DIM + STATE_DIM + 4 + 1 + 1)
    return ["## Replay memory", "",
            f"{per_transition:.0f} bytes per transition (float32 observation, next observation, action, reward, "
            f"terminal flag: {raw} raw bytes; ratio {per_transition / raw:.2f}x). The CPU preset's buffer of "
            f"{cfg.train.buffer_capacity:,} transitions takes {per_transition * cfg.train.buffer_capacity / 2**20:.0f} MiB.",
            ""]


def main() -> None:
    parser = argparse.ArgumentParser(description="Measure update cost and memory; write BENCHMARKS.md.")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--updates", type=int, default=10, help="updates per timed repeat")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "CPU"
    lines = ["# Benchmarks", "",
             f"Measured {time.strftime('%Y-%m-%d')} with `python -m mtrl.bench --repeats {args.repeats} "
             f"--updates {args.updates}` on {device.type} ({name}, {torch.get_num_threads()} torch threads, "
             f"{__import__('os').cpu_count()} logical cores), torch {torch.__version__}, "
             f"Python {platform.python_version()}.", ""]
    lines += update_section(device, args.repeats, args.updates)
    lines += replay_section()
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
