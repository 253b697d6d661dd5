"""The V-IRL verifier: score one navigation answer against the task state of one step.

The answer is a JSON object with "current observation", "current instruction" and "action"
(the paper's format). Parsing is tolerant (JSON anywhere in the text, code fences, single
quotes, trailing commas, case and spacing in action names) and bounded: the text is cut to
``max_response_chars`` first (public helpers cut it too), every pass over the text is linear in
its length, deeply nested candidates skip the JSON parser, and nothing is ever evaluated.

Two scoring rules (``VirlScoring.scoring``, from the env's ``VirlConfig.scoring``), one reward
per turn, never stacked:

``study`` (default, as the study scores): the action alone decides.
- the action is the expected one: ``correct`` (+1), success, whatever the observation says
- otherwise (wrong, outside the action space, or no answer found): ``wrong_action`` (-1)

``strict`` (this project's earlier rule): the observation must name exactly the landmarks in
view, and the action must be right.
- the observation does not name exactly the landmarks in view: ``wrong_observation`` (-1.5)
- otherwise a wrong action, or no answer found: ``wrong_action`` (-1)
- otherwise ``correct`` (+1), success

Under both rules a failed try that uses up the point's budget gets ``budget_exceeded`` (-1.5)
instead, and ``fields["budget_exceeded"]`` tells the environment that the route has failed.
``fields["observation_ok"]`` (exact landmark set) is reported under both rules;
``fields["landmarks_ok"]`` repeats it in image mode (landmark recognition, V-IRL-VL) and is None
in text mode.

The task state (built by envs.virl.env) is a JSON-able dict with at least: expected_action,
action_space, visible_landmarks, route_landmarks, tries_used, tries_per_point.
"""

from __future__ import annotations

import json
import re
from typing import Any

from verifier.base import Verdict
from verifier.virl_rules import (
    ABSOLUTE_DIRECTIONS,
    DEFAULT_MAX_RESPONSE_CHARS,
    RELATIVE_DIRECTIONS,
    VirlRewards,
    VirlRules,
    VirlScoring,
)

MAX_JSON_DEPTH = 8
"""Candidates nested deeper than this are not handed to json.loads (which recurses)."""
MAX_FIELD_CHARS = 1000
"""Each answer field is cut to this many characters (bounds the landmark matching)."""

_KEY_NAMES = {"observation": "observation", "instruction": "instruction", "action": "action"}
# No leading optional whitespace: that would make a run of spaces cost quadratic time.
_KEY_RE = re.compile(
    r"""(current[ _-]*observation|current[ _-]*instruction|\baction)["']?\s*:""",
    re.IGNORECASE,
)
_FENCE_LANG_RE = re.compile(r"^[a-zA-Z]{0,16}\n")
_TRAILING_COMMA_RE = re.compile(r",\s*([}\]])")
_SIMPLE_ACTION_RE = re.compile(r"^(forward|stop)\s*(?:\(\s*\))?$")
_TURN_RE = re.compile(r"^turn[ _-]?direction\s*\(\s*(.{0,40}?)\s*\)$")
_NON_ALNUM_RE = re.compile(r"[^a-z0-9]+")


# ---------------------------------------------------------------- parsing


def _depth_ok(text: str) -> bool:
    depth = 0
    for ch in text:
        if ch in "{[":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return False
        elif ch in "}]":
            depth -= 1
    return True


def _field_name(key: str) -> str | None:
    k = key.lower()
    for word, name in _KEY_NAMES.items():
        if word in k:
            return name
    return None


def _json_candidates(text: str) -> list[str]:
    # Code fences: the odd pieces between ``` marks (a split is linear; a lazy regex is not).
    out = [_FENCE_LANG_RE.sub("", p, count=1) for p in text.split("```")[1::2]]
    first, last = text.find("{"), text.rfind("}")
    if 0 <= first < last:
        out.append(text[first : last + 1])
    return out


def _from_json(text: str) -> dict[str, str] | None:
    for cand in reversed(_json_candidates(text)):
        cand = cand.strip()
        if not cand.startswith("{") or not _depth_ok(cand):
            continue
        try:
            obj = json.loads(_TRAILING_COMMA_RE.sub(r"\1", cand))
        except ValueError:  # JSONDecodeError and the int digit-limit error both subclass it
            continue
        if isinstance(obj, dict):
            found = {}
            for key, value in obj.items():
                name = _field_name(str(key))
                if name and name not in found:
                    found[name] = value if isinstance(value, str) else json.dumps(value)[:200]
            if "action" in found:
                return found
    return None


def _scan_value(text: str, pos: int) -> str:
    """Read one value starting at pos: a quoted string (either quote) or a bare token.

    Linear in the value's length: quoted values are sliced between quotes, not built a
    character at a time.
    """
    n = len(text)
    while pos < n and text[pos] in " \t":
        pos += 1
    if pos < n and text[pos] in "\"'":
        return _quoted_value(text, pos)
    end = pos
    while end < n and text[end] not in ",}\n\r":
        end += 1
    return text[pos:end].strip()


def _quoted_value(text: str, pos: int) -> str:
    quote = text[pos]
    out: list[str] = []
    n = len(text)
    i = pos + 1
    # The next quote and backslash at or after i; each is searched again only once i has
    # passed it, so the searches together read the text once (linear, however many escapes).
    next_quote = next_slash = i - 1
    while i < n:
        if next_quote < i:
            next_quote = _find(text, quote, i)
        if next_slash < i:
            next_slash = _find(text, "\\", i)
        j = min(next_quote, next_slash)
        out.append(text[i:j])  # the characters up to it are copied at once
        if j >= n:
            break
        if j == next_slash:
            out.append(text[j + 1] if j + 1 < n else "\\")  # a trailing backslash stays
            i = j + 2
            continue
        # A single quote inside a single-quoted value (Joe's) is an apostrophe unless the
        # value ends there (followed by , } or a newline); the look-ahead is bounded.
        rest = text[j + 1 : j + 40].lstrip(" \t")
        if quote == '"' or not rest or rest[0] in ",}\n\r":
            break
        out.append(quote)
        i = j + 1
    return "".join(out)


def _find(text: str, char: str, start: int) -> int:
    """Index of char at or after start, or len(text) when there is none."""
    k = text.find(char, start)
    return len(text) if k < 0 else k


def _last_keys(text: str) -> dict[str, int]:
    """For each field, where the value of its last key occurrence starts (one regex pass)."""
    last: dict[str, int] = {}
    for m in _KEY_RE.finditer(text):
        name = _field_name(m.group(1))
        if name:
            last[name] = m.end()
    return last


def _from_keys(text: str) -> dict[str, str] | None:
    """Fallback: find each key anywhere in the text and read the value after it (last wins).

    Only the last occurrence of each key is read, so the cost is one pass to find the keys
    plus at most three value scans, whatever the number of keys in the text.
    """
    last = _last_keys(text)
    if "action" not in last:
        return None
    return {name: _scan_value(text, pos) for name, pos in last.items()}


def parse_answer(text: str, max_chars: int = DEFAULT_MAX_RESPONSE_CHARS) -> dict[str, str] | None:
    """{'observation', 'instruction', 'action'} strings from a response, or None.

    Only 'action' is required; missing observation/instruction come back absent. The text is
    cut to ``max_chars`` first (the verifier passes its ``max_response_chars``).
    """
    text = str(text)[:max_chars]
    found = _from_json(text) or _from_keys(text)
    if found is None:
        return None
    return {k: str(v)[:MAX_FIELD_CHARS] for k, v in found.items()}


def answer_start(text: str, max_chars: int = DEFAULT_MAX_RESPONSE_CHARS) -> int:
    """Character offset of the last "action" key (start of the answer span), or -1."""
    start = -1
    for m in _KEY_RE.finditer(str(text)[:max_chars]):
        if _field_name(m.group(1)) == "action":
            start = m.start()
    return start


def _direction(raw: str) -> str:
    d = " ".join(raw.strip().strip("\"'`").replace("_", " ").replace("-", " ").lower().split())
    compact = d.replace(" ", "")
    if compact in ABSOLUTE_DIRECTIONS:
        return compact  # "north east" -> "northeast"
    return d


def canonical_action(raw: str) -> str | None:
    """'Turn_Direction( North East )' -> 'turn_direction(northeast)'; None if not an action.

    Directions from either action space are accepted here; whether one is allowed is the
    verdict's business, so a model answering in the wrong space is told so.
    """
    s = " ".join(str(raw)[:MAX_FIELD_CHARS].strip().strip("\"'`").lower().split())[:80]
    if m := _SIMPLE_ACTION_RE.match(s):
        return f"{m.group(1)}()"
    if m := _TURN_RE.match(s):
        d = _direction(m.group(1))
        if d in ABSOLUTE_DIRECTIONS or d in RELATIVE_DIRECTIONS:
            return f"turn_direction({d})"
    return None


def _norm(text: str) -> str:
    # Apostrophes vanish ("Joe's" == "Joes"), other punctuation splits words.
    t = text.lower().replace("'", "").replace("\u2019", "").replace("`", "")
    return f" {' '.join(_NON_ALNUM_RE.sub(' ', t).split())} "


def mentioned_landmarks(observation: str, names: list[str]) -> set[str]:
    """Which of `names` the observation mentions (whole words, longest names matched first)."""
    text = _norm(str(observation)[:MAX_FIELD_CHARS])
    out = set()
    for name in sorted(names, key=len, reverse=True):
        key = _norm(name)
        if key.strip() and key in text:
            out.add(name)
            text = text.replace(key, " | ")
    return out


# ---------------------------------------------------------------- verdict


class VirlVerifier:
    """Scores one V-IRL answer; pure and deterministic (the same code for reward and eval)."""

    def __init__(self, config: VirlRules | dict[str, Any] | None = None) -> None:
        # Only what decides a verdict is kept: the env's VirlConfig, a dict of VirlScoring's
        # fields, or None (the study's rule and table).
        self.config = VirlScoring.coerce(config)

    def verify(self, task_state: dict[str, Any], response_text: str) -> Verdict:
        limit = self.config.max_response_chars
        text = str(response_text)[:limit]
        expected = str(task_state["expected_action"])
        absolute = task_state["action_space"] == "absolute"
        allowed = ABSOLUTE_DIRECTIONS if absolute else RELATIVE_DIRECTIONS
        visible = set(task_state["visible_landmarks"])
        answer = parse_answer(text, limit)
        got = canonical_action(answer["action"]) if answer else None
        observed = (
            mentioned_landmarks(answer.get("observation", ""), list(task_state["route_landmarks"]))
            if answer
            else set()
        )
        observation_ok = answer is not None and "observation" in answer and observed == visible
        action_ok = got == expected
        strict = self.config.scoring == "strict"
        reward, why = _judge(
            self.config.rewards, answer, got, allowed, expected, observed, visible, strict
        )
        success = action_ok and (observation_ok or not strict)
        tries_used = int(task_state["tries_used"]) + 1
        exceeded = not success and tries_used >= int(task_state["tries_per_point"])
        if exceeded:
            reward = self.config.rewards.budget_exceeded
        image = task_state.get("observation_mode") == "image"
        fields = {
            "parse_ok": answer is not None,
            "observation_ok": observation_ok,
            "landmarks_ok": observation_ok if image else None,
            "action_ok": action_ok,
            "expected_action": expected,
            "got_action": got,
            "observed_landmarks": "; ".join(sorted(observed)),
            "budget_exceeded": exceeded,
            "tries_used": tries_used,
            "answer_start": answer_start(text, limit) if answer else -1,
        }
        feedback = "" if success else f"You failed this trial because {why}."
        return Verdict(float(reward), success, feedback, fields)


def _judge(
    r: VirlRewards,
    answer: dict[str, str] | None,
    got: str | None,
    allowed: tuple[str, ...],
    expected: str,
    observed: set[str],
    visible: set[str],
    strict: bool,
) -> tuple[float, str]:
    """(reward, reason) for a try: the first failure in the order the rule checks.

    The study's rule looks at the action only; the strict rule checks the observation first.
    """
    if answer is None:
        return r.wrong_action, NO_ANSWER
    if strict and not ("observation" in answer and observed == visible):
        return r.wrong_observation, _observation_feedback(answer, observed, visible)
    if got is None:
        shown = answer["action"][:60]
        return r.wrong_action, f"the action {shown!r} is not in the action space"
    if got.startswith("turn_direction(") and got[len("turn_direction(") : -1] not in allowed:
        options = ", ".join(allowed)
        return r.wrong_action, f"{got} is not in the action space; use one of: {options}"
    if got != expected:
        return r.wrong_action, f"the action {got} is not correct here"
    return r.correct, ""


NO_ANSWER = (
    'no answer was found; reply with the JSON object with "current observation", '
    '"current instruction" and "action"'
)


def _observation_feedback(answer: dict[str, str], observed: set[str], visible: set[str]) -> str:
    if "observation" not in answer:
        return 'your answer has no "current observation"'
    if observed - visible:
        return "your observation names a landmark that is not in view"
    return "your observation misses a landmark that is in view"
