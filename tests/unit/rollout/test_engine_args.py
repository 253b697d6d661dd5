"""What the rollout config hands to vLLM: accepted by vLLM 0.32's own AsyncEngineArgs, GPU
fields only on GPU engines, and tensor-parallel engines on vLLM's local "mp" executor (its Ray
executor refuses the worker's single multi-GPU placement bundle)."""

from __future__ import annotations

import pytest

from common.typed_config import ConfigError
from rollout.config import RolloutConfig
from rollout.engine import vllm_engine_kwargs


def test_cpu_engines_get_no_gpu_fields_and_the_default_executor() -> None:
    kwargs = vllm_engine_kwargs("/m", RolloutConfig(max_num_seqs=32), False)
    assert kwargs["max_num_seqs"] == 32 and kwargs["tensor_parallel_size"] == 1
    assert "gpu_memory_utilization" not in kwargs and "enable_sleep_mode" not in kwargs
    assert "distributed_executor_backend" not in kwargs


def test_a_tensor_parallel_gpu_engine_as_vllm_accepts_it() -> None:
    from vllm.engine.arg_utils import AsyncEngineArgs

    from learner.assets import prepare

    cfg = RolloutConfig(
        gpus_per_worker=2,
        tensor_parallel_size=2,
        gpu_memory_utilization=0.5,
        enable_sleep_mode=True,
        weight_sync="nccl",
    )
    args = AsyncEngineArgs(**vllm_engine_kwargs(prepare("tiny-lm"), cfg, False))
    assert args.distributed_executor_backend == "mp"
    assert args.tensor_parallel_size == 2
    assert args.gpu_memory_utilization == 0.5 and args.enable_sleep_mode
    assert args.worker_extension_cls  # the NCCL receiver


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"tensor_parallel_size": 2, "gpus_per_worker": 1}, "tensor_parallel_size"),
        ({"gpu_memory_utilization": 1.5}, "gpu_memory_utilization"),
        ({"max_num_seqs": 0}, "max_num_seqs"),
        ({"enable_sleep_mode": True}, "enable_sleep_mode"),
    ],
)
def test_bad_engine_fields_name_themselves(fields: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        RolloutConfig(**fields)
