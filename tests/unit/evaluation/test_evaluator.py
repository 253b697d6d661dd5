"""The Evaluator on a model-free fleet: suites, pinned episodes, compute axis, VIter sweep."""

from __future__ import annotations

import json
import math

import pytest

from envs.families import config_dict
from envs.generalpoints.config import GeneralPointsConfig
from evaluation.config import EvaluationConfig
from evaluation.evaluator import POINTS_FILE, SWEEPS_FILE, Evaluator, load_records, with_budget
from evaluation.flops import ComputeMeter
from evaluation.samples import load_samples
from tests.unit.evaluation.episodes import NavFleet

TASK = config_dict(GeneralPointsConfig(num_cards=2, target_mode="one_op", viter=2))


def make(fleet, tmp_path, **kw) -> Evaluator:
    return Evaluator(
        fleet, "generalpoints", TASK, EvaluationConfig(episodes=6, seed=3, **kw), tmp_path
    )


def test_run_records_a_point_on_the_training_compute_axis(fake_fleet, tmp_path) -> None:
    ev = make(fake_fleet, tmp_path)
    meter = ComputeMeter(1000, train_tokens=500, rollout_tokens=100)
    point = ev.run("init", 0, meter)
    assert list(point["suites"]) == ["in_distribution", "ood_rule"]
    for m in point["suites"].values():
        # fake: even episodes solve on the first try, odd ones spend the budget of 2
        assert (m["successes"], m["n"]) == (3, 6)
        assert m["mean_turns"] == (3 * 1 + 3 * 2) / 6
    assert math.isclose(point["train_gflops"], (6 * 1000 * 500 + 2 * 1000 * 100) / 1e9)
    # 9 turns of 14 tokens per suite go to eval_tokens, off the training axis
    assert meter.eval_tokens == 2 * 9 * 14 and meter.train_tokens == 500
    id_specs, ood_specs = fake_fleet.calls
    assert all(s.config["split"] == "eval" for s in id_specs)
    # The OOD rule is never trained: its suite draws from every face-card hand, no split.
    assert all(s.config["split"] == "all" for s in ood_specs)
    assert {s.config["face_card_rule"] for s in ood_specs} == {"ordinal"}
    assert all(s.episode_id.startswith("eval-init0-") for s in id_specs)
    assert all(k.startswith("timing/eval_") for k in point["timings"])
    assert load_records(tmp_path, POINTS_FILE) == [point]


def test_every_point_plays_the_same_distinct_prompts(fake_fleet, tmp_path) -> None:
    ev = make(fake_fleet, tmp_path, suites=["ood_rule"])
    ev.run("init", 0)
    ev.run("rl", 5, seed=1)
    first, second = fake_fleet.calls
    assert [s.reset_options for s in first] == [s.reset_options for s in second]
    states = [json.dumps(s.reset_options, sort_keys=True) for s in first]
    assert len(set(states)) == len(states) == 6  # each prompt once (capped at episodes=6)
    assert [(p["stage"], p["seed"]) for p in ev.points] == [("init", None), ("rl", 1)]
    assert ev.points[0]["train_gflops"] == 0.0 and ev.points[0]["compute"] is None
    outcomes = [p["suites"]["ood_rule"]["outcomes"] for p in ev.points]
    assert outcomes[0]["ids"] == outcomes[1]["ids"]  # paired: same ids, same order
    assert outcomes[0]["success"] == [1, 0, 1, 0, 1, 0]
    assert ev.points[0]["suites"]["ood_rule"]["distinct_prompts"] == 6
    assert ev.points[0]["suites"]["ood_rule"]["prompts_in_suite"] == 218  # sampled from all
    # What the model wrote, per turn, with the prompt text, for every point.
    samples = load_samples(tmp_path).to_pylist()
    assert {(r["stage"], r["seed"]) for r in samples} == {("init", None), ("rl", 1)}
    assert len(samples) == 2 * (3 * 1 + 3 * 2)
    assert all("counts as" in r["prompt"] for r in samples)
    ev.run("rl", 6, seed=1)
    ev.drop_stage("rl", seed=1, after_step=5)  # a resume from the update-5 checkpoint
    assert [(p["stage"], p["step"]) for p in ev.points] == [("init", 0), ("rl", 5)]
    assert {(r["stage"], r["step"]) for r in load_samples(tmp_path).to_pylist()} == {
        ("init", 0),
        ("rl", 5),
    }
    on_disk = [json.loads(line) for line in (tmp_path / POINTS_FILE).read_text().splitlines()]
    assert [(p["stage"], p["step"]) for p in on_disk] == [("init", 0), ("rl", 5)]
    ev.drop_stage("rl", seed=1)
    assert {r["stage"] for r in load_samples(tmp_path).to_pylist()} == {"init"}


def test_suite_sizes_without_a_cap(fake_fleet, tmp_path) -> None:
    for cap in (None, 10_000):  # no cap, or one above every suite's size: the same prompts
        ev = Evaluator(fake_fleet, "generalpoints", TASK, EvaluationConfig(episodes=cap), tmp_path)
        point = ev.run("init", 0)
        sizes = {name: m["distinct_prompts"] for name, m in point["suites"].items()}
        # 2-card one_op: every held-out ID prompt, and every face-card hand under the OOD rule
        assert sizes == {"in_distribution": 100, "ood_rule": 218}
        assert [len(m["outcomes"]["ids"]) for m in point["suites"].values()] == [100, 218]
        assert all(m["prompts_in_suite"] == m["distinct_prompts"] for m in point["suites"].values())
    assert "validation" not in point["suites"]  # tuning only, never in a report by default


def test_viter_sweep_replaces_the_budget(fake_fleet, tmp_path) -> None:
    ev = make(fake_fleet, tmp_path, suites=["in_distribution"], viter_sweep=[1, 3])
    sweep = ev.sweep_viter("init", 0)
    assert [{s.config["viter"] for s in call} for call in fake_fleet.calls] == [{1}, {3}]
    by_budget = sweep["suites"]["in_distribution"]
    assert by_budget["1"]["mean_turns"] == 1.0
    assert by_budget["3"]["mean_turns"] == (3 * 1 + 3 * 3) / 6
    assert load_records(tmp_path, SWEEPS_FILE) == [sweep]
    assert with_budget("virl", {"tries_per_point": 2}, 5) == {"tries_per_point": 5}
    with pytest.raises(ValueError, match="viter_sweep"):
        make(fake_fleet, tmp_path).sweep_viter("init", 0)


def test_unknown_or_unavailable_suites_fail_loudly(fake_fleet, tmp_path) -> None:
    with pytest.raises(ValueError, match=r"^suites: .*ood_visual"):
        make(fake_fleet, tmp_path, suites=["ood_visual"])  # text mode has no visual shift
    # No cap is no error: every distinct prompt (test_suite_sizes_without_a_cap).
    assert Evaluator(fake_fleet, "generalpoints", TASK, EvaluationConfig()).cfg.episodes is None


def test_log_metrics_are_namespaced(fake_fleet, tmp_path) -> None:
    ev = make(fake_fleet, tmp_path, suites=["in_distribution"])
    logged = ev.log_metrics(ev.run("sft", 2))
    assert logged["eval/in_distribution/success"] == 0.5
    assert math.isclose(logged["eval/in_distribution/success_stderr"], math.sqrt(0.25 / 6))
    assert logged["eval/in_distribution/first_try"] == 0.5
    assert all(k.startswith("eval/") for k in logged)


def test_virl_image_suites_and_budget(tmp_path) -> None:
    from envs.virl.config import VirlConfig

    task = config_dict(VirlConfig(observation_mode="image", num_routes=100))
    fleet = NavFleet()
    ev = Evaluator(fleet, "virl", task, EvaluationConfig(episodes=48, viter_sweep=[1]), tmp_path)
    point = ev.run("init", 0)
    assert list(point["suites"]) == ["in_distribution", "ood_rule", "ood_visual"]
    id_specs, rule_specs, visual_specs = fleet.calls
    assert {s.config["split"] for s in id_specs} == {"eval"}
    assert {s.config["action_space"] for s in rule_specs} == {"relative"}
    assert len(visual_specs) == 18  # VLN mini: 2 routes in each of 9 cities
    # Held-out routes are distinct prompts already: each counted and played once.
    assert point["suites"]["ood_visual"]["distinct_prompts"] == 18
    for name, specs in zip(point["suites"], fleet.calls, strict=True):
        assert point["suites"][name]["distinct_prompts"] == len(specs)
    assert {s.config["split"] for s in visual_specs} == {"vln_mini"}
    assert point["suites"]["ood_visual"]["step_accuracy"]["mean"] == 0.5
    ev.sweep_viter("init", 0)
    assert {s.config["tries_per_point"] for call in fleet.calls[3:] for s in call} == {1}
