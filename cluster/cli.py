"""The ``veriray`` command line.

veriray run CONFIG [dotted.key=value ...] [--resume] [--seeds N]  run the experiment
veriray demo [--quick | --vl] [--seeds N] [overrides ...]  the study at CPU scale (embedded Ray)
veriray tune CONFIG --set rl.lr=1e-6,3e-6 [--from RUN] [--sft-steps N]  sweep on validation
veriray scale N --address GCS                 change a running job's rollout workers
veriray eval CHECKPOINT [overrides ...] [--config YAML] [--suite S ...] [--episodes N]
             [--viter-sweep 1 3 5 10] [--out DIR]   a checkpoint / model on held-out suites
veriray compare RUN_DIR [RUN_DIR ...] --out DIR  overlay several runs' curves on one figure
veriray baseline rllib CONFIG [overrides] [--seeds N]  RLlib PPO without a language model
veriray config show CONFIG [overrides ...]    print the resolved config (a dry run)
veriray config explain                        every field with its type, default and doc
veriray tasks                                 registered task families (built in and plugins)
veriray models list | prepare NAME [--force]  offline model assets
veriray models check NAME                     transformers and vLLM agree (greedy, fp32)
veriray submit CONFIG [overrides] --address URL [--wait]   run it as a job on a Ray cluster
veriray status --address URL                  veriray jobs on a cluster
veriray ray token-path                        where the Ray auth token file is
"""

from __future__ import annotations

import argparse
import json
import sys

import yaml

from cluster.cli_baseline import add_parser as add_baseline_parser
from cluster.cli_baseline import load_with_seeds
from cluster.cli_models import add_parser as add_models_parser
from cluster.job_python import NoUsablePython
from cluster.jobs import ClusterUnreachable
from common.typed_config import ConfigError

DEMO_CONFIGS = {"demo": "demo.yaml", "quick": "quick.yaml", "vl": "demo-vl.yaml"}
"""`veriray demo` variants -> configs/cpu/ files (the README's first quickstart command)."""


def _cmd_run(args: argparse.Namespace) -> int:
    cfg = load_with_seeds(args)  # a bad config fails before any run
    from cluster.controller import run_experiment

    run_dir = run_experiment(cfg, resume=args.resume)
    print(f"report: {run_dir / 'report.md'} (numbers: report.json, plots: *.png)")
    return 0


def _cmd_tune(args: argparse.Namespace) -> int:
    from cluster.tune import sweep_configs, write_sweep

    if "=" not in args.sweep:
        raise ConfigError("--set: expected KEY=V1,V2,... e.g. rl.lr=1e-6,3e-6,1e-5")
    key, _, joined = args.sweep.partition("=")
    values = [v for v in joined.split(",") if v]
    configs = sweep_configs(
        args.config, args.overrides, key, values, args.warm_from, args.sft_steps
    )  # every value's config is checked before the first run starts
    from cluster.controller import run_experiment

    run_dirs = []
    for value, cfg in zip(values, configs, strict=True):
        print(f"=== {key}={value} ({len(run_dirs) + 1} of {len(values)}) ===")
        run_dirs.append(run_experiment(cfg))
    out = configs[0].run_dir.parent / f"{configs[0].name.split('-tune-')[0]}-tune-{key}"
    print(f"sweep: {write_sweep(out, key, values, run_dirs)} (numbers: tune.json)")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    variant = "quick" if args.quick else "vl" if args.vl else "demo"
    root = Path(__file__).resolve().parents[1]
    args.config = str(root / "configs" / "cpu" / DEMO_CONFIGS[variant])
    print(f"veriray demo: {args.config}")
    return _cmd_run(args)


def _cmd_scale(args: argparse.Namespace) -> int:
    import ray

    from cluster.ray_auth import enable_token_auth
    from cluster.ray_runtime import is_loopback_address, loopback_node
    from cluster.stages import CONTROL_ACTOR

    enable_token_auth(args.token_file, create=False)
    with loopback_node(is_loopback_address(args.address)):  # an embedded run's cluster
        ray.init(address=args.address, namespace=args.namespace, logging_level="ERROR")
    try:
        control = ray.get_actor(CONTROL_ACTOR, namespace=args.namespace)
    except ValueError:
        print(f"veriray: no running veriray job at {args.address}", file=sys.stderr)
        return 3
    if args.workers is not None:
        ray.get(control.set_workers.remote(args.workers))
    print(ray.get(control.get_status.remote()))
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cluster.config import describe_task, load_for_model

    overrides = list(args.overrides)
    overrides += [f"evaluation.suites={json.dumps(args.suite)}"] if args.suite else []
    overrides += [f"evaluation.episodes={args.episodes}"] if args.episodes else []
    if args.viter_sweep:
        overrides.append(f"evaluation.viter_sweep={json.dumps(args.viter_sweep)}")
    # Without --config, the config the checkpoint's run saved: the task it was trained on.
    cfg, source = load_for_model(args.checkpoint, args.config, overrides)
    print(f"veriray eval: task {describe_task(cfg)} (config: {source})")
    out = Path(args.out) if args.out else cfg.run_dir.parent / f"eval-{Path(args.checkpoint).name}"
    from cluster.evaluate import evaluate_checkpoint

    report = evaluate_checkpoint(cfg, args.checkpoint, out, stage=args.stage)
    for suite, m in report["suites"].items():
        print(f"{suite}: success {100 * m['rate']:.1f}% ± {100 * m['stderr']:.1f} (n={m['n']})")
    print(f"report: {out / 'report.md'} (numbers: report.json)")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from cluster.config import run_task
    from evaluation.report import compare_runs

    tasks = {run_dir: run_task(run_dir) for run_dir in args.run_dirs}
    for run_dir, task in tasks.items():
        print(f"{run_dir}: task {task}")
    if len(set(tasks.values())) > 1:
        print("veriray compare: the runs play different tasks; their curves are not comparable")
    written = compare_runs(args.run_dirs, args.out)
    print(f"comparison: {written['markdown']} (figure: {written.get('curves')})")
    return 0


def _cmd_config_show(args: argparse.Namespace) -> int:
    from cluster.config import config_data, load_experiment

    cfg = load_experiment(args.config, args.overrides)
    # Only the active task's section: the others play no part (and would bury it).
    print(yaml.safe_dump(config_data(cfg), sort_keys=False), end="")
    return 0


def _cmd_tasks(args: argparse.Namespace) -> int:
    from envs.families import family, names

    del args
    for name in names():
        print(f"{name}: {family(name).description}")
    return 0


def _cmd_config_explain(args: argparse.Namespace) -> int:
    from cluster.config import ExperimentConfig
    from common.typed_config import explain

    for name, tp, default, doc in explain(ExperimentConfig):
        print(f"{name}: {tp} = {default}")
        for line in doc.splitlines():
            print(f"    {line}")
    return 0


def _target(args: argparse.Namespace):
    from cluster.jobs import JobTarget

    return JobTarget(args.address, args.token_file)


def _cmd_submit(args: argparse.Namespace) -> int:
    from cluster.config import load_experiment
    from cluster.jobs import logs, submit, wait

    load_experiment(args.config, args.overrides)  # a bad config fails here, not on the cluster
    target = _target(args)
    job_id = submit(target, args.config, args.overrides, python=args.python)
    print(f"submitted {job_id} to {target.url} (dashboard: {target.url}/#/jobs/{job_id})")
    if not args.wait:
        return 0
    final = wait(target, job_id, args.timeout)
    print(logs(target, job_id)[-4000:])
    print(f"job {job_id}: {final}")
    return 0 if final == "SUCCEEDED" else 1


def _cmd_status(args: argparse.Namespace) -> int:
    from cluster.jobs import status

    for job in status(_target(args)):
        print(f"{job['job_id']:28s} {job['status']:10s} {job['entrypoint']}")
    return 0


def _cmd_token_path(args: argparse.Namespace) -> int:
    from cluster.ray_auth import ensure_token_file

    print(ensure_token_file())
    return 0


def _verbose_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--verbose",
        action="store_true",
        help="also print Ray's, vLLM's and DeepSpeed's output here (always in <run>/logs)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="veriray", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the main job")
    run.add_argument("config", help="experiment YAML, e.g. configs/cpu/quick.yaml")
    run.add_argument("overrides", nargs="*", help="dotted overrides, e.g. learner.lr=1e-6")
    run.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    run.add_argument(
        "--seeds",
        type=int,
        default=None,
        help="training seeds of the arms, all from one warm start (= study.seeds=N)",
    )
    _verbose_arg(run)
    run.set_defaults(fn=_cmd_run)

    tune = sub.add_parser("tune", help="sweep one field on the validation suite (fair arms)")
    tune.add_argument("config", help="experiment YAML, e.g. configs/cpu/demo.yaml")
    tune.add_argument("overrides", nargs="*", help="dotted overrides shared by every run")
    tune.add_argument(
        "--set",
        dest="sweep",
        required=True,
        help="KEY=V1,V2,...: rl.lr, sft.arm_lr or sft.examples (the warm start's length)",
    )
    tune.add_argument(
        "--from", dest="warm_from", default=None, help="run folder whose warm start to reuse"
    )
    tune.add_argument(
        "--sft-steps", type=int, default=0, help="SFT arm steps per run (sweeping sft.arm_lr)"
    )
    _verbose_arg(tune)
    tune.set_defaults(fn=_cmd_tune)

    demo = sub.add_parser(
        "demo", help="the study at CPU scale (SmolLM2-135M, 3 seeds, about 56 minutes on 2 cores)"
    )
    size = demo.add_mutually_exclusive_group()
    size.add_argument(
        "--quick", action="store_true", help="the tiny model, 2 seeds, about 5 minutes"
    )
    size.add_argument(
        "--vl", action="store_true", help="GP-VL with the tiny VLM (image path), about 4 minutes"
    )
    demo.add_argument("overrides", nargs="*", help="dotted overrides, e.g. rl.updates=2")
    demo.add_argument(
        "--seeds", type=int, default=None, help="training seeds of the arms (= study.seeds=N)"
    )
    demo.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    _verbose_arg(demo)
    demo.set_defaults(fn=_cmd_demo)

    scale = sub.add_parser("scale", help="set the rollout workers of a running job")
    scale.add_argument("workers", type=int, nargs="?", help="desired count (omit: show status)")
    scale.add_argument("--address", required=True, help="the job's GCS address (printed at start)")
    scale.add_argument("--token-file", default=None, help="the cluster's Ray auth token file")
    scale.add_argument("--namespace", default="veriray")
    scale.set_defaults(fn=_cmd_scale)

    ev = sub.add_parser("eval", help="evaluate a checkpoint on held-out ID/OOD suites")
    ev.add_argument("checkpoint", help="training checkpoint folder, HF model folder or asset")
    ev.add_argument("overrides", nargs="*", help="dotted overrides, e.g. task.family=virl")
    ev.add_argument(
        "--config",
        "--task",
        dest="config",
        default=None,
        help="experiment YAML giving the task (default: the config.yaml the checkpoint's run "
        "saved, else the defaults)",
    )
    ev.add_argument(
        "--suite",
        action="append",
        default=[],
        help="suite to play (repeat; the task family's names, e.g. in_distribution, ood_rule; "
        "default: all of the task's but validation, for tuning)",
    )
    ev.add_argument(
        "--episodes",
        type=int,
        default=None,
        help="cap on distinct prompts per suite (each played once; more: a fixed seeded sample)",
    )
    ev.add_argument(
        "--viter-sweep",
        type=int,
        nargs="+",
        default=None,
        metavar="V",
        help="also sweep these verification budgets, e.g. 1 3 5 10",
    )
    ev.add_argument("--stage", default="checkpoint", help="label of the point in the report")
    ev.add_argument("--out", default=None, help="report folder (default runs/eval-<name>)")
    _verbose_arg(ev)
    ev.set_defaults(fn=_cmd_eval)

    cmp = sub.add_parser("compare", help="overlay several runs' curves on one figure")
    cmp.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="folders with report.json")
    cmp.add_argument("--out", required=True, help="folder for compare.png/.md/.json")
    cmp.set_defaults(fn=_cmd_compare)

    config = sub.add_parser("config", help="inspect configs").add_subparsers(
        dest="action", required=True
    )
    show = config.add_parser("show", help="print the resolved config")
    show.add_argument("config", nargs="?", default=None)
    show.add_argument("overrides", nargs="*")
    show.set_defaults(fn=_cmd_config_show)
    config.add_parser("explain", help="list every field").set_defaults(fn=_cmd_config_explain)

    tasks = sub.add_parser("tasks", help="registered task families (built in and installed)")
    tasks.set_defaults(fn=_cmd_tasks)

    add_models_parser(sub)

    def cluster_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--address", required=True, help="dashboard URL, e.g. http://HEAD:8265")
        p.add_argument("--token-file", default=None, help="the cluster's Ray auth token file")

    sub_job = sub.add_parser("submit", help="submit the main job to a Ray cluster")
    sub_job.add_argument("config")
    sub_job.add_argument("overrides", nargs="*")
    cluster_args(sub_job)
    sub_job.add_argument("--wait", action="store_true", help="wait for the job and print logs")
    sub_job.add_argument("--timeout", type=float, default=3600.0, help="seconds to --wait")
    sub_job.add_argument(
        "--python",
        default=None,
        help="the head node's Python to run the job on (default: the one Ray runs on, else "
        "python on the head node's PATH, whichever has veriray's stack)",
    )
    sub_job.set_defaults(fn=_cmd_submit)
    stat = sub.add_parser("status", help="veriray jobs on a Ray cluster")
    cluster_args(stat)
    stat.set_defaults(fn=_cmd_status)

    add_baseline_parser(sub, _verbose_arg)
    ray_cmd = sub.add_parser("ray", help="Ray helpers").add_subparsers(dest="action", required=True)
    ray_cmd.add_parser("token-path", help="print the auth token file").set_defaults(
        fn=_cmd_token_path
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "verbose", False):
        from cluster.run_logs import set_verbose

        set_verbose(True)
    try:
        return args.fn(args)
    except ConfigError as err:
        print(f"veriray: config error: {err}", file=sys.stderr)
        return 2
    except (ClusterUnreachable, NoUsablePython) as err:
        print(f"veriray: {err}", file=sys.stderr)
        return 3
    except (KeyError, FileNotFoundError) as err:
        print(f"veriray: {err.args[0] if err.args else err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
