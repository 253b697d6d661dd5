"""The command line of a small `veriray demo --quick` run, shared by the end-to-end tests."""

from __future__ import annotations

import sys
from pathlib import Path

from common.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
JOB_TIMEOUT_S = 900


def quick_demo_args(out: Path, *extra: str) -> list[str]:
    """`veriray demo --quick` at test size into ``out``: one seed, a checkpoint per update."""
    return [
        sys.executable,
        "-m",
        "cluster.cli",
        "demo",
        "--quick",
        "episodes=4",
        "rl.episodes_per_update=8",
        "rl.checkpoint_every=1",
        "study.seeds=1",  # quick.yaml runs 2 seeds; one is enough here (--seeds N overrides)
        f"output_dir={out}",
        f"ray.dashboard_port={free_port()}",
        *extra,
    ]
