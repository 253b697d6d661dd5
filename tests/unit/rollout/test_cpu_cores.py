"""Which cores a CPU rollout engine computes on, and the environment it starts in
(rollout.engine: engine_cpu_cores, set_vllm_cpu_env, engine_start_env)."""

from __future__ import annotations

import os

import pytest

from common.typed_config import ConfigError
from rollout.config import RolloutConfig
from rollout.engine import engine_cpu_cores, engine_start_env, scoped_env, set_vllm_cpu_env


def test_one_worker_takes_every_core() -> None:
    # vLLM's own default would keep one of two cores for its scheduler.
    assert engine_cpu_cores([0, 1], RolloutConfig(num_workers=1), 0) == [0, 1]


def test_workers_on_one_node_get_disjoint_shares() -> None:
    cfg = RolloutConfig(num_workers=2)
    shares = [engine_cpu_cores([0, 1, 2, 3], cfg, k) for k in range(2)]
    assert shares == [[0, 1], [2, 3]]
    assert engine_cpu_cores([4, 5], cfg, 0) != engine_cpu_cores([4, 5], cfg, 1)


def test_more_workers_than_cores_wrap_round() -> None:
    cfg = RolloutConfig(num_workers=3)
    assert [engine_cpu_cores([0, 1], cfg, k) for k in range(3)] == [[0], [1], [0]]


def test_explicit_core_count_is_capped_by_the_usable_cores() -> None:
    assert engine_cpu_cores([2, 3], RolloutConfig(cpu_cores=1), 1) == [3]
    assert engine_cpu_cores([2, 3], RolloutConfig(cpu_cores=8), 0) == [2, 3]


def test_affinity_order_does_not_matter() -> None:
    assert engine_cpu_cores([3, 1, 2], RolloutConfig(cpu_cores=2), 0) == [1, 2]


def test_no_usable_core_is_an_error() -> None:
    with pytest.raises(ValueError, match="no core"):
        engine_cpu_cores([], RolloutConfig(), 0)


def test_negative_core_count_names_the_field() -> None:
    with pytest.raises(ConfigError, match="cpu_cores"):
        RolloutConfig(cpu_cores=-1)


def test_cpu_env_binds_the_engine_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VLLM_CPU_OMP_THREADS_BIND", raising=False)
    monkeypatch.delenv("VLLM_USE_AOT_COMPILE", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1, 2, 3}, raising=False)
    set_vllm_cpu_env(RolloutConfig(num_workers=2), worker_index=1)
    assert os.environ["VLLM_CPU_OMP_THREADS_BIND"] == "2,3"
    assert os.environ["VLLM_USE_AOT_COMPILE"] == "0"  # the compile cache that loads on CPU


def test_a_user_choice_of_compile_cache_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_USE_AOT_COMPILE", "1")
    set_vllm_cpu_env(RolloutConfig(), worker_index=0)
    assert os.environ["VLLM_USE_AOT_COMPILE"] == "1"


def test_gpu_workers_leave_the_binding_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VLLM_CPU_OMP_THREADS_BIND", raising=False)
    monkeypatch.delenv("VLLM_USE_AOT_COMPILE", raising=False)
    set_vllm_cpu_env(RolloutConfig(gpus_per_worker=1.0), worker_index=0)
    assert "VLLM_CPU_OMP_THREADS_BIND" not in os.environ
    assert "VLLM_USE_AOT_COMPILE" not in os.environ


def test_a_cpu_engine_starts_in_one_process_with_its_bound_thread_count() -> None:
    env = engine_start_env(RolloutConfig(), {"VLLM_CPU_OMP_THREADS_BIND": "2,3"})
    assert env == {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "OMP_NUM_THREADS": "2"}


@pytest.mark.parametrize(
    ("cfg", "environ"),
    [
        (RolloutConfig(gpus_per_worker=1.0), {"VLLM_CPU_OMP_THREADS_BIND": "0"}),
        (RolloutConfig(tensor_parallel_size=2), {"VLLM_CPU_OMP_THREADS_BIND": "0,1"}),
        (
            RolloutConfig(),
            {"VLLM_CPU_OMP_THREADS_BIND": "0", "VLLM_ENABLE_V1_MULTIPROCESSING": "1"},
        ),
        (RolloutConfig(), {}),
    ],
    ids=["gpu", "tensor-parallel", "user-choice", "unbound"],
)
def test_other_engines_keep_vllms_process_layout(cfg: RolloutConfig, environ: dict) -> None:
    assert engine_start_env(cfg, environ) == {}


def test_scoped_env_restores_set_and_unset_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VERIRAY_TEST_SET", "before")
    monkeypatch.delenv("VERIRAY_TEST_UNSET", raising=False)
    with (
        pytest.raises(RuntimeError),
        scoped_env({"VERIRAY_TEST_SET": "a", "VERIRAY_TEST_UNSET": "b"}),
    ):
        assert os.environ["VERIRAY_TEST_SET"] == "a"
        assert os.environ["VERIRAY_TEST_UNSET"] == "b"
        raise RuntimeError("the engine failed to start")
    assert os.environ["VERIRAY_TEST_SET"] == "before"
    assert "VERIRAY_TEST_UNSET" not in os.environ
