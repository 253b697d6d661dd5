"""VirlVerifier: tolerant parsing, the reward table, and safety on hostile text."""

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verifier.virl import (
    VirlVerifier,
    canonical_action,
    mentioned_landmarks,
    parse_answer,
)

STATE = {
    "route_id": "r",
    "expected_action": "turn_direction(northeast)",
    "action_space": "absolute",
    "visible_landmarks": ["Joe's Pizza"],
    "route_landmarks": ["Joe's Pizza", "Joe Pizza", "Katz Deli", "Blue Bottle Cafe"],
    "tries_used": 0,
    "tries_per_point": 2,
}
VERIFIER = VirlVerifier()
STRICT = VirlVerifier({"scoring": "strict"})


def verify(text, **overrides):
    return VERIFIER.verify({**STATE, **overrides}, text)


def verify_strict(text, **overrides):
    return STRICT.verify({**STATE, **overrides}, text)


@pytest.mark.parametrize(
    "text",
    [
        '{"current observation": "Joe\'s Pizza", "current instruction": "t", '
        '"action": "turn_direction(northeast)"}',
        'Thinking...\n```json\n{"current observation": "I see Joe\'s Pizza on the left",\n'
        ' "current instruction": "Turn right", "action": "turn_direction(northeast)",\n}\n```',
        "{'current observation': 'Joe's Pizza', 'current instruction': 'go', "
        "'action': 'Turn_Direction( North East )',}",
        '{"Current_Observation": "JOES PIZZA", "ACTION": "turn_direction(north-east)"}',
        "current observation: Joe's Pizza\naction: turn_direction(NorthEast)\n",
        'Sure! {"current observation": "Joe’s Pizza", "action": "turn_direction( northeast )"} '
        "Hope that helps.",
    ],
)
def test_tolerant_parsing_scores_correct(text):
    verdict = verify(text)
    assert verdict.fields["parse_ok"], text
    assert verdict.success and verdict.reward == 1.0 and verdict.feedback == ""
    assert verdict.fields["got_action"] == "turn_direction(northeast)"
    assert verdict.fields["answer_start"] >= 0


def test_strict_reward_table_and_precedence():
    good_obs = "Joe's Pizza"
    v = verify_strict(f'{{"current observation": "{good_obs}", "action": "forward()"}}')
    assert v.reward == -1.0 and v.fields["action_ok"] is False and v.fields["observation_ok"]
    assert "not correct" in v.feedback
    v = verify_strict('{"current observation": "Katz Deli", "action": "turn_direction(northeast)"}')
    assert v.reward == -1.5 and v.fields["action_ok"] and not v.fields["observation_ok"]
    assert "not in view" in v.feedback and not v.success
    # Both wrong: the observation penalty, not a sum.
    v = verify_strict('{"current observation": "nothing", "action": "stop()"}')
    assert v.reward == -1.5
    v = verify_strict(
        '{"current observation": "Joe\'s Pizza and Katz Deli", "action": "forward()"}'
    )
    assert v.reward == -1.5
    v = verify_strict("I would turn northeast.")
    assert v.reward == -1.0 and not v.fields["parse_ok"] and v.fields["answer_start"] == -1
    # The last allowed try: the spent budget replaces the penalty.
    v = verify_strict('{"current observation": "nothing", "action": "stop()"}', tries_used=1)
    assert v.reward == -1.5 and v.fields["budget_exceeded"] and not v.success
    v = verify_strict(
        '{"current observation": "Joe\'s Pizza", "action": "turn_direction(northeast)"}',
        tries_used=1,
    )
    assert v.success and not v.fields["budget_exceeded"]


def test_study_scoring_looks_at_the_action_only():
    right = "turn_direction(northeast)"
    for obs in ("Katz Deli", "nothing at all", "Joe's Pizza"):
        v = verify(f'{{"current observation": "{obs}", "action": "{right}"}}')
        assert v.success and v.reward == 1.0 and v.feedback == "", obs
    v = verify(f'{{"action": "{right}"}}')  # no observation at all: still +1
    assert v.success and v.reward == 1.0 and v.fields["observation_ok"] is False
    for wrong in ("forward()", "stop()", "turn_direction(left)", "jump()"):
        v = verify(f'{{"current observation": "Joe\'s Pizza", "action": "{wrong}"}}')
        assert not v.success and v.reward == -1.0, wrong
    v = verify("no answer here")
    assert v.reward == -1.0 and not v.fields["parse_ok"]
    v = verify('{"current observation": "Joe\'s Pizza", "action": "forward()"}', tries_used=1)
    assert v.reward == -1.5 and v.fields["budget_exceeded"]


def test_landmark_recognition_is_reported_in_image_mode_only():
    good = '{"current observation": "Joe\'s Pizza", "action": "forward()"}'
    bad = '{"current observation": "Katz Deli", "action": "forward()"}'
    assert verify(good).fields["landmarks_ok"] is None
    assert verify(good, observation_mode="image").fields["landmarks_ok"] is True
    assert verify(bad, observation_mode="image").fields["landmarks_ok"] is False


def test_similar_names_are_told_apart():
    assert mentioned_landmarks("I see Joe's Pizza", STATE["route_landmarks"]) == {"Joe's Pizza"}
    assert mentioned_landmarks("joe pizza!", STATE["route_landmarks"]) == {"Joe Pizza"}
    v = verify_strict('{"current observation": "Joe Pizza", "action": "turn_direction(northeast)"}')
    assert v.reward == -1.5
    v = verify_strict(
        '{"current observation": "none", "action": "forward()"}',
        visible_landmarks=[],
        expected_action="forward()",
    )
    assert v.success


def test_action_spaces_are_enforced():
    rel = {"action_space": "relative", "expected_action": "turn_direction(slightly left)"}
    obs = '"current observation": "Joe\'s Pizza"'
    assert verify(f'{{{obs}, "action": "turn_direction(Slightly_Left)"}}', **rel).success
    v = verify(f'{{{obs}, "action": "turn_direction(northwest)"}}', **rel)
    assert v.reward == -1.0 and "not in the action space" in v.feedback
    v = verify(f'{{{obs}, "action": "turn_direction(left)"}}')
    assert v.reward == -1.0 and "not in the action space" in v.feedback
    v = verify(f'{{{obs}, "action": "fly()"}}')
    assert v.fields["got_action"] is None and v.reward == -1.0


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("forward()", "forward()"),
        (" FORWARD ", "forward()"),
        ("stop ( )", "stop()"),
        ("turn_direction('north')", "turn_direction(north)"),
        ("turn direction(south west)", "turn_direction(southwest)"),
        ("turn_direction(slightly  right)", "turn_direction(slightly right)"),
        ("turn_direction(up)", None),
        ("forward(3)", None),
        ("", None),
    ],
)
def test_canonical_action(raw, canonical):
    assert canonical_action(raw) == canonical


HOSTILE = [
    "__import__('os').system('echo pwned')",
    '{"current observation": "x", "action": "__import__(\'os\').system(\'ls\')"}',
    '{"current observation": ' + "9" * 10_000 + ', "action": "forward()"}',
    "[" * 5000 + "]" * 5000,
    "{" * 5000 + '"action": "forward()"' + "}" * 5000,
    '{"action": "' + "a" * 1_000_000 + '"}',
    " " * 200_000 + "current observation:" + " " * 200_000,
    "```" * 5000,
    "current " * 20_000 + ":",
    '{"current observation": "Joe\'s Pizza", "action": "turn_direction(northeast)"}' * 2000,
    "\x00\ud800\uffff" * 1000,
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_answers_are_safe_and_fast(text):
    start = time.perf_counter()
    verdict = verify(text)
    assert time.perf_counter() - start < 2.0  # bounded cost, with room for a loaded CI
    assert verdict.reward in (1.0, -1.0, -1.5)
    assert isinstance(verdict.to_dict(), dict)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=3000))
def test_arbitrary_text_never_raises_and_is_fast(text):
    start = time.perf_counter()
    verdict = verify(text)
    assert time.perf_counter() - start < 1.0  # bounded cost; room for a loaded CI machine
    assert verdict.reward in (1.0, -1.0, -1.5)


_KEYS = st.sampled_from(["current observation", "action", "current instruction", "Action", "x"])
_VALUES = st.one_of(st.text(max_size=50), st.integers(), st.none(), st.lists(st.integers()))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_KEYS, _VALUES, max_size=4), st.booleans())
def test_json_like_answers_never_raise(obj, fenced):
    import json

    text = json.dumps(obj)
    if fenced:
        text = f"```json\n{text}\n```"
    verdict = verify(text)
    parsed = parse_answer(text)
    assert verdict.fields["parse_ok"] == (parsed is not None)


def test_verifier_is_deterministic():
    text = '{"current observation": "Joe\'s Pizza", "action": "stop()"}'
    assert verify(text) == verify(text)


# (prefix, repeated unit): inputs that used to cost quadratic time (many keys whose values run
# on to the end) and long values full of escapes or apostrophes.
LINEAR_CASES = {
    "bare keys": ("", "action:"),
    "single-quoted values": ("", "'action': 'a"),
    "observation keys": ("", "current observation: "),
    "double-quoted values": ("", '"action": "x'),
    "escapes in a value": ("'action': '", "\\a"),
    "apostrophes in a value": ("'action': '", "Joe's "),
}


@pytest.mark.parametrize(("prefix", "unit"), list(LINEAR_CASES.values()), ids=list(LINEAR_CASES))
def test_parsing_is_linear_in_the_answer_length(prefix, unit):
    # 128k characters with the cap lifted: quadratic parsing took ~3 s at 32k (~50 s here);
    # linear parsing takes milliseconds. The bound leaves ample room for a loaded machine.
    text = prefix + unit * (131_072 // len(unit))
    start = time.perf_counter()
    parse_answer(text, max_chars=len(text))
    assert time.perf_counter() - start < 1.0


def test_public_helpers_enforce_the_verifier_cap():
    from verifier.virl import answer_start
    from verifier.virl_rules import DEFAULT_MAX_RESPONSE_CHARS

    answer = '{"action": "forward()"}'
    late = " " * DEFAULT_MAX_RESPONSE_CHARS + answer
    assert parse_answer(answer) == {"action": "forward()"}
    assert parse_answer(late) is None  # beyond the cap, as the verifier sees it
    assert parse_answer(late, max_chars=len(late)) == {"action": "forward()"}
    assert answer_start(late) == -1 and answer_start(late, max_chars=len(late)) > 0
    assert verify(late).fields["parse_ok"] is False
    assert canonical_action("forward()" + " " * 100_000) == "forward()"


def test_the_verifier_keeps_only_what_decides_a_verdict() -> None:
    from envs.virl.config import VirlConfig

    # The env's config (any object with scoring, rewards, max_response_chars) or a dict of those.
    scoring = VirlVerifier(VirlConfig(scoring="strict", rewards={"correct": 2.0})).config
    assert (scoring.scoring, scoring.rewards.correct) == ("strict", 2.0)
    assert VirlVerifier({"rewards": {"wrong_action": -2.0}}).config.rewards.wrong_action == -2.0
    with pytest.raises(ValueError, match=r"^city: unknown VirlScoring field"):
        VirlVerifier({"city": "milan"})
    with pytest.raises(ValueError, match=r"^scoring"):
        VirlVerifier({"scoring": "lenient"})
