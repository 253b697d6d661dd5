"""samples.parquet: what the model wrote at every point, one row per turn."""

from __future__ import annotations

import json

from evaluation.samples import (
    append_samples,
    drop_samples,
    first_rows,
    load_samples,
    sample_rows,
    train_rows,
)
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


def test_rows_carry_the_reward_and_an_older_file_without_it_still_appends(tmp_path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    (row,) = sample_rows({"stage": "init", "step": 0}, "s", ["x"], ["p"], [gp_episode(["A"], [1])])
    assert row["reward"] == 5.0
    old = {k: v for k, v in row.items() if k != "reward"}  # a run from before the column
    pq.write_table(pa.Table.from_pylist([old]), tmp_path / "samples.parquet")
    append_samples(tmp_path, [row])
    assert [r["reward"] for r in load_samples(tmp_path).to_pylist()] == [None, 5.0]


def test_first_rows_bounds_each_suite() -> None:
    rows = [{"suite": s, "i": i} for s in ("a", "b") for i in range(5)]
    assert [(r["suite"], r["i"]) for r in first_rows(rows, 2)] == [
        ("a", 0), ("a", 1), ("b", 0), ("b", 1),
    ]  # fmt: skip
    assert first_rows(rows, 0) == []


def test_train_rows_rebuild_the_prompt_and_stop_at_the_limit() -> None:
    from envs.families import config_dict, family
    from envs.generalpoints.config import GeneralPointsConfig
    from rollout.runner import EpisodeSpec

    task = config_dict(GeneralPointsConfig())
    specs = [
        EpisodeSpec(f"rl-u0-t{i}-s0", "generalpoints", task, {"seed": i}, group_id=f"g{i}")
        for i in range(3)
    ]
    episodes = [EpisodeResult(s.episode_id, False, _episode().turns, {}) for s in specs] + [
        EpisodeResult("rl-u0-t0-s0-r1", True, _episode().turns, {})
    ]  # a refill: no spec
    point = {"stage": "rl", "step": 1, "seed": 0}
    rows = train_rows(point, "generalpoints", specs, episodes, limit=3)
    assert [(r["prompt_id"], r["turn"], r["suite"]) for r in rows] == [
        ("g0", 0, "train"), ("g0", 1, "train"), ("g1", 0, "train"),
    ]  # fmt: skip
    env = family("generalpoints").make_env(task)
    assert rows[0]["prompt"] == env.reset(seed=0)[0]["text"] != rows[2]["prompt"]
    assert rows[0]["reward"] == -1.0 and rows[1]["reward"] == 5.0
