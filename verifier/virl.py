"""The V-IRL verifier: score one navigation answer against the task state of one step.

The answer is a JSON object with "current observation", "current instruction" and "action"
(the paper's format). Parsing is tolerant (JSON anywhere in the text, code fences, single
quotes, trailing commas, case and spacing in action names) and bounded: the text is cut to
``max_response_chars`` first, deeply nested candidates skip the JSON parser, no regex can
backtrack badly, and nothing is ever evaluated.

Reward (one value per turn, never stacked):
- the observation does not name exactly the landmarks in view: ``wrong_observation`` (-1.5)
- otherwise a wrong action, or no answer found: ``wrong_action`` (-1)
- otherwise ``correct`` (+1), success
- a failed try that uses up the point's budget gets ``budget_exceeded`` (-1) instead, and
  ``fields["budget_exceeded"]`` tells the environment that the route has failed.

The task state (built by envs.virl.env) is a JSON-able dict with at least: expected_action,
action_space, visible_landmarks, route_landmarks, tries_used, tries_per_point.
"""

from __future__ import annotations

import json
import re
from typing import Any

from envs.virl.config import VirlConfig
from envs.virl.directions import ABSOLUTE_DIRECTIONS, RELATIVE_DIRECTIONS
from verifier.base import Verdict

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
    """Read one value starting at pos: a quoted string (either quote) or a bare token."""
    n = len(text)
    while pos < n and text[pos] in " \t":
        pos += 1
    if pos < n and text[pos] in "\"'":
        quote = text[pos]
        out: list[str] = []
        i = pos + 1
        while i < n:
            ch = text[i]
            if ch == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if ch == quote:
                # A single quote inside a single-quoted value (Joe's) is an apostrophe unless
                # the value ends there (followed by , } or a newline).
                rest = text[i + 1 : i + 40].lstrip(" \t")
                if quote == '"' or not rest or rest[0] in ",}\n\r":
                    break
            out.append(ch)
            i += 1
        return "".join(out)
    end = pos
    while end < n and text[end] not in ",}\n\r":
        end += 1
    return text[pos:end].strip()


def _from_keys(text: str) -> dict[str, str] | None:
    """Fallback: find each key anywhere in the text and read the value after it (last wins)."""
    found: dict[str, str] = {}
    for m in _KEY_RE.finditer(text):
        name = _field_name(m.group(1))
        if name:
            found[name] = _scan_value(text, m.end())
    return found if "action" in found else None


def parse_answer(text: str) -> dict[str, str] | None:
    """{'observation', 'instruction', 'action'} strings from a response, or None.

    Only 'action' is required; missing observation/instruction come back absent.
    """
    found = _from_json(text) or _from_keys(text)
    if found is None:
        return None
    return {k: str(v)[:MAX_FIELD_CHARS] for k, v in found.items()}


def answer_start(text: str) -> int:
    """Character offset of the last "action" key (start of the answer span), or -1."""
    start = -1
    for m in _KEY_RE.finditer(text):
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
    s = " ".join(raw.strip().strip("\"'`").lower().split())[:80]
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
    text = _norm(observation)
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

    def __init__(self, config: VirlConfig | dict[str, Any] | None = None) -> None:
        self.config = VirlConfig.from_any(config)

    def verify(self, task_state: dict[str, Any], response_text: str) -> Verdict:
        rewards = self.config.rewards
        text = str(response_text)[: self.config.max_response_chars]
        expected = str(task_state["expected_action"])
        absolute = task_state["action_space"] == "absolute"
        allowed = ABSOLUTE_DIRECTIONS if absolute else RELATIVE_DIRECTIONS
        visible = set(task_state["visible_landmarks"])
        answer = parse_answer(text)
        got = canonical_action(answer["action"]) if answer else None
        observed = (
            mentioned_landmarks(answer.get("observation", ""), list(task_state["route_landmarks"]))
            if answer
            else set()
        )
        observation_ok = answer is not None and "observation" in answer and observed == visible
        action_ok = got == expected
        reward, why = self._judge(answer, got, observed, visible, allowed, observation_ok, expected)
        success = observation_ok and action_ok
        tries_used = int(task_state["tries_used"]) + 1
        exceeded = not success and tries_used >= int(task_state["tries_per_point"])
        if exceeded:
            reward = rewards.budget_exceeded
        fields = {
            "parse_ok": answer is not None,
            "observation_ok": observation_ok,
            "action_ok": action_ok,
            "expected_action": expected,
            "got_action": got,
            "observed_landmarks": "; ".join(sorted(observed)),
            "budget_exceeded": exceeded,
            "tries_used": tries_used,
            "answer_start": answer_start(text) if answer else -1,
        }
        feedback = "" if success else f"You failed this trial because {why}."
        return Verdict(float(reward), success, feedback, fields)

    def _judge(
        self,
        answer: dict[str, str] | None,
        got: str | None,
        observed: set[str],
        visible: set[str],
        allowed: tuple[str, ...],
        observation_ok: bool,
        expected: str,
    ) -> tuple[float, str]:
        """(reward, reason) for a try: the first failure in the order the paper checks."""
        r = self.config.rewards
        if answer is None:
            return r.wrong_action, NO_ANSWER
        if not observation_ok:
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
