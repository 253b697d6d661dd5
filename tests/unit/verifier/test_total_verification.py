"""Verification is total: no answer, however hostile, raises out of a verifier, an env step or
the actors that run them. Numbers are parsed exactly and non-finite ones are refused."""

from __future__ import annotations

import json
import math
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cluster.arms import rollout_summary
from envs.generalpoints.env import GeneralPointsEnv
from rollout.pools import EnvActor, VerifierActor
from rollout.runner import EpisodeResult
from tests.unit.evaluation.episodes import turn
from verifier.base import VERIFIER_ERROR_FIELD, Verdict, verify_total
from verifier.generalpoints import GeneralPointsVerifier
from verifier.generalpoints_rules import make_task, parse_rank
from verifier.json_answer import extract_last_object
from verifier.safe_arith import DISALLOWED, NUMBER_TOO_LARGE, safe_eval
from verifier.virl import VirlVerifier

TASK = make_task(["8", "3", "8", "3"])  # 10-rule, target 24
GP_TEXT = GeneralPointsVerifier()
GP_IMAGE = GeneralPointsVerifier({"observation_mode": "image"})
VIRL_STATE = {
    "route_id": "r",
    "expected_action": "turn_direction(northeast)",
    "action_space": "absolute",
    "visible_landmarks": ["Joe's Pizza"],
    "route_landmarks": ["Joe's Pizza", "Katz Deli"],
    "tries_used": 0,
    "tries_per_point": 2,
}
VIRL_VERIFIERS = [VirlVerifier(), VirlVerifier({"scoring": "strict"})]


def test_the_overflowing_card_of_the_audit_is_a_failed_turn_not_a_crash() -> None:
    # The audit's answer: json turned 1e309 into inf and int(inf) raised OverflowError.
    env = GeneralPointsEnv({"observation_mode": "image", "image_size": 64})
    env.reset(seed=0)
    _obs, reward, _term, _trunc, info = env.step('{"cards": [1e309], "formula": "1"}')
    assert not info["verdict"]["success"]
    assert reward < 0
    assert VERIFIER_ERROR_FIELD not in info["verdict"]["fields"]  # handled, not caught


@pytest.mark.parametrize(
    ("token", "rank"),
    [
        (13, "K"),
        (13.0, "K"),
        (1, "A"),
        (math.inf, None),
        (-math.inf, None),
        (math.nan, None),
        (1e300, None),
        (10**400, None),
        (12.5, None),
        (True, None),
        (0, None),
        (-3, None),
    ],
)
def test_parse_rank_refuses_non_finite_and_huge_numbers(token: object, rank: str | None) -> None:
    assert parse_rank(token) == rank


def test_json_numbers_are_exact_and_finite() -> None:
    big = "123456789012345678901234567890"
    obj = extract_last_object('{"a": ' + big + ', "b": 1e309, "c": -1E+400, "d": 2.5e3}')
    assert obj == {"a": int(big), "b": "1e309", "c": "-1E+400", "d": 2500.0}
    assert type(obj["a"]) is int  # not a float rounded past 2**53


@pytest.mark.parametrize(
    "literal", ["0x1F", "0b101", "0o17", "1_000", "0X18", "0xFFFFFFFFFFFFFFFFFFFF"]
)
def test_safe_arith_accepts_decimal_literals_only(literal: str) -> None:
    result = safe_eval(f"{literal} + 1")
    assert result.category == DISALLOWED and result.value is None


def test_safe_arith_bounds_every_literal() -> None:
    assert safe_eval("1" * 12 + " - 1").ok
    assert safe_eval("(" + "1" * 13 + ")").category == NUMBER_TOO_LARGE
    assert safe_eval("(3 # a comment with é\n + 4)").value == 7  # offsets are UTF-8 bytes


_NUMBERISH = st.one_of(
    st.integers(min_value=-(10**60), max_value=10**60),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["1e309", "-1e309", "1E-400", "NaN", "Infinity", "0x1F", "1_0", "9" * 45]),
    st.text(max_size=20),
)


def _raw(value: object) -> str:
    # Numbers as a model would write them (json.dumps writes inf as Infinity, nan as NaN).
    return json.dumps(value) if not isinstance(value, str) else value


@settings(max_examples=400, deadline=500)
@given(
    cards=st.lists(_NUMBERISH, max_size=6),
    number=st.lists(_NUMBERISH, max_size=6),
    formula=st.one_of(_NUMBERISH, st.just("8*3")),
    quote=st.booleans(),
)
def test_fuzz_numbers_in_every_gp_field(cards, number, formula, quote) -> None:
    def arr(items: list) -> str:
        return "[" + ", ".join(_raw(x) for x in items) + "]"

    f = json.dumps(str(formula)) if quote else _raw(formula)
    text = '{"cards": ' + arr(cards) + ', "number": ' + arr(number) + ', "formula": ' + f + "}"
    for verifier in (GP_TEXT, GP_IMAGE):
        verdict = verifier.verify(TASK, text)  # the verifier itself, not the safety net
        assert verdict.success == (verdict.reward == 5.0)


@settings(max_examples=300, deadline=500)
@given(observation=_NUMBERISH, action=_NUMBERISH, instruction=_NUMBERISH)
def test_fuzz_numbers_in_every_virl_field(observation, action, instruction) -> None:
    text = (
        '{"current observation": '
        + _raw(observation)
        + ', "current instruction": '
        + _raw(instruction)
        + ', "action": '
        + _raw(action)
        + "}"
    )
    for verifier in VIRL_VERIFIERS:
        verdict = verifier.verify(VIRL_STATE, text)
        assert not verdict.success


class _RaisingVerifier:
    """A fake, because after the fixes above no real answer makes a verifier raise: it stands
    for a verifier bug, the fault the safety net exists for."""

    def __init__(self, on_empty_too: bool) -> None:
        self.on_empty_too = on_empty_too

    def verify(self, task_state: object, response_text: str) -> Verdict:
        if response_text or self.on_empty_too:
            raise OverflowError("cannot convert float infinity to integer")
        return Verdict(reward=-1.0, success=False, feedback="Say something.", fields={"k": 1})


def test_verify_total_turns_an_exception_into_the_empty_answers_verdict(caplog) -> None:
    start = time.perf_counter()
    verdict = verify_total(_RaisingVerifier(on_empty_too=False), {}, "x" * 10_000)
    assert time.perf_counter() - start < 1.0
    assert not verdict.success
    assert (verdict.reward, verdict.feedback) == (-1.0, "Say something.")
    assert verdict.fields["k"] == 1
    assert verdict.fields[VERIFIER_ERROR_FIELD].startswith("OverflowError")
    assert "OverflowError" in caplog.text and "x" * 100 not in caplog.text  # no answer in logs


def test_verify_total_when_even_the_empty_answer_raises() -> None:
    verdict = verify_total(_RaisingVerifier(on_empty_too=True), {}, "x")
    assert not verdict.success and verdict.reward == 0.0 and verdict.feedback
    assert VERIFIER_ERROR_FIELD in verdict.fields


def test_the_verifier_actor_never_raises() -> None:
    actor = VerifierActor()  # the class Ray runs, called in-process
    config = {"observation_mode": "text"}
    good = actor.verify("generalpoints", config, TASK.to_dict(), '{"formula": "8/(3-8/3)"}')
    assert good["success"] and VERIFIER_ERROR_FIELD not in good["fields"]
    key = next(iter(actor._verifiers))
    actor._verifiers[key] = _RaisingVerifier(on_empty_too=True)
    bad = actor.verify("generalpoints", config, TASK.to_dict(), "anything")
    assert bad["success"] is False and VERIFIER_ERROR_FIELD in bad["fields"]


def test_an_env_that_raises_ends_the_episode_truncated(tmp_path) -> None:
    actor = EnvActor(str(tmp_path))
    actor.reset("e#1", "generalpoints", {}, {"seed": 0})
    # A verdict the env cannot take (a real fault: a malformed dict from another process).
    step = actor.apply_verdict("e#1", {"reward": -1.0, "unknown_key": 1})
    assert step["done"] and step["truncated"] and not step["terminated"]
    assert step["reward"] == -1.0
    assert step["info"]["env_error"].startswith("TypeError")
    assert actor.live_episodes() == 0


def test_rollout_metrics_count_verifier_errors() -> None:
    ok = turn(True)
    failed = turn(False)
    failed = type(failed)(**{**failed.__dict__, "verdict": json.dumps({VERIFIER_ERROR_FIELD: "X"})})
    episodes = [EpisodeResult("a", True, [ok], {}), EpisodeResult("b", False, [failed, failed], {})]
    assert rollout_summary(episodes)["rollout/verifier_errors"] == 2.0
