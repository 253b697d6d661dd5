"""The countdown reward function (``reward_fn: examples/countdown/reward.py:score``).

The answer is the last non-empty line of the response, e.g. ``(3 + 5) * 2`` (an ``Answer:``
prefix and a trailing ``= 16`` are allowed). It is never passed to eval: veriray's bounded
arithmetic parser evaluates it exactly. Rewards: 1 for the target with each number used
exactly once; 0.1 for a well-formed expression that misses (a format reward, as TinyZero
gives); 0 for anything else. The feedback says what went wrong (used on revision turns when
task.dataset.max_turns > 1).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from verifier.safe_arith import safe_eval

MAX_ANSWER_CHARS = 200


def extract(response: str) -> str:
    lines = [line.strip() for line in response.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    answer = lines[-1][:MAX_ANSWER_CHARS]
    if answer.lower().startswith("answer:"):
        answer = answer[len("answer:") :]
    return answer.split("=")[0].strip().strip("`")


def score(response: str, example: dict[str, Any]) -> dict[str, Any]:
    """reward, success and feedback for one answer (example: prompt, attempt, numbers,
    target)."""
    target, numbers = example["target"], example["numbers"]
    result = safe_eval(extract(response))
    if not result.ok:
        return {
            "reward": 0.0,
            "success": False,
            "feedback": f"Your answer is not a valid expression ({result.message}).",
        }
    if Counter(result.numbers) != Counter(numbers):
        return {
            "reward": 0.1,
            "success": False,
            "feedback": f"Use each of {numbers} exactly once; you used {list(result.numbers)}.",
        }
    if result.value != target:
        return {
            "reward": 0.1,
            "success": False,
            "feedback": f"Your expression equals {float(result.value):g}, not {target}.",
        }
    return {"reward": 1.0, "success": True}
