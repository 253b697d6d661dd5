"""`veriray baseline ...`: reference policies without a language model (see
cluster/baseline_rllib.py)."""

from __future__ import annotations

import argparse

from common.typed_config import ConfigError


def load_with_seeds(args: argparse.Namespace):  # -> ExperimentConfig
    """The experiment of ``args.config`` with ``args.overrides``; ``--seeds N`` is
    ``study.seeds=N``. A bad config fails here, before anything runs."""
    from cluster.config import load_experiment

    overrides = list(args.overrides)
    if args.seeds is not None:
        if args.seeds < 1:
            raise ConfigError("--seeds: must be >= 1")
        overrides.append(f"study.seeds={args.seeds}")
    return load_experiment(args.config, overrides)


def _cmd_baseline_rllib(args: argparse.Namespace) -> int:
    from cluster.baseline_rllib import encoding_of, run

    cfg = load_with_seeds(args)
    encoding_of(cfg)  # a task it cannot encode fails before Ray starts
    folder = run(cfg)
    print(f"baseline: {folder / 'result.json'} (plot: {folder / 'baseline_rllib.png'})")
    if (cfg.run_dir / "report.md").is_file():
        print(f"report with the reference line: {cfg.run_dir / 'report.md'}")
    return 0


def add_parser(sub: argparse._SubParsersAction, verbose_arg) -> None:
    baseline = sub.add_parser(
        "baseline", help="reference policies without a language model"
    ).add_subparsers(dest="action", required=True)
    rllib = baseline.add_parser(
        "rllib",
        help="RLlib PPO on an MLP over the task's discrete encoding, scored on the run's suites",
    )
    rllib.add_argument("config", help="the experiment YAML of the run it is a reference for")
    rllib.add_argument("overrides", nargs="*", help="dotted overrides, e.g. baseline.rllib.lr=3e-4")
    rllib.add_argument(
        "--seeds", type=int, default=None, help="one baseline per training seed (= study.seeds=N)"
    )
    verbose_arg(rllib)
    rllib.set_defaults(fn=_cmd_baseline_rllib)
