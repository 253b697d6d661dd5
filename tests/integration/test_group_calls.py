"""Calls on every learner rank: a dead rank raises at once even while its peers stay blocked
(as they would in a collective with it), and a hung rank is named after the timeout. Real Ray
actors stand in for ranks: the property is about waiting on actor calls, not about training."""

from __future__ import annotations

import time

import pytest
import ray
from ray.exceptions import RayActorError

from learner.group import _get_all


@ray.remote(num_cpus=0)
class _Rank:
    def work(self, seconds: float) -> float:
        time.sleep(seconds)
        return seconds


def test_a_dead_rank_raises_while_its_peer_is_still_blocked(ray_cluster) -> None:
    blocked, doomed = _Rank.remote(), _Rank.remote()
    ray.get([blocked.work.remote(0), doomed.work.remote(0)])
    refs = [blocked.work.remote(60), doomed.work.remote(60)]
    ray.kill(doomed)
    start = time.monotonic()
    with pytest.raises(RayActorError):
        _get_all(refs, "work", timeout_s=120)
    assert time.monotonic() - start < 30  # not after the blocked rank's 60 s
    ray.kill(blocked)


def test_a_hung_rank_is_named(ray_cluster) -> None:
    fast, hung = _Rank.remote(), _Rank.remote()
    with pytest.raises(TimeoutError, match=r"learner rank\(s\) \[1\]: work did not return"):
        _get_all([fast.work.remote(0), hung.work.remote(60)], "work", timeout_s=2)
    assert _get_all([fast.work.remote(0.1)], "work", timeout_s=30) == [0.1]
    ray.kill(fast)
    ray.kill(hung)
