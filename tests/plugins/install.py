"""Install the throwaway plugin distribution into a temp site dir, as pip would lay it out:
the package folder plus a dist-info with METADATA and entry_points.txt."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

PLUGIN_DIR = Path(__file__).resolve().parent / "veriray_reverse"
ROOT = Path(__file__).resolve().parents[2]
ENTRY_POINTS = "[veriray.tasks]\nreverse = veriray_reverse:FAMILY\n"  # as pip writes it


def install_plugin(site: Path) -> Path:
    """Copy the package and write its dist-info into ``site``; returns ``site``."""
    site.mkdir(parents=True, exist_ok=True)
    shutil.copytree(
        PLUGIN_DIR, site / "veriray_reverse", ignore=shutil.ignore_patterns("__pycache__")
    )
    info = site / "veriray_reverse-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: veriray-reverse\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    (info / "top_level.txt").write_text("veriray_reverse\n")
    return site


def env_with(site: Path) -> dict[str, str]:
    """The environment of a process that sees the plugin (and veriray from this checkout)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(ROOT), env.get("PYTHONPATH", "")])
    return env
