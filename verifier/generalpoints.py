"""GeneralPoints verifier: score one response against a task state with the paper's table.

Checks, each reported in `Verdict.fields` (None = not checked):

* parse_ok: the reply holds a JSON-like object with a "formula" field (the last such object
  wins; see verifier.json_answer for what is tolerated);
* formula_legal: the formula is + - * / ( ) over whole numbers (verifier.safe_arith; exact
  Fractions; dividing by zero counts as illegal);
* cards_ok (image mode only): the "cards" field names the hand's ranks as a multiset (suits are
  not asked for; order is free);
* numbers_ok: the formula's literals are the hand's numbers, each used once (multiset
  equality);
* formula: the formula as scored (normalized, at most 200 characters), None if none;
* value: the formula's exact value (a Fraction as text), success when it equals the target
  and every other check passes;
* number_field_ok: the answer's "number" field lists the hand's numbers under the active rule
  (a multiset); None when the answer has no such field. As in the study, this field never
  decides success: it feeds a separate metric (translation accuracy: did the model turn the
  cards into the rule's numbers) and, when the formula fails, the feedback text.

Success is decided by the formula alone, as in the study (and, in image mode, by the "cards"
field: the recognition check). Reward: `rewards.correct` on success; otherwise the single most
severe penalty among the failed checks, so an answer with more faults never scores above one
with a subset of them (the study's code adds the penalties up: an intended difference). The
budget penalty is an episode-level event and is applied by the env, not here.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from verifier.base import Verdict
from verifier.generalpoints_rules import (
    GeneralPointsRules,
    GeneralPointsScoring,
    GeneralPointsTask,
    parse_rank,
)
from verifier.json_answer import extract_last_object
from verifier.safe_arith import safe_eval

# Unicode operators models like to write, mapped to the ASCII the evaluator accepts.
_OPERATOR_MAP = str.maketrans(
    {
        "\u00d7": "*",
        "\u2715": "*",
        "\u22c5": "*",
        "\u00b7": "*",
        "\u2217": "*",
        "\u00f7": "/",
        "\u2215": "/",
        "\u2212": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\n": " ",
        "\r": " ",
        "\t": " ",
        "[": "(",
        "]": ")",
        "{": "(",
        "}": ")",
    }
)
_INT = re.compile(r"-?\d{1,12}")
_MAX_LIST = 16  # longer "cards"/"number" lists are wrong for any hand; don't parse them
_MAX_VALUE_IN_FEEDBACK = 40
_MAX_FORMULA_SHOWN = 200  # the parsed formula kept in the verdict (evaluation samples)

# Reasons a response failed, in the order the verifier reports them. Texts never quote the
# model's own output (it may hold characters outside the observation charset).
REASONS = {
    "parse_error": 'your reply does not end with a JSON object that has a "formula" field',
    "illegal_formula": "your formula is not legal ({detail})",
    "wrong_cards": "the cards in your answer are not the cards shown in the image",
    "wrong_numbers": "your formula does not use each card's number exactly once",
    "wrong_number_field": 'the "number" field does not list what the cards count as',
    "wrong_value": "your formula evaluates to {value}, not {target}",
}


def failure_feedback(reasons: list[str]) -> str:
    """The next user turn after a failed attempt."""
    joined = "; ".join(reasons) if reasons else "your answer is not correct"
    return (
        f"You failed this trial because {joined}. "
        f"Try again and end your reply with a corrected JSON object."
    )


CATEGORIES = (
    "none",
    "parse_error",
    "illegal_formula",
    "wrong_cards",
    "wrong_numbers",
    "wrong_value",
)


def _normalize_key(key: str) -> str:
    return re.sub(r"[\s_\-]", "", key).lower()


def _has_formula(obj: dict[str, Any]) -> bool:
    return any(_normalize_key(k) == "formula" for k in obj)


def normalize_formula(raw: Any, target: int) -> str | None:
    """Formula text ready for safe_eval, or None when the field is not a string or number.

    Drops a trailing '= <target>' (or a leading '<target> ='), code ticks, a final period.
    """
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        return None
    text = str(raw).translate(_OPERATOR_MAP).strip(" `$.")
    if "=" in text:
        parts = [p.strip() for p in text.split("=") if p.strip()]
        non_target = [p for p in parts if p != str(target)]
        text = non_target[0] if non_target else (parts[0] if parts else "")
    return text


def _as_list(value: Any) -> list[Any] | None:
    if isinstance(value, str):
        value = [v for v in re.split(r"[,\s]+", value[:200]) if v]
    if not isinstance(value, list) or len(value) > _MAX_LIST:
        return None
    return value


def _as_int_list(value: Any) -> list[int] | None:
    items = _as_list(value)
    if items is None:
        return None
    out: list[int] = []
    for item in items:
        if isinstance(item, bool):
            return None
        if isinstance(item, int):
            out.append(item)
        elif isinstance(item, float) and item.is_integer():
            out.append(int(item))
        elif isinstance(item, str) and _INT.fullmatch(item.strip()):
            out.append(int(item.strip()))
        else:
            return None
    return out


def _cards_match(cards_field: Any, task: GeneralPointsTask) -> bool:
    items = _as_list(cards_field)
    if items is None:
        return False
    ranks = [parse_rank(item) for item in items]
    return None not in ranks and Counter(ranks) == Counter(task.ranks)


class GeneralPointsVerifier:
    """`verify(task_state, response_text) -> Verdict` for GeneralPoints (training and eval)."""

    def __init__(self, config: GeneralPointsRules | dict[str, Any] | None = None) -> None:
        # Only what decides a verdict is kept: the env's GeneralPointsConfig, a dict of
        # GeneralPointsScoring's fields, or None (the paper's table, text mode).
        self.config = GeneralPointsScoring.coerce(config)

    def verify(self, task_state: GeneralPointsTask | dict[str, Any], response_text: str) -> Verdict:
        if not isinstance(response_text, str):
            raise TypeError(f"response_text must be str, got {type(response_text).__name__}")
        task = GeneralPointsTask.coerce(task_state)
        rewards = self.config.rewards
        check_cards = self.config.observation_mode == "image"
        fields: dict[str, Any] = {
            "parse_ok": False,
            "cards_ok": None,
            "numbers_ok": None,
            "formula_legal": None,
            "value": None,
            "formula": None,
            "number_field_ok": None,
            "success": False,
            "error": "parse_error",
            "errors": "parse_error",
            "formula_error": None,
        }
        # (category, penalty, reason) for every failed check, in report order.
        failures: list[tuple[str, float, str]] = []

        answer = extract_last_object(response_text, accept=_has_formula)
        if answer is None:
            failures.append(("parse_error", rewards.illegal_formula, REASONS["parse_error"]))
            return self._verdict(failures, fields)
        fields["parse_ok"] = True
        answer = {_normalize_key(k): v for k, v in answer.items()}

        formula = normalize_formula(answer.get("formula"), task.target)
        fields["formula"] = None if formula is None else formula[:_MAX_FORMULA_SHOWN]
        result = safe_eval(formula) if formula is not None else None
        fields["formula_legal"] = bool(result is not None and result.ok)
        if result is None or not result.ok:
            detail = result.message if result is not None else "the formula must be a string"
            fields["formula_error"] = result.category if result is not None else "not_a_string"
            reason = REASONS["illegal_formula"].format(detail=detail)
            failures.append(("illegal_formula", rewards.illegal_formula, reason))

        if check_cards:
            fields["cards_ok"] = _cards_match(answer.get("cards", answer.get("card")), task)
            if not fields["cards_ok"]:
                failures.append(("wrong_cards", rewards.wrong_cards, REASONS["wrong_cards"]))

        number_field = answer.get("number", answer.get("numbers"))
        if number_field is not None:
            listed = _as_int_list(number_field)
            fields["number_field_ok"] = listed is not None and Counter(listed) == Counter(
                task.numbers
            )
        if result is not None and result.ok:
            formula_ok = Counter(result.numbers) == Counter(task.numbers)
            fields["numbers_ok"] = formula_ok
            fields["value"] = str(result.value)
            if not formula_ok:
                failures.append(("wrong_numbers", rewards.wrong_numbers, REASONS["wrong_numbers"]))
            if result.value != task.target:
                shown = str(result.value)
                if len(shown) > _MAX_VALUE_IN_FEEDBACK:
                    shown = "a different value"
                reason = REASONS["wrong_value"].format(value=shown, target=task.target)
                failures.append(("wrong_value", rewards.wrong_value, reason))
        if failures and fields["number_field_ok"] is False:
            # Feedback only: the number field explains a failure but never causes one.
            failures.append(("", 0.0, REASONS["wrong_number_field"]))
        return self._verdict(failures, fields)

    def _verdict(self, failures: list[tuple[str, float, str]], fields: dict[str, Any]) -> Verdict:
        if not failures:
            fields.update(success=True, error="none", errors="")
            return Verdict(
                reward=float(self.config.rewards.correct), success=True, feedback="", fields=fields
            )
        # Feedback-only entries have no category (the number field) and carry no penalty.
        categories = list(dict.fromkeys(category for category, _, _ in failures if category))
        penalties = {category: penalty for category, penalty, _ in failures if category}
        # Most severe = lowest penalty; ties go to the earlier (more basic) check.
        worst = min(categories, key=lambda c: penalties[c])
        reward = penalties[worst]
        fields.update(success=False, error=worst, errors=",".join(categories))
        feedback = failure_feedback([reason for _, _, reason in failures])
        return Verdict(reward=float(reward), success=False, feedback=feedback, fields=fields)
