"""`veriray models ...`: the offline model assets (list, prepare, check)."""

from __future__ import annotations

import argparse
import json


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
    from learner.assets import is_multimodal, resolve_model_path
    from learner.assets.check import check_model

    path = resolve_model_path(args.name)
    multimodal = args.multimodal or is_multimodal(path, args.name)  # from its config.json
    report = check_model(path, multimodal, args.max_new_tokens)
    print(json.dumps(report))
    ok = report["tokens_match"] and report["prompt_len_match"]
    return 0 if ok and report["max_logprob_diff"] < args.tolerance else 1


def add_parser(sub: argparse._SubParsersAction) -> None:
    models = sub.add_parser("models", help="offline model assets").add_subparsers(
        dest="action", required=True
    )
    models.add_parser("list", help="known assets").set_defaults(fn=_cmd_models_list)
    prep = models.add_parser("prepare", help="build assets into the cache")
    prep.add_argument("names", nargs="+", metavar="NAME")
    prep.add_argument("--force", action="store_true", help="rebuild even if present")
    prep.set_defaults(fn=_cmd_models_prepare)
    chk = models.add_parser("check", help="transformers and vLLM agree on greedy decoding")
    chk.add_argument("name", help="asset name, model folder or cached Hugging Face id")
    chk.add_argument(
        "--multimodal", action="store_true", help="a VLM (default: read from its config.json)"
    )
    chk.add_argument("--max-new-tokens", type=int, default=24)
    chk.add_argument("--tolerance", type=float, default=1e-4, help="max log-prob difference")
    chk.set_defaults(fn=_cmd_models_check)
