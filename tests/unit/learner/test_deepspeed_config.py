"""LearnerConfig -> DeepSpeed config (pure)."""

from __future__ import annotations

from learner.config import LearnerConfig
from learner.deepspeed_config import deepspeed_config


def test_batch_sizes_and_zero_stage() -> None:
    ds = deepspeed_config(LearnerConfig(num_ranks=2, micro_batch_size=3, grad_accum_steps=4))
    assert ds["train_batch_size"] == 24
    assert ds["train_micro_batch_size_per_gpu"] == 3
    assert ds["gradient_accumulation_steps"] == 4
    assert ds["zero_optimization"] == {"stage": 0}
    assert ds["optimizer"]["params"]["torch_adam"] is True
    assert "bf16" not in ds


def test_offload_uses_cpu_adam_and_bf16_is_enabled() -> None:
    ds = deepspeed_config(
        LearnerConfig(zero_stage=2, offload_optimizer=True, dtype="bfloat16", lr=3e-6)
    )
    assert ds["zero_optimization"]["offload_optimizer"]["device"] == "cpu"
    assert "torch_adam" not in ds["optimizer"]["params"]
    assert ds["optimizer"]["params"]["lr"] == 3e-6
    assert ds["bf16"] == {"enabled": True}
