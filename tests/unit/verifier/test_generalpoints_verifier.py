"""GeneralPoints verifier: reward table, penalty combination, tolerant parsing, hostile input."""

import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.generalpoints.config import GeneralPointsConfig
from verifier.base import Verdict
from verifier.generalpoints import CATEGORIES, GeneralPointsVerifier, normalize_formula
from verifier.generalpoints_rules import Card, GeneralPointsTask, RewardTable, make_task

TASK = make_task(["8", "3", "8", "3"])  # 10-rule, target 24
FACE_TASK = GeneralPointsTask(
    (Card("K", "hearts"), Card("Q", "diamonds"), Card("2", "hearts"), Card("2", "diamonds")),
    24,
    "ordinal",
)  # numbers 13, 12, 2, 2


def answer(formula, cards=("8", "3", "8", "3"), number=(8, 3, 8, 3)) -> str:
    data = {"formula": formula}
    if cards is not None:
        data = {"cards": list(cards), **data}
    if number is not None:
        data = {"number": list(number), **data}
    return json.dumps(data)


TEXT = GeneralPointsVerifier()
IMAGE = GeneralPointsVerifier({"observation_mode": "image"})


@pytest.mark.parametrize(
    ("verifier", "response", "reward", "error"),
    [
        (TEXT, answer("8/(3-8/3)"), 5.0, "none"),
        (TEXT, answer("8+3+8+3"), -1.0, "wrong_value"),
        (TEXT, answer("8*3"), -2.0, "wrong_numbers"),
        (TEXT, answer("8*3*8/8"), -2.0, "wrong_numbers"),  # right value, wrong numbers
        # The study decides success by the formula alone: a wrong "number" field is no failure.
        (TEXT, answer("8/(3-8/3)", number=(10, 3, 8, 3)), 5.0, "none"),
        (TEXT, answer("8^3"), -3.0, "illegal_formula"),
        (TEXT, answer("8/(3-3)+8"), -3.0, "illegal_formula"),
        (TEXT, "24", -3.0, "parse_error"),
        (TEXT, answer("8/(3-8/3)", cards=("K", "K", "K", "K")), 5.0, "none"),  # text: unchecked
        (IMAGE, answer("8/(3-8/3)", cards=("K", "3", "8", "3")), -1.5, "wrong_cards"),
        (IMAGE, answer("8/(3-8/3)", cards=None), -1.5, "wrong_cards"),
        (IMAGE, answer("8/(3-8/3)", cards=("3", "8", "3", "8")), 5.0, "none"),  # order free
    ],
)
def test_reward_table(verifier, response, reward, error):
    verdict = verifier.verify(TASK, response)
    assert isinstance(verdict, Verdict)
    assert verdict.reward == reward
    assert verdict.fields["error"] == error
    assert verdict.success == (error == "none")
    assert (verdict.feedback == "") == verdict.success
    json.dumps(verdict.to_dict())  # JSON-able


def test_the_most_severe_penalty_stands_alone():
    # Wrong cards (-1.5), wrong numbers (-2) and wrong value (-1) at once.
    bad = answer("8+3+8", cards=("K", "3", "8", "3"))
    verdict = IMAGE.verify(TASK, bad)
    assert verdict.fields["errors"] == "wrong_cards,wrong_numbers,wrong_value"
    assert verdict.reward == -2.0 and verdict.fields["error"] == "wrong_numbers"
    # Illegal formula and wrong cards: -3.
    assert IMAGE.verify(TASK, answer("8**3", cards=None)).reward == -3.0


def test_number_field_is_translation_not_success():
    right = TEXT.verify(TASK, answer("8/(3-8/3)"))
    assert right.fields["number_field_ok"] is True
    wrong = TEXT.verify(TASK, answer("8/(3-8/3)", number=(10, 3, 8, 3)))
    assert wrong.success and wrong.feedback == "" and wrong.fields["number_field_ok"] is False
    assert TEXT.verify(TASK, answer("8/(3-8/3)", number=None)).fields["number_field_ok"] is None
    # On a failed formula the wrong number field is named in the feedback, at no cost.
    failed = TEXT.verify(TASK, answer("8+3+8+3", number=(10, 3, 8, 3)))
    assert failed.reward == -1.0 and failed.fields["error"] == "wrong_value"
    assert '"number" field' in failed.feedback


def test_number_field_is_read_under_the_active_rule():
    # OOD rule: K and Q count 13 and 12. Listing the training rule's 10s is a translation miss,
    # yet the correct formula still succeeds; unparsable or non-numeric fields count as misses.
    formula = "13 + 12 - 2 / 2"
    ok = TEXT.verify(FACE_TASK, json.dumps({"number": [2, 13, 2, 12], "formula": formula}))
    assert ok.success and ok.fields["number_field_ok"] is True  # order free
    as_ten = TEXT.verify(FACE_TASK, json.dumps({"number": [10, 10, 2, 2], "formula": formula}))
    assert as_ten.success and as_ten.reward == 5.0 and as_ten.feedback == ""
    assert as_ten.fields["number_field_ok"] is False
    for junk in ("K Q 2 2", [13, 12, 2], "13,12,2,2", [13.0, 12, 2, 2.0]):
        verdict = TEXT.verify(FACE_TASK, json.dumps({"number": junk, "formula": formula}))
        assert verdict.success
        assert verdict.fields["number_field_ok"] is (junk in ("13,12,2,2", [13.0, 12, 2, 2.0]))


def test_stack_penalties_is_removed_with_a_clear_error():
    with pytest.raises(ValueError, match=r"stack_penalties: removed: .*did not reproduce"):
        GeneralPointsConfig.from_dict({"stack_penalties": True})


def test_more_faults_never_score_higher_without_stacking():
    # Monotonicity: adding a fault to an answer never raises its reward.
    one = IMAGE.verify(TASK, answer("8*3*8/8")).reward  # wrong numbers
    two = IMAGE.verify(TASK, answer("8*3*8/8", cards=("A",))).reward  # + wrong cards
    assert two <= one


def test_custom_reward_table():
    cfg = GeneralPointsConfig(rewards=RewardTable(correct=1.0, wrong_value=-0.25))
    verifier = GeneralPointsVerifier(cfg)
    assert verifier.verify(TASK, answer("8/(3-8/3)")).reward == 1.0
    assert verifier.verify(TASK, answer("8+3+8+3")).reward == -0.25


@pytest.mark.parametrize(
    "response",
    [
        '{"cards": ["8","3","8","3"], "number": [8,3,8,3], "formula": "8/(3-8/3)"}',
        "{'cards': ['8','3','8','3'], 'number': [8,3,8,3], 'formula': '8 / ( 3 - 8 / 3 )'}",
        '{"cards": ["8","3","8","3",], "number": [8,3,8,3,], "formula": "8/(3-8/3)",}',
        '{"formula": "8/(3-8/3) = 24"}',
        '{"formula": "24 = 8/(3-8/3)"}',
        '{"formula": "8 \u00f7 (3 \u2212 8 \u00f7 3)"}',
        '{"formula": "`8/(3-8/3)`."}',
        'Let me think. 8/3 is 2.67...\n```json\n{"formula": "8/(3-8/3)"}\n```\nDone.',
        'Draft: {"formula": "8+8+3+3"}\nFinal: {"formula": "8/(3-8/3)"}',
        "{cards: [8, 3, 8, 3], number: [8, 3, 8, 3], formula: 8/(3-8/3) = 24}",
        '{"Formula": "8/(3-8/3)", "Numbers": "8, 3, 8, 3"}',
        '{"answer": {"formula": "8/(3-8/3)"}}',
        '{"formula": "8/(3-8/3)\n"}',
    ],
)
def test_tolerant_parsing(response):
    verdict = TEXT.verify(TASK, response)
    assert verdict.success, verdict
    assert verdict.fields["value"] == "24"


def test_ordinal_rule_numbers():
    good = json.dumps(
        {"cards": ["K", "Q", "2", "2"], "number": [13, 12, 2, 2], "formula": "12*2 + (13-13)"}
    )
    assert TEXT.verify(FACE_TASK, good).fields["error"] == "wrong_numbers"
    good = good.replace("12*2 + (13-13)", "(13 - 12 + 2) * 2 * 4")
    assert not TEXT.verify(FACE_TASK, good).success
    solved = json.dumps(
        {"cards": ["K", "Q", "2", "2"], "number": [13, 12, 2, 2], "formula": "(13 - 12) * 2 * 12"}
    )
    assert TEXT.verify(FACE_TASK, solved).fields["error"] == "wrong_numbers"  # 12 twice, no 2
    solved = json.dumps({"number": [13, 12, 2, 2], "formula": "13 + 12 - 2 / 2"})
    assert TEXT.verify(FACE_TASK, solved).success
    ten_rule = json.dumps({"number": [10, 10, 2, 2], "formula": "10 + 10 + 2 + 2"})
    assert TEXT.verify(FACE_TASK, ten_rule).fields["error"] == "wrong_numbers"
    assert TEXT.verify(FACE_TASK.to_dict(), solved).success  # dict task states work too


def test_normalize_formula():
    assert normalize_formula("8*3 = 24", 24) == "8*3"
    assert normalize_formula("24 = 8*3", 24) == "8*3"
    assert normalize_formula(24, 24) == "24"
    assert normalize_formula(["8*3"], 24) is None
    assert normalize_formula(True, 24) is None


HOSTILE = [
    answer("__import__('os')"),
    answer("__import__('os').system('echo hi')"),
    answer("9**9**9"),
    answer("9" * 10_000),
    '{"formula": "' + "(" * 5000 + "8" + ")" * 5000 + '"}',
    "(" * 5000,
    '{"formula": "' + "(" * 3000 + "8" + ")" * 3000 + '"}',  # fits the scan window
    "{" * 5000,
    answer("1/0"),
    answer("8/(3-3)"),
    answer("-".join(["1"] * 200)),
    answer("lambda: 0"),
    answer(None),
    '{"formula": {"nested": ' * 50 + "1" + "}" * 100,
    '{"formula": "' + "1+" * 250 + '1"}',
    answer("1" * 12 + "*" + "1" * 12),
    "\x00" * 100 + '{"formula": "8\x00"}',
]


@pytest.mark.parametrize("response", HOSTILE)
def test_hostile_answers_get_a_verdict_quickly(response):
    start = time.perf_counter()
    verdict = IMAGE.verify(TASK, response)
    # Bounded cost, not a speed target (benchmarks/ has those): unbounded parsing of these
    # inputs would take minutes or crash; 1 s leaves room for a loaded CI machine.
    assert time.perf_counter() - start < 1.0
    assert not verdict.success
    assert verdict.reward <= -1.5
    assert verdict.fields["error"] in CATEGORIES
    assert verdict.feedback.startswith("You failed this trial because")
    assert verdict.feedback.isascii() and verdict.feedback.isprintable()


def test_non_string_response_is_a_programming_error():
    with pytest.raises(TypeError):
        TEXT.verify(TASK, None)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=300)
@given(st.text(max_size=2000))
def test_fuzz_arbitrary_text(response):
    verdict = IMAGE.verify(TASK, response)
    assert verdict.fields["error"] in CATEGORIES
    assert verdict.feedback.isascii()


_ANSWERISH = st.sampled_from(
    [
        '{"formula": "',
        '"}',
        "{",
        "}",
        "[",
        "]",
        "'",
        '"',
        ",",
        ":",
        "8",
        "3",
        "/",
        "(",
        ")",
        "-",
        "*",
        "**",
        "=",
        " ",
        "\n",
        "cards",
        "number",
        "K",
        "formula",
        "\\",
    ]
)


@settings(max_examples=300, deadline=300)
@given(st.lists(_ANSWERISH, max_size=300).map("".join))
def test_fuzz_answer_shaped_text(response):
    verdict = TEXT.verify(TASK, response)
    assert verdict.success == (verdict.reward == 5.0)
    if verdict.success:
        assert verdict.fields["value"] == "24"


def test_the_verifier_keeps_only_what_decides_a_verdict() -> None:
    # The env's config (any object with rewards and observation_mode) or a dict of those fields.
    cfg = GeneralPointsConfig(observation_mode="image", rewards=RewardTable(correct=2.0))
    scoring = GeneralPointsVerifier(cfg).config
    assert (scoring.observation_mode, scoring.rewards.correct) == ("image", 2.0)
    assert GeneralPointsVerifier({"rewards": {"correct": 3.0}}).config.rewards.correct == 3.0
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['num_cards'\]"):
        GeneralPointsVerifier({"num_cards": 4})
    with pytest.raises(ValueError, match=r"^observation_mode"):
        GeneralPointsVerifier({"observation_mode": "video"})
