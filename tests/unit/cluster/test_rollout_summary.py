"""Per-update rollout metrics: what vLLM's prefix cache served reaches ``rollout/...``."""

from __future__ import annotations

import dataclasses

import pytest

from cluster.arms import rollout_summary
from rollout.runner import EpisodeResult
from rollout.trajectory import from_table, to_record_batch
from tests.unit.evaluation.episodes import turn


def _episode(turns: list) -> EpisodeResult:
    return EpisodeResult("e", turns[-1].success, turns, {})


def _cached(prompt_len: int, cached: int, success: bool = False):
    return dataclasses.replace(turn(success, prompt_len=prompt_len), cached_prompt_tokens=cached)


def test_prefix_cache_metrics() -> None:
    # episode 1: first turn 100 prompt tokens, 60 cached; the feedback turn 150, 140 cached
    # episode 2: one turn of 100 prompt tokens, 80 cached
    episodes = [
        _episode([_cached(100, 60), _cached(150, 140, True)]),
        _episode([_cached(100, 80, True)]),
    ]
    m = rollout_summary(episodes)
    assert m["rollout/prefix_cache_hit_rate"] == pytest.approx(280 / 350)
    assert m["rollout/prefill_tokens_per_episode"] == pytest.approx(70 / 2)


def test_no_episodes_no_division_by_zero() -> None:
    m = rollout_summary([])
    assert m["rollout/prefix_cache_hit_rate"] == 0.0
    assert m["rollout/prefill_tokens_per_episode"] == 0.0


def test_cached_prompt_tokens_survive_the_trajectory_table() -> None:
    turns = [_cached(100, 64), _cached(40, 0)]
    assert [t.cached_prompt_tokens for t in from_table(to_record_batch(turns))] == [64, 0]
