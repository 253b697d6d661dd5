"""The controller's transport comes from rollout.weight_sync (the NCCL one needs GPUs and is
covered by the gpu-marked integration test)."""

from __future__ import annotations

from learner.weight_sync import SharedMemoryTransport, make_transport
from rollout.config import RolloutConfig


def test_shm_config_builds_the_shared_memory_transport() -> None:
    transport = make_transport(RolloutConfig(weight_sync="shm"), None, None, "unit-run")
    assert isinstance(transport, SharedMemoryTransport)
    assert transport.root.name == "unit-run"
    transport.close()
