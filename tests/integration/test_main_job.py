"""The main job end to end: `veriray run` on an embedded cluster writes a report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
JOB_TIMEOUT_S = 600


def test_veriray_run_quick_config(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cluster.cli",
            "run",
            str(ROOT / "configs/cpu/quick.yaml"),
            "episodes=4",
            f"output_dir={tmp_path}",
            f"ray.dashboard_port={port}",
        ],
        capture_output=True,
        text=True,
        timeout=JOB_TIMEOUT_S,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert f"Ray dashboard: http://127.0.0.1:{port}" in result.stdout
    run_dir = tmp_path / "quick"
    report = json.loads((run_dir / "report.json").read_text())
    assert set(report["suites"]) == {"in_distribution", "ood_rule"}
    for suite in report["suites"].values():
        assert suite["n"] == 4 and 0 <= suite["rate"] <= 1
        assert 1 <= suite["mean_turns"] <= 2  # viter = 2 in quick.yaml
    assert all(k.startswith("timing/") for k in report["timings"])
    with Image.open(run_dir / "report.png") as img:
        assert img.format == "PNG" and img.width > 100
    assert "| in_distribution |" in (run_dir / "report.md").read_text()


def test_bad_config_fails_fast_with_the_field(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cluster.cli",
            "run",
            str(ROOT / "configs/cpu/quick.yaml"),
            "rollout.temperature=-1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert "config error: rollout.temperature: must be >= 0" in result.stderr
