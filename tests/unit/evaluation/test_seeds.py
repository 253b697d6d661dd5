"""Aggregating seeds: means and across-seed standard errors against hand arithmetic."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from evaluation.seeds import aggregate_gains, aggregate_seeds, seed_overrides
from tests.unit.evaluation.test_report import point


def _report(name: str, rl_ood: int) -> dict:
    points = [point("init", 0, 0.0, 3, 4), point("rl", 2, 5.0, 5, rl_ood)]
    from evaluation.report import build_report

    return build_report({"name": name}, points)


def test_aggregate_gains_mean_and_sem() -> None:
    # ood_visual success: init 4/10 in every seed; RL finals 5/10, 7/10, 9/10.
    reports = [_report("s", k) for k in (5, 7, 9)]
    g = aggregate_gains(reports)["rl"]["ood_visual"]["success"]
    assert g["per_seed"] == pytest.approx([0.1, 0.3, 0.5])
    assert g["delta"] == pytest.approx(0.3)
    assert g["stderr"] == pytest.approx(0.2 / math.sqrt(3))  # stdev(0.1, 0.3, 0.5) = 0.2
    assert g["init"] == pytest.approx(0.4) and g["final"] == pytest.approx(0.7)


def test_aggregate_seeds_writes_summary(tmp_path: Path) -> None:
    runs = []
    for i, k in enumerate((5, 9)):
        run = tmp_path / f"demo-seed{i}"
        run.mkdir()
        (run / "report.json").write_text(json.dumps(_report("demo", k)))
        runs.append(run)
    written = aggregate_seeds(runs, tmp_path / "demo-seeds")
    summary = json.loads(written["json"].read_text())
    assert summary["seeds"] == 2 and summary["gains"]["rl"]["ood_visual"]["success"]["delta"] == (
        pytest.approx(0.3)
    )
    md = written["markdown"].read_text()
    assert "**rl** moved **ood_visual** success up" in md and "+10.0, +50.0" in md
    assert written["gains"].stat().st_size > 5_000


def test_seed_overrides_name_every_seeded_field() -> None:
    assert seed_overrides("demo", 3) == [
        "seed=3",
        "sft.seed=3",
        "learner.seed=3",
        "rollout.seed=3",
        "name=demo-seed3",
    ]
