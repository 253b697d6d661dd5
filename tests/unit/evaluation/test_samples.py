"""samples.parquet: what the model wrote at every point, one row per turn."""

from __future__ import annotations

import json

from evaluation.samples import append_samples, drop_samples, load_samples, sample_rows
from rollout.runner import EpisodeResult
from tests.unit.evaluation.episodes import gp_episode, turn


def _episode() -> EpisodeResult:
    """Two attempts: a wrong value, then the right formula."""
    state = {"cards": [{"rank": "A", "suit": "spades"}, {"rank": "2", "suit": "spades"}]}
    first = turn(False, {"formula": "1*2", "success": False, "error": "wrong_value"}, state)
    second = turn(True, {"formula": "1+2", "success": True}, state)
    second.turn_index = 1
    return EpisodeResult("gp", True, [first, second], {"verdict": {"success": True}})


def test_rows_hold_prompt_response_parsed_answer_and_verdict(tmp_path) -> None:
    point = {"stage": "rl", "step": 4, "seed": 1}
    rows = sample_rows(point, "ood_rule", ["id0"], ["What is 3?"], [_episode()])
    assert [(r["turn"], r["parsed_answer"], r["turn_success"]) for r in rows] == [
        (0, "1*2", False),
        (1, "1+2", True),
    ]
    assert all(r["episode_success"] and r["prompt"] == "What is 3?" for r in rows)
    assert json.loads(rows[0]["verdict"])["error"] == "wrong_value"
    append_samples(tmp_path, rows)
    init = sample_rows({"stage": "init", "step": 0}, "ood_rule", ["id0"], ["p"], [_episode()])
    append_samples(tmp_path, init)
    table = load_samples(tmp_path).to_pylist()
    assert [(r["stage"], r["seed"], r["prompt_id"]) for r in table] == [
        ("rl", 1, "id0"), ("rl", 1, "id0"), ("init", None, "id0"), ("init", None, "id0"),
    ]  # fmt: skip
    drop_samples(tmp_path, "rl", seed=1)
    assert {r["stage"] for r in load_samples(tmp_path).to_pylist()} == {"init"}
    assert not list(tmp_path.glob("*.tmp"))  # written whole, then moved into place


def test_an_answer_without_a_formula_has_an_empty_parsed_answer() -> None:
    ep = gp_episode(["A"], [False])  # verdict without a "formula" field
    (row,) = sample_rows({"stage": "init", "step": 0}, "in_distribution", ["x"], ["p"], [ep])
    assert row["parsed_answer"] == "" and row["episode_success"] is False
