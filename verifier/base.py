"""The verifier contract shared by every task.

A verifier is pure and deterministic: ``verify(task_state, response_text) -> Verdict``. Model
output is hostile input, so a verifier never evaluates it and finishes in bounded time on any
string.

``verify_total`` is how every caller (the verifier actors, the envs' own ``step``) runs one: a
verifier that raises on some answer is a bug, but one hostile answer must not end a training
run, so the exception becomes a failed verdict that says so (``fields["verifier_error"]``),
is logged and is counted in the rollout metrics.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

logger = logging.getLogger(__name__)

VERIFIER_ERROR_FIELD = "verifier_error"
"""Verdict field set (to the exception's type and message) when verification raised."""
FAILED_VERIFICATION_FEEDBACK = "Your answer could not be checked. Answer again in the asked format."


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking one response."""

    reward: float
    """Scalar reward for this turn (the task's reward table)."""
    success: bool
    """True when the response solves the task (the episode may end)."""
    feedback: str
    """Text for the next user turn when the response failed ("" on success)."""
    fields: dict[str, Any] = field(default_factory=dict)
    """Task-specific verdict details (JSON-able scalars): e.g. parse_ok, cards_ok, value."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Verifier(Protocol):
    """Anything that scores a response against a task state."""

    def verify(self, task_state: Any, response_text: str) -> Verdict: ...


def verify_total(verifier: Verifier, task_state: Any, response_text: str) -> Verdict:
    """``verifier.verify``, except that an exception becomes a failed verdict, never an error.

    The failed verdict is what the verifier itself gives an empty answer (the task's own
    penalty and feedback for saying nothing), marked with ``verifier_error``; if even that
    raises, reward 0 and a generic feedback line.
    """
    try:
        return verifier.verify(task_state, response_text)
    except Exception as err:  # one answer must not end the run: logged, counted
        reason = f"{type(err).__name__}: {str(err)[:200]}"
        logger.warning(
            "verifier %s raised on an answer of %d characters (%s); scored as a failure",
            type(verifier).__name__,
            len(response_text) if isinstance(response_text, str) else -1,
            reason,
        )
    try:
        fallback = verifier.verify(task_state, "")
        reward, feedback, fields = fallback.reward, fallback.feedback, dict(fallback.fields)
    except Exception:  # it cannot score even an empty answer
        reward, feedback, fields = 0.0, FAILED_VERIFICATION_FEEDBACK, {}
    fields[VERIFIER_ERROR_FIELD] = reason
    return Verdict(
        reward=reward,
        success=False,
        feedback=feedback or FAILED_VERIFICATION_FEEDBACK,
        fields=fields,
    )
