"""Fixtures of the evaluation unit tests (helpers live in episodes.py)."""

from __future__ import annotations

import pytest

from tests.unit.evaluation.episodes import FakeFleet


@pytest.fixture
def fake_fleet() -> FakeFleet:
    return FakeFleet()
