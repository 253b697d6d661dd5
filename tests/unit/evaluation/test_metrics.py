"""Suite metrics against hand counts."""

from __future__ import annotations

import math

import pytest

from evaluation.metrics import headline, suite_metrics
from rollout.runner import EpisodeResult
from tests.unit.evaluation.episodes import gp_episode, turn, virl_episode


def gp_suite():
    return [
        gp_episode(["K", "3"], [False, True], cards_ok=True),  # solved on the 2nd try
        gp_episode(["J", "Q"], [True], cards_ok=True),  # solved on the 1st try
        gp_episode(["2", "5"], [False, False], cards_ok=False),  # budget spent
        gp_episode(["K", "K"], [False, False], cards_ok=None),  # unparsable: cards unread
    ]


def test_gp_success_first_try_turns_and_tokens() -> None:
    m = suite_metrics(gp_suite())
    assert (m["successes"], m["n"], m["rate"]) == (2, 4, 0.5)
    assert math.isclose(m["stderr"], math.sqrt(0.5 * 0.5 / 4))  # 0.25
    assert (m["first_try"]["successes"], m["first_try"]["n"]) == (1, 4)
    assert math.isclose(m["first_try"]["stderr"], math.sqrt(0.25 * 0.75 / 4))
    assert m["mean_turns"] == (2 + 1 + 2 + 2) / 4
    # 7 turns of 10 prompt + 4 response tokens each
    assert m["tokens"] == {
        "prompt": 70,
        "response": 28,
        "total": 98,
        "turns": 7,
        "mean_response": 4.0,
    }
    assert headline(m, "success") == (0.5, 0.25)
    # Wilson 95% intervals, computed by hand: 2/4 -> [0.1500, 0.8500], 1/4 -> [0.0456, 0.6994]
    assert m["wilson95"] == pytest.approx([0.1500, 0.8500], abs=1e-4)
    assert m["first_try"]["wilson95"] == pytest.approx([0.0456, 0.6994], abs=1e-4)


def test_gp_recognition_counts_unparsed_first_answers_as_wrong() -> None:
    rec = suite_metrics(gp_suite())["recognition"]
    assert (rec["successes"], rec["n"], rec["rate"]) == (2, 4, 0.5)
    # text mode: cards are never checked, so there is no recognition metric at all
    text = [gp_episode(["2", "3"], [True]), gp_episode(["4", "5"], [False])]
    assert "recognition" not in suite_metrics(text)
    assert headline(suite_metrics(text), "recognition") is None


def test_gp_success_by_face_card() -> None:
    by = suite_metrics(gp_suite())["by_face_card"]
    assert (by["J"]["successes"], by["J"]["n"]) == (1, 1)
    assert (by["Q"]["successes"], by["Q"]["n"]) == (1, 1)
    assert (by["K"]["successes"], by["K"]["n"]) == (1, 2)  # K-3 solved, K-K not
    assert (by["none"]["successes"], by["none"]["n"]) == (0, 1)


def test_virl_step_accuracy_route_success_and_error_bars() -> None:
    m = suite_metrics([virl_episode(3, 4), virl_episode(4, 4, n_turns=2), virl_episode(0, 5)])
    acc = m["step_accuracy"]
    assert math.isclose(acc["mean"], (0.75 + 1.0 + 0.0) / 3)
    devs = [0.75 - acc["mean"], 1.0 - acc["mean"], 0.0 - acc["mean"]]
    assert math.isclose(acc["stderr"], math.sqrt(sum(d * d for d in devs) / 2 / 3))
    assert (acc["steps"]["successes"], acc["steps"]["n"]) == (7, 13)
    assert math.isclose(acc["steps"]["stderr"], math.sqrt(7 / 13 * 6 / 13 / 13))
    assert (m["route_success"]["successes"], m["route_success"]["n"]) == (1, 3)
    assert (m["successes"], m["n"]) == (1, 3)
    assert m["mean_turns"] == 4 / 3
    assert "by_face_card" not in m and "recognition" not in m
    assert headline(m, "step_accuracy") == (acc["mean"], acc["steps"]["stderr"])


def test_empty_suite_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one episode"):
        suite_metrics([])


def test_translation_reads_the_first_answers_number_field() -> None:
    from evaluation.metrics import suite_metrics
    from rollout.runner import EpisodeResult
    from tests.unit.evaluation.episodes import turn

    def ep(first_ok: bool | None, success: bool) -> EpisodeResult:
        state = {"cards": [{"rank": "K", "suit": "S"}], "target": 3}
        t = turn(success, {"number_field_ok": first_ok, "success": success}, state)
        return EpisodeResult("gp", success, [t], {})

    m = suite_metrics([ep(True, True), ep(False, True), ep(None, False), ep(True, False)])
    assert (m["translation"]["successes"], m["translation"]["n"]) == (2, 4)
    # success is the formula's alone: a wrong number field does not lower it
    assert m["rate"] == 0.5
    lo, hi = m["wilson95"]
    assert lo < 0.5 < hi


def test_virl_vl_landmark_recognition_counts_every_turn() -> None:
    def episode(flags: list[bool | None]) -> EpisodeResult:
        turns = [turn(True, {"landmarks_ok": f}, {"route_id": "r"}) for f in flags]
        return EpisodeResult(
            "v", True, turns, {"metrics": virl_episode(1, 1).final_info["metrics"]}
        )

    m = suite_metrics([episode([True, False, True]), episode([True])])
    assert (m["recognition"]["successes"], m["recognition"]["n"]) == (3, 4)
    assert headline(m, "recognition") == (m["recognition"]["rate"], m["recognition"]["stderr"])
    assert "recognition" not in suite_metrics([episode([None, None])])  # text mode: not checked
