"""Evaluate a trained run, or a reference policy, with the protocol's deterministic evaluation.

    python evaluate.py runs/<name>                      # latest checkpoint of the run
    python evaluate.py runs/<name> --checkpoint runs/<name>/checkpoints/step_000100000.pt --episodes 10
    python evaluate.py --policy expert --protocol mt10  # Meta-World's scripted experts (should score high)
    python evaluate.py --policy random                  # uniform random actions (should score near zero)

Prints a per-task table and writes it as evaluation.json and evaluation.md (in the run directory, or in
--out for reference policies).
"""

from __future__ import annotations

from pathlib import Path

from agents.mtsac import MTSAC
from mtrl.checkpoint import load_checkpoint, load_latest, restore_into
from mtrl.cli import ArgumentParser, run_main
from mtrl.config import from_dict
from mtrl.envs import MT10, PROTOCOLS
from mtrl.evaluation import ExpertPolicy, RandomPolicy, evaluate
from mtrl.trainer import RunError, eval_episodes, resolve_device


def parse_args():
    parser = ArgumentParser(description="Evaluate a run or a reference policy on MT10.")
    parser.add_argument("run_dir", nargs="?", type=Path, help="a run directory under runs/")
    parser.add_argument("--checkpoint", type=Path, help="a checkpoint file (default: the run's latest)")
    parser.add_argument("--policy", choices=["agent", "expert", "random"], default="agent")
    parser.add_argument("--protocol", choices=sorted(PROTOCOLS), help="for expert/random (default: mt10)")
    parser.add_argument("--episodes", type=int, help="episodes per task (default: the protocol's)")
    parser.add_argument("--seed", type=int, default=1, help="env seed for expert/random")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--out", type=Path, help="where expert/random results go (default: runs/eval_<policy>)")
    args = parser.parse_args()
    if args.episodes is not None and args.episodes < 1:
        parser.error(f"--episodes must be at least 1, got {args.episodes}")
    if args.policy == "agent" and args.run_dir is None and args.checkpoint is None:
        parser.error("give a run directory (or --checkpoint), or --policy expert|random")
    if args.policy != "agent" and (args.run_dir or args.checkpoint):
        parser.error(f"--policy {args.policy} evaluates a reference policy; it takes no run or checkpoint")
    return args


def main() -> None:
    args = parse_args()
    if args.policy == "agent":
        if args.checkpoint:
            path, state = args.checkpoint, load_checkpoint(args.checkpoint)
        else:
            if not args.run_dir.is_dir():
                raise RunError(f"run directory '{args.run_dir}' does not exist")
            path, state = load_latest(args.run_dir)
        cfg = from_dict(state["config"])
        env = MT10(cfg.env.protocol, cfg.seed, cfg.env.reward_version)
        agent = MTSAC(cfg, env.obs_dim, env.action_dim, env.num_tasks, resolve_device(args.device))
        restore_into(agent.load_state_dict, state["agent"], path)
        policy, seed = agent, cfg.seed
        episodes = args.episodes or eval_episodes(cfg, env)
        labels = {"method": cfg.method, "seed": cfg.seed, "steps": state["step"], "checkpoint": path.name}
        out_dir = args.run_dir or path.parent.parent
    else:
        env = MT10(args.protocol or "mt10", args.seed)
        policy = ExpertPolicy() if args.policy == "expert" else RandomPolicy(env.action_dim, args.seed)
        episodes = args.episodes or env.protocol.eval_episodes
        labels = {"policy": args.policy, "seed": args.seed}
        out_dir = args.out or Path("runs") / f"eval_{args.policy}"
    result = evaluate(policy, env, episodes, labels)
    json_path, md_path = result.save(out_dir)
    print(result.to_markdown())
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    run_main(main)
