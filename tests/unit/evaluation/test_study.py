"""The study's verdict from hand-built points: the primary endpoint (paired per seed, t interval
across seeds) by hand, the secondary comparisons, the figure and the report's first lines."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from PIL import Image

from evaluation.report import build_report, load_references, write_report
from evaluation.stats import t_quantile
from evaluation.study import primary_endpoint, secondary_comparisons, verdict_text
from evaluation.study_plots import arms_vs_compute

IDS = [f"p{i}" for i in range(10)]
STUDY = {"primary_suite": "ood_rule", "primary_metric": "success"}


def suite(solved: set[int]) -> dict:
    flags = [int(i in solved) for i in range(10)]
    k = sum(flags)
    return {
        "rate": k / 10,
        "successes": k,
        "n": 10,
        "stderr": math.sqrt(k / 10 * (1 - k / 10) / 10),
        "first_try": {"rate": k / 20, "stderr": 0.0},
        "mean_turns": 1.0,
        "distinct_prompts": 10,
        "outcomes": {"ids": IDS, "success": flags, "first_try": [0] * 10},
    }


def point(stage: str, step: int, gflops: float, seed, ood: set[int], iid: set[int]) -> dict:
    return {
        "stage": stage,
        "step": step,
        "seed": seed,
        "train_gflops": gflops,
        "suites": {"in_distribution": suite(iid), "ood_rule": suite(ood)},
    }


POINTS = [
    point("init", 0, 1.0, None, {0, 1}, {0, 1, 2}),
    # seed 0: RL solves 0-5 OOD (6/10), SFT solves 0, 1, 6 (3/10): b = 4, c = 1
    point("rl", 2, 2.0, 0, {0, 1, 2, 3}, {0, 1, 2, 3}),
    point("rl", 4, 3.0, 0, {0, 1, 2, 3, 4, 5}, {0, 1, 2, 3, 4}),
    point("sft", 9, 2.1, 0, {0, 1}, {0, 1, 2, 3, 4}),
    point("sft", 18, 3.1, 0, {0, 1, 6}, set(range(8))),
    # seed 1: RL 4/10, SFT 3/10 on the same prompts
    point("rl", 2, 2.0, 1, {0, 1, 2}, {0, 1, 2}),
    point("rl", 4, 3.0, 1, {0, 1, 2, 3}, {0, 1, 2}),
    point("sft", 9, 2.0, 1, {0, 1}, {0, 1, 2, 3}),
    point("sft", 18, 3.0, 1, {0, 1, 9}, set(range(7))),
]


def test_primary_endpoint_by_hand() -> None:
    ep = primary_endpoint(POINTS, STUDY)
    assert ep["seeds"] == 2 and ep["suite"] == "ood_rule"
    s0, s1 = ep["per_seed"]
    assert (s0["b"], s0["c"], s0["difference"]) == (4, 1, pytest.approx(0.3))
    assert s0["p_value"] == pytest.approx(2 * (1 + 5) / 32)  # 2 P(X <= 1), X ~ B(5, 1/2)
    assert (s1["b"], s1["c"], s1["difference"]) == (2, 1, pytest.approx(0.1))
    assert s0["first"] == {"stage": "rl", "step": 4, "train_gflops": 3.0}
    assert s0["second"]["stage"] == "sft" and s0["second"]["train_gflops"] >= 3.0
    assert ep["difference"] == pytest.approx(0.2)
    half = t_quantile(0.975, 1) * math.sqrt(((0.1) ** 2 * 2) / 1) / math.sqrt(2)
    assert ep["ci95"] == pytest.approx([0.2 - half, 0.2 + half])
    text = "\n".join(verdict_text(ep))
    assert "+20.0 points" in text and "Not settled" in text and "b=4, c=1" in text


def test_one_seed_has_no_interval_and_says_so() -> None:
    ep = primary_endpoint([p for p in POINTS if p["seed"] in (None, 0)], STUDY)
    assert ep["seeds"] == 1 and ep["ci95"] is None
    assert "One seed cannot settle it" in "\n".join(verdict_text(ep))


def test_secondary_comparisons_cover_arms_against_init() -> None:
    rows = secondary_comparisons(POINTS)
    names = {(r["seed"], r["comparison"], r["suite"], r["metric"]) for r in rows}
    assert (0, "rl_vs_init", "ood_rule", "success") in names
    assert (1, "sft_vs_init", "in_distribution", "first_try") in names
    rl_init = next(r for r in rows if r["seed"] == 0 and r["comparison"] == "rl_vs_init"
                   and r["suite"] == "ood_rule" and r["metric"] == "success")  # fmt: skip
    assert (rl_init["b"], rl_init["c"]) == (4, 0)  # RL kept 0, 1 and added 2-5


def test_unpaired_points_are_refused() -> None:
    bad = json.loads(json.dumps(POINTS))
    bad[-1]["suites"]["ood_rule"]["outcomes"]["ids"] = [f"q{i}" for i in range(10)]
    with pytest.raises(ValueError, match="different prompts"):
        primary_endpoint(bad, STUDY)
    twice = json.loads(json.dumps(POINTS))
    twice[-1]["suites"]["ood_rule"]["outcomes"]["ids"] = ["p0"] * 10
    with pytest.raises(ValueError, match="prompt id twice"):
        primary_endpoint(twice, STUDY)


def test_report_states_the_verdict_first_and_draws_the_arms(tmp_path: Path) -> None:
    meta = {"name": "demo", "model": "m", "task": "generalpoints", "study": STUDY}
    report = build_report(meta, POINTS)
    assert report["primary_endpoint"]["difference"] == pytest.approx(0.2)
    assert report["distinct_prompts"] == {"in_distribution": 10, "ood_rule": 10}
    write_report(tmp_path, report)
    md = (tmp_path / "report.md").read_text()
    assert md.split("\n## ")[1].startswith("Verdict\n\n- **Primary endpoint**")
    assert "| 0 | rl_vs_sft | ood_rule | success | 60.0% | 30.0% | +30.0 | 4 | 1 |" in md
    # Paired comparisons exist, so the unpaired "against the init" view is left out, and every
    # point's row names its seed.
    assert "## Each stage against the init" not in md and "## Change from the init" not in md
    assert "| sft | 1 | 18 | 3 |" in md
    saved = json.loads((tmp_path / "report.json").read_text())
    assert {"difference", "ci95", "seeds", "per_seed"} <= set(saved["primary_endpoint"])
    with Image.open(tmp_path / "arms.png") as img:
        assert img.format == "PNG" and img.width > 400
    assert arms_vs_compute([POINTS[0]], tmp_path / "none.png") is None


def test_report_says_when_a_suite_was_sampled(tmp_path: Path) -> None:
    points = json.loads(json.dumps(POINTS))
    for p in points:
        p["suites"]["in_distribution"]["prompts_in_suite"] = 1234  # capped at 10
        p["suites"]["ood_rule"]["prompts_in_suite"] = 10  # all of them
    meta = {"name": "demo", "model": "m", "task": "generalpoints", "study": STUDY}
    write_report(tmp_path, build_report(meta, points))
    md = (tmp_path / "report.md").read_text()
    assert "in_distribution 10 (a seeded sample of 1,234), ood_rule 10." in md


def test_reference_policies_appear_as_a_row_and_lines(tmp_path: Path) -> None:
    folder = tmp_path / "baseline_rllib"
    folder.mkdir()
    rate = {"rate": 0.25, "successes": 5, "n": 20, "wilson95": [0.11, 0.47]}
    result = {
        "name": "rllib",
        "label": "RLlib PPO, MLP",
        "suites": {"in_distribution": rate | {"outcomes": {"p0": True}}, "ood_rule": rate},
        "per_seed": [{"seed": 0}, {"seed": 1}],
    }
    (folder / "result.json").write_text(json.dumps(result))
    refs = load_references(tmp_path)
    assert refs[0]["seeds"] == [0, 1] and "outcomes" not in refs[0]["suites"]["in_distribution"]
    meta = {"name": "demo", "model": "m", "task": "generalpoints", "study": STUDY}
    write_report(tmp_path, build_report(meta, POINTS, references=refs))
    md = (tmp_path / "report.md").read_text()
    row = "| RLlib PPO, MLP | 0, 1 | 25.0% [11.0, 47.0] | 25.0% [11.0, 47.0] |"
    assert row in md
    assert json.loads((tmp_path / "report.json").read_text())["references"] == refs
    assert (tmp_path / "arms.png").is_file()
    # Without a reference folder the report has no such section.
    write_report(tmp_path / "plain", build_report(meta, POINTS))
    assert "Reference policies" not in (tmp_path / "plain" / "report.md").read_text()
