"""The DeepSpeed JSON config built from LearnerConfig (a pure function, tested alone)."""

from __future__ import annotations

from typing import Any

from learner.config import LearnerConfig


def deepspeed_config(cfg: LearnerConfig) -> dict[str, Any]:
    """DeepSpeed's config dict for ``cfg`` (optimizer created by DeepSpeed from it)."""
    zero: dict[str, Any] = {"stage": cfg.zero_stage}
    if cfg.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": False}
    optimizer_params = {"lr": cfg.lr, "weight_decay": cfg.weight_decay, "betas": [0.9, 0.999]}
    if not cfg.offload_optimizer:
        # torch's AdamW needs no op build; ZeRO-Offload needs DeepSpeed's CPU Adam (prebuilt).
        optimizer_params["torch_adam"] = True
    ds: dict[str, Any] = {
        "train_micro_batch_size_per_gpu": cfg.micro_batch_size,
        "gradient_accumulation_steps": cfg.grad_accum_steps,
        "train_batch_size": cfg.micro_batch_size * cfg.grad_accum_steps * cfg.num_ranks,
        "zero_optimization": zero,
        "optimizer": {"type": "AdamW", "params": optimizer_params},
        "gradient_clipping": cfg.grad_clip,
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }
    if cfg.dtype == "bfloat16":
        ds["bf16"] = {"enabled": True}
    return ds
