"""The verifier contract shared by every task.

A verifier is pure and deterministic: ``verify(task_state, response_text) -> Verdict``. Model
output is hostile input, so a verifier never evaluates it and finishes in bounded time on any
string.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


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
