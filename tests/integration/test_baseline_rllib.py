"""`veriray baseline rllib` through the real command line on an embedded cluster: RLlib PPO on
the 2-card GeneralPoints encoding learns above chance on the held-out ID suite, scored by the
task's verifier on the run's own evaluation prompts, and a finished run's report is written
again with the baseline as a reference line."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from common.ports import free_port
from evaluation.report import build_report, write_report
from tests.integration.quick_demo import JOB_TIMEOUT_S, ROOT

# A random menu item solves ~22% of the ID prompts (several operations can reach a target).
CHANCE = 0.22


def _finished_run_report(run_dir: Path) -> None:
    """The report a finished run leaves (its numbers do not matter here)."""
    rate = {
        "rate": 0.5,
        "successes": 1,
        "n": 2,
        "stderr": 0.35,
        "first_try": {"rate": 0.5, "stderr": 0.35},
        "mean_turns": 1.5,
    }
    point = {
        "stage": "init",
        "step": 0,
        "seed": None,
        "train_gflops": 0.0,
        "suites": {"in_distribution": dict(rate), "ood_rule": dict(rate)},
    }
    meta = {"name": "quick", "model": "tiny-lm", "task": "generalpoints"}
    write_report(run_dir, build_report(meta, [point]))


def _baseline(*args: str, timeout: float = JOB_TIMEOUT_S) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "cluster.cli", "baseline", "rllib", "configs/cpu/quick.yaml"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [*command, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_rllib_baseline_learns_and_joins_the_report(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "quick"
    _finished_run_report(run_dir)
    out = _baseline(
        f"output_dir={tmp_path / 'runs'}",
        "episodes=100",
        "baseline.rllib.iterations=8",
        "baseline.rllib.train_batch_size=512",
        f"ray.dashboard_port={free_port()}",
        "--seeds",
        "1",
    )
    assert out.returncode == 0, out.stderr[-4000:]
    assert "baseline:" in out.stdout and "reference line" in out.stdout
    folder = run_dir / "baseline_rllib"
    result = json.loads((folder / "result.json").read_text())
    suites = result["suites"]
    assert list(suites) == ["in_distribution", "ood_rule"]
    assert suites["in_distribution"]["n"] == 100  # the run's evaluation prompts, capped
    assert suites["in_distribution"]["rate"] > CHANCE + 0.15, suites
    outcomes = result["per_seed"][0]["suites"]["ood_rule"]["outcomes"]
    assert len(outcomes) == suites["ood_rule"]["n"]
    rows = list(csv.DictReader((folder / "training.csv").open()))
    assert [int(r["iteration"]) for r in rows] == list(range(1, 9))
    assert (folder / "baseline_rllib.png").stat().st_size > 0
    md = (run_dir / "report.md").read_text()
    assert "## Reference policies" in md and "| RLlib PPO, MLP without a language model | 0 |" in md


def test_a_task_without_an_encoding_is_refused_before_ray(tmp_path: Path) -> None:
    out = _baseline("task.generalpoints.num_cards=4", f"output_dir={tmp_path}", timeout=120)
    assert out.returncode == 2
    assert "task.generalpoints.num_cards" in out.stderr and "num_cards: 2" in out.stderr
    assert not (tmp_path / "quick").exists()
