"""The ``veriray`` command line.

veriray run CONFIG [dotted.key=value ...]     run the main job (embedded Ray by default)
veriray config show CONFIG [overrides ...]    print the resolved config (a dry run)
veriray config explain                        every field with its type, default and doc
veriray models list | prepare NAME [--force]  offline model assets
veriray models check NAME                     transformers and vLLM agree (greedy, fp32)
veriray ray token-path                        where the Ray auth token file is
"""

from __future__ import annotations

import argparse
import sys

import yaml

from cluster.typed_config import ConfigError


def _cmd_run(args: argparse.Namespace) -> int:
    from cluster.config import load_experiment

    cfg = load_experiment(args.config, args.overrides)
    from cluster.main_job import run_main

    run_dir = run_main(cfg)
    print(f"report: {run_dir / 'report.md'} (numbers: report.json, plot: report.png)")
    return 0


def _cmd_config_show(args: argparse.Namespace) -> int:
    from cluster.config import load_experiment
    from cluster.typed_config import to_dict

    cfg = load_experiment(args.config, args.overrides)
    print(yaml.safe_dump(to_dict(cfg), sort_keys=False), end="")
    return 0


def _cmd_config_explain(args: argparse.Namespace) -> int:
    from cluster.config import ExperimentConfig
    from cluster.typed_config import explain

    for name, tp, default, doc in explain(ExperimentConfig):
        print(f"{name}: {tp} = {default}")
        for line in doc.splitlines():
            print(f"    {line}")
    return 0


def _cmd_models_list(args: argparse.Namespace) -> int:
    from learner.assets import ASSETS, asset_path

    for name, asset in ASSETS.items():
        state = "prepared" if (asset_path(name) / "config.json").is_file() else "not prepared"
        print(f"{name:14s} {state:13s} {asset.description}")
    return 0


def _cmd_models_prepare(args: argparse.Namespace) -> int:
    from learner.assets import prepare

    for name in args.names:
        print(f"{name}: {prepare(name, force=args.force)}")
    return 0


def _cmd_models_check(args: argparse.Namespace) -> int:
    import json

    from learner.assets import ASSETS, resolve_model_path
    from learner.assets.check import check_model

    multimodal = args.multimodal or (args.name in ASSETS and ASSETS[args.name].multimodal)
    report = check_model(resolve_model_path(args.name), multimodal, args.max_new_tokens)
    print(json.dumps(report))
    ok = report["tokens_match"] and report["prompt_len_match"]
    return 0 if ok and report["max_logprob_diff"] < args.tolerance else 1


def _cmd_token_path(args: argparse.Namespace) -> int:
    from cluster.ray_auth import ensure_token_file

    print(ensure_token_file())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="veriray", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the main job")
    run.add_argument("config", help="experiment YAML, e.g. configs/cpu/quick.yaml")
    run.add_argument("overrides", nargs="*", help="dotted overrides, e.g. learner.lr=1e-6")
    run.set_defaults(fn=_cmd_run)

    config = sub.add_parser("config", help="inspect configs").add_subparsers(
        dest="action", required=True
    )
    show = config.add_parser("show", help="print the resolved config")
    show.add_argument("config", nargs="?", default=None)
    show.add_argument("overrides", nargs="*")
    show.set_defaults(fn=_cmd_config_show)
    config.add_parser("explain", help="list every field").set_defaults(fn=_cmd_config_explain)

    models = sub.add_parser("models", help="offline model assets").add_subparsers(
        dest="action", required=True
    )
    models.add_parser("list", help="known assets").set_defaults(fn=_cmd_models_list)
    prep = models.add_parser("prepare", help="build assets into the cache")
    prep.add_argument("names", nargs="+", metavar="NAME")
    prep.add_argument("--force", action="store_true", help="rebuild even if present")
    prep.set_defaults(fn=_cmd_models_prepare)
    chk = models.add_parser("check", help="transformers and vLLM agree on greedy decoding")
    chk.add_argument("name", help="asset name or checkpoint folder")
    chk.add_argument("--multimodal", action="store_true", help="a VLM folder (assets know)")
    chk.add_argument("--max-new-tokens", type=int, default=24)
    chk.add_argument("--tolerance", type=float, default=1e-4, help="max log-prob difference")
    chk.set_defaults(fn=_cmd_models_check)

    ray_cmd = sub.add_parser("ray", help="Ray helpers").add_subparsers(dest="action", required=True)
    ray_cmd.add_parser("token-path", help="print the auth token file").set_defaults(
        fn=_cmd_token_path
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except ConfigError as err:
        print(f"veriray: config error: {err}", file=sys.stderr)
        return 2
    except (KeyError, FileNotFoundError) as err:
        print(f"veriray: {err.args[0] if err.args else err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
