"""Reports and figures: gains against hand arithmetic, PNGs that hold drawn data."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from PIL import Image

from evaluation.metrics import suite_metrics
from evaluation.report import (
    build_report,
    compare_runs,
    gains_from_init,
    stage_series,
    verdict_lines,
    write_report,
)
from evaluation.stats import wilson_interval
from tests.unit.evaluation.episodes import gp_episode

MIN_PNG_BYTES = 5_000


def suite(successes: int, recognized: int, n: int = 10) -> dict:
    """GP-VL suite metrics with given success and first-answer recognition counts."""
    eps = [gp_episode(["K", "2"], [i < successes], cards_ok=i < recognized) for i in range(n)]
    return suite_metrics(eps)


def point(stage: str, step: int, gflops: float, id_ok: int, ood_ok: int) -> dict:
    return {
        "stage": stage,
        "step": step,
        "train_gflops": gflops,
        "suites": {
            "in_distribution": suite(id_ok, id_ok + 1),
            "ood_visual": suite(ood_ok, ood_ok + 2),
        },
        "timings": {"timing/eval_in_distribution": 1.0},
    }


POINTS = [
    point("init", 0, 0.0, 3, 4),
    point("sft", 5, 1.5, 6, 3),
    point("sft", 10, 3.0, 8, 2),
    point("rl", 5, 4.0, 6, 6),
]
SWEEP = {
    "stage": "init",
    "step": 0,
    "budgets": [1, 3],
    "suites": {"in_distribution": {"1": suite(2, 5), "3": suite(5, 5)}},
}


def assert_png_with_data(path: Path) -> None:
    assert path.stat().st_size > MIN_PNG_BYTES
    with Image.open(path) as img:
        assert img.format == "PNG" and img.width > 200 and img.height > 150
        pixels = np.asarray(img.convert("RGB")).reshape(-1, 3)
    colors = np.unique(pixels, axis=0)
    assert len(colors) > 20  # not a blank canvas: lines, markers, bars, text
    # something colored (series), not just black text on white
    assert (pixels.max(axis=1) - pixels.min(axis=1) > 60).sum() > 200


def test_gains_from_init_by_hand() -> None:
    gains = gains_from_init(POINTS)
    assert list(gains) == ["sft", "rl"]
    g = gains["sft"]["ood_visual"]["success"]  # last SFT point: 2/10 vs init 4/10
    assert math.isclose(g["delta"], 0.2 - 0.4)
    assert math.isclose(g["stderr"], math.sqrt(0.4 * 0.6 / 10 + 0.2 * 0.8 / 10))
    assert g["final_step"] == 10 and g["final_train_gflops"] == 3.0
    r = gains["rl"]["in_distribution"]["recognition"]  # 7/10 vs 4/10
    assert math.isclose(r["delta"], 0.3)


def test_stage_series_grow_out_of_the_init() -> None:
    series = stage_series(POINTS)
    assert [len(v) for v in series.values()] == [1, 3, 2]
    assert series["sft"][0] is POINTS[0] and series["rl"][0] is POINTS[0]  # both arms: init
    # Without an init point a stage continues from the previous stage's last point.
    chained = stage_series([point("base", 0, 0.0, 1, 1), point("rl", 1, 1.0, 2, 2)])
    assert chained["rl"][0]["stage"] == "base"


def test_verdict_says_direction_and_significance() -> None:
    lines = verdict_lines(gains_from_init(POINTS))
    by_key = {(ln.split("**")[1], ln.split("**")[3]): ln for ln in lines}
    # sft: in_distribution 30% -> 80% (+50, s.e. ~17.3: beyond 2 s.e.)
    assert "up: 30.0% -> 80.0% (+50.0" in by_key[("sft", "in_distribution")]
    assert "beyond 2 s.e." in by_key[("sft", "in_distribution")]
    # sft: ood_visual 40% -> 20% (-20, s.e. ~20: within 2 s.e.)
    assert "down: 40.0% -> 20.0% (-20.0" in by_key[("sft", "ood_visual")]
    assert "not significant" in by_key[("sft", "ood_visual")]


def test_write_report_files(tmp_path: Path) -> None:
    meta = {"name": "r1", "model": "tiny-vlm", "task": "generalpoints", "episodes_per_suite": 10}
    report = build_report(meta, POINTS, [SWEEP], {"timing/ray_init": 2.0})
    written = write_report(tmp_path, report)
    assert set(written) == {
        "report",
        "curves",
        "gains",
        "recognition",
        "viter_sweep",
        "json",
        "markdown",
    }
    for name in ("report", "curves", "gains", "recognition", "viter_sweep"):
        assert_png_with_data(written[name])
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["suites"] == POINTS[-1]["suites"] and len(data["points"]) == 4
    assert data["timings"]["timing/eval_in_distribution"] == 4.0
    assert data["viter_sweeps"][0]["budgets"] == [1, 3]
    md = (tmp_path / "report.md").read_text()
    for png in ("report.png", "curves.png", "gains.png", "recognition.png", "viter_sweep.png"):
        assert f"]({png})" in md
    low, high = wilson_interval(6, 10)  # the latest point's ID success, with its interval
    assert f"| in_distribution | 60.0% [{100 * low:.1f}, {100 * high:.1f}] |" in md
    assert "| sft | ood_visual | success |" in md  # no paired comparisons: the unpaired view
    assert "## Each stage against the init" in md and "**rl** moved **ood_visual**" in md


def test_text_task_report_skips_empty_figures(tmp_path: Path) -> None:
    text_point = {
        "stage": "checkpoint",
        "step": 0,
        "train_gflops": 0.0,
        "suites": {"in_distribution": suite_metrics([gp_episode(["2", "3"], [True])])},
    }
    written = write_report(tmp_path, build_report({"name": "t"}, [text_point]))
    assert "recognition" not in written and "gains" not in written
    assert "viter_sweep" not in written
    assert_png_with_data(written["report"])


def test_compare_runs_overlays_runs(tmp_path: Path) -> None:
    for name, points in (("sft-run", POINTS[:3]), ("rl-run", [POINTS[0], POINTS[3]])):
        write_report(tmp_path / name, build_report({"name": name}, points))
    written = compare_runs([tmp_path / "sft-run", tmp_path / "rl-run"], tmp_path / "cmp")
    assert_png_with_data(written["curves"])
    assert_png_with_data(written["gains"])
    summary = json.loads(written["json"].read_text())
    assert set(summary) == {"sft-run", "rl-run"}
    assert "![curves](compare.png)" in written["markdown"].read_text()
