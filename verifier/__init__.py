"""Verifiers: score a response against a task state, safely, and write the feedback turn.

The same verifier function serves training reward and evaluation, so they cannot drift.
"""

from verifier.base import Verdict, Verifier

__all__ = ["Verdict", "Verifier"]
