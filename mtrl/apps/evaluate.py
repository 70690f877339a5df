"""The command behind `python evaluate.py` (its usage is there): one run's checkpoint or a reference policy
evaluated afresh, or many runs' logged evaluations made into the results table."""

from __future__ import annotations

import argparse
from pathlib import Path

from mtrl.checkpoint import load_checkpoint, load_latest, restore_into
from mtrl.cli import ArgumentParser, device_arg
from mtrl.config import from_dict
from mtrl.envs import MT10, PROTOCOLS, benchmark_copies
from mtrl.evaluation import ExpertPolicy, RandomPolicy, evaluate
from mtrl.results import Cut
from mtrl.runtime import resolve_device
from mtrl.sac import MTSAC


def parse_args() -> argparse.Namespace:
    parser = ArgumentParser(description="Evaluate a run or a reference policy on MT10.")
    parser.add_argument("runs", nargs="*", type=Path, help="a run directory; or several, or a directory of runs, "
                                                            "for the results table")
    parser.add_argument("--checkpoint", type=Path, help="a checkpoint file (default: the run's latest)")
    parser.add_argument("--policy", choices=["agent", "expert", "random"], default="agent")
    parser.add_argument("--protocol", choices=sorted(PROTOCOLS), help="for expert/random (default: mt10)")
    parser.add_argument("--episodes", type=int, help="episodes per task (default: the protocol's)")
    parser.add_argument("--seed", type=int, default=1, help="env seed for expert/random")
    parser.add_argument("--device", type=device_arg, default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--reference", metavar="LABEL", help="the results-table row others are compared with "
                        "(P(better)); default: mtsac, where there is such a row")
    cut = parser.add_mutually_exclusive_group()
    cut.add_argument("--at-step", type=int, metavar="STEP", help="score every run of the results table at its "
                     "evaluation at this step (equal environment steps) instead of its last one")
    cut.add_argument("--at-minutes", type=float, metavar="MINUTES", help="score every run of the results table at "
                     "its last evaluation within this many minutes of its training loop's wall clock (equal time; "
                     "compare runs of one machine)")
    parser.add_argument("--confidence", type=float, metavar="LEVEL", help="the confidence level of the results "
                        "table's intervals and its curves' bands (default: 0.95; e.g. 0.9833 to hold at 95%% across "
                        "three comparisons with one reference, Bonferroni's correction)")
    parser.add_argument("--out", type=Path, help="where expert/random results or a results table go (default: "
                                                 "runs/eval_<policy>; the directory of runs or runs/results, "
                                                 "its at_step_<N> or at_minutes_<M> folder with a cut)")
    parser.add_argument("--video", action="store_true", help="also record one episode per task: GIFs in "
                                                             "<run>/videos and `video/<task>` in TensorBoard")
    args = parser.parse_args()
    args.run_dir = args.runs[0] if len(args.runs) == 1 and (args.runs[0] / "config.yaml").is_file() else None
    args.table = bool(args.runs) and args.run_dir is None
    if args.table and (args.checkpoint or args.policy != "agent" or args.video or args.episodes):
        parser.error("several runs or a directory of runs make a results table from their logged evaluations; "
                     "--checkpoint, --policy, --episodes and --video take one run")
    if args.confidence is not None and not args.table:
        parser.error("--confidence sets the intervals of a results table (several runs or a directory of runs)")
    if args.confidence is not None and not 0 < args.confidence < 1:
        parser.error(f"--confidence is a level between 0 and 1 (e.g. 0.95), got {args.confidence}")
    args.cut = None
    if args.at_step is not None or args.at_minutes is not None:
        flag = "--at-step" if args.at_step is not None else "--at-minutes"
        if not args.table:
            parser.error(f"{flag} scores the runs of a results table (several runs or a directory of runs); one run "
                         "is evaluated from its checkpoint (choose one with --checkpoint)")
        try:
            args.cut = Cut(args.at_step, args.at_minutes)
        except ValueError as error:
            parser.error(str(error))
    if args.episodes is not None and args.episodes < 1:
        parser.error(f"--episodes must be at least 1, got {args.episodes}")
    if args.policy == "agent" and not args.runs and args.checkpoint is None:
        parser.error("give a run directory (or --checkpoint), or --policy expert|random")
    if args.policy != "agent" and (args.runs or args.checkpoint):
        parser.error(f"--policy {args.policy} evaluates a reference policy; it takes no run or checkpoint")
    return args


def tabulate(runs: list[Path], out: Path | None, reference: str | None, cut: Cut | None, level: float) -> None:
    from mtrl.results import find_runs, write_report

    if out is None:
        out = runs[0] if len(runs) == 1 else Path("runs") / "results"
        out = out if cut is None else out / cut.folder  # beside the final table, not over it
    paths = write_report(find_runs(runs), out, reference, cut, level)
    print(paths[0].read_text())
    print("wrote " + ", ".join(map(str, paths)))


def record(policy, protocol: str, seed: int, reward_version: str, out_dir: Path, step: int) -> None:
    from mtrl.video import log_videos, record_episodes, save_videos, video_env

    env = video_env(protocol, seed, reward_version)
    try:
        videos = record_episodes(policy, env)
    finally:
        env.close()
    paths = save_videos(videos, out_dir / "videos", step)
    log_videos(out_dir / "tensorboard", videos, step)
    print(f"wrote {len(paths)} videos to {out_dir / 'videos'} and to TensorBoard as video/<task>")


def main() -> None:
    args = parse_args()
    if args.table:
        return tabulate(args.runs, args.out, args.reference, args.cut, args.confidence or 0.95)
    if args.policy == "agent":
        if args.checkpoint:
            path, state = args.checkpoint, load_checkpoint(args.checkpoint)
        else:
            path, state = load_latest(args.run_dir)
        cfg = from_dict(state["config"])
        episodes = args.episodes or cfg.env.episodes_per_evaluation()
        # copies of the benchmark side by side, each drawing its own goals, stepped as the run's were
        envs = benchmark_copies(cfg.env.protocol, cfg.seed, min(cfg.env.eval_copies, episodes), cfg.env.reward_version,
                                vector=cfg.env.vector, workers=cfg.env.workers)
        agent = MTSAC(cfg, envs[0].obs_dim, envs[0].action_dim, envs[0].num_tasks, resolve_device(args.device))
        restore_into(agent.load_state_dict, state["agent"], path)
        policy, seed, protocol, rewards, step = agent, cfg.seed, cfg.env.protocol, cfg.env.reward_version, state["step"]
        labels = {"method": cfg.method, "seed": cfg.seed, "steps": state["step"], "checkpoint": path.name}
        out_dir = args.run_dir or path.parent.parent
    else:
        protocol, seed, rewards, step = args.protocol or "mt10", args.seed, "v2", 0
        env = MT10(protocol, seed)
        policy = ExpertPolicy() if args.policy == "expert" else RandomPolicy(env.action_dim, args.seed)
        episodes = args.episodes or env.protocol.eval_episodes
        envs = [env]
        labels = {"policy": args.policy, "seed": args.seed}
        out_dir = args.out or Path("runs") / f"eval_{args.policy}"
    result = evaluate(policy, envs, episodes, labels)
    json_path, md_path = result.save(out_dir)
    print(result.to_markdown())
    print(f"wrote {json_path} and {md_path}")
    for env in envs:
        env.close()
    if args.video:
        record(policy, protocol, seed, rewards, out_dir, step)

