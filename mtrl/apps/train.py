"""The command behind `python train.py` (its usage is there): a new run from a config and overrides, or a
stopped run resumed, trained until done or stopped by SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

import torch
import yaml

from mtrl.cli import ArgumentParser, device_arg
from mtrl.combiners import COMBINERS
from mtrl.config import Config, load_config
from mtrl.errors import RunError
from mtrl.run_lock import holds_run_data, run_dir_lock
from mtrl.signals import StopOnSignal
from mtrl.trainer import Trainer, describe_loop_time

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"  # the repository's: mtrl/apps/ -> ../../


def default_config() -> Path:
    """The GPU preset where a GPU can run it, the small CPU preset elsewhere."""
    return CONFIG_DIR / ("mt10_gpu.yaml" if torch.cuda.is_available() else "mt10_cpu.yaml")


def parse_args() -> argparse.Namespace:
    parser = ArgumentParser(description="Train multi-task SAC on Meta-World MT10.")
    parser.add_argument("overrides", nargs="*", metavar="section.key=value",
                        help="override any config field, e.g. sac.batch_size=640 train.steps=100000")
    parser.add_argument("--method", choices=sorted(COMBINERS), help="gradient combiner (default: the config's)")
    parser.add_argument("--config", type=Path, help="YAML config (default: mt10_gpu.yaml on a GPU, mt10_cpu.yaml "
                                                    "otherwise)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--device", type=device_arg, help="auto, cpu, cuda or cuda:N (default: the config's)")
    parser.add_argument("--run-dir", type=Path, help="where outputs go (default: runs/<method>_s<seed>_<time>)")
    parser.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue this run from its latest "
                                                                        "checkpoint")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --run-dir")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    fields = {"method": args.method, "seed": args.seed, "device": args.device}
    if args.resume:
        if args.config or args.run_dir or args.overwrite:
            raise RunError("--resume takes its config and directory from the run and keeps them; drop "
                           "--config/--run-dir/--overwrite")
        if not (args.resume / "config.yaml").is_file():
            raise RunError(f"'{args.resume}' is not a run directory (no config.yaml)")
        cfg = load_config(args.resume / "config.yaml", args.overrides, **fields)
        stored = yaml.safe_load((args.resume / "config.yaml").read_text()) or {}  # as saved, before any override
        method, seed = stored.get("method", Config.method), stored.get("seed", Config.seed)
        if (cfg.method, cfg.seed) != (method, seed):  # another run, not this one continued
            raise RunError(f"'{args.resume}' resumes with its own method and seed ({method}, seed {seed}), got "
                           f"{cfg.method}, seed {cfg.seed}; start a new run for those")
        run_dir = args.resume
    else:
        config_path = args.config or default_config()
        cfg = load_config(config_path, args.overrides, **fields)
        run_dir = args.run_dir or Path("runs") / f"{cfg.method}_s{cfg.seed}_{time.strftime('%Y%m%d-%H%M%S')}"
        if holds_run_data(run_dir) and not args.overwrite:
            raise RunError(f"run directory '{run_dir}' exists; use --resume {run_dir} to continue it or "
                           f"--overwrite to replace it")
        print(f"config {config_path}, run directory {run_dir}")
    # signals are noted from before the run starts (building its environments takes a while), so that one sent
    # meanwhile stops it at its first safe point, even where SIGINT was ignored (a job started with `&`)
    with run_dir_lock(run_dir), StopOnSignal() as stop:
        outcome = Trainer(cfg, run_dir, resume=bool(args.resume), overwrite=args.overwrite).train(stop)
    print(describe_loop_time(outcome.loop_seconds))
    if outcome.stopped_by is not None:
        print(f"{outcome.stopped_by}: stopped after step {outcome.step} and wrote a checkpoint; continue with "
              f"python train.py --resume {run_dir}", file=sys.stderr)
        sys.exit(128 + signal.Signals[outcome.stopped_by].value)
    print(outcome.result.to_markdown())

