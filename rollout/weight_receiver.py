"""Engine-side half of the NCCL weight broadcast (GPU clusters).

vLLM loads this class into each of its GPU workers (``worker_extension_cls``), which gives
the worker two RPC-able methods: join a NCCL group with the learner's rank 0, and receive
parameters broadcast from it into the live model. The CPU path needs none of this: it reloads
weights from a shared-memory checkpoint folder (``VLLMEngine.load_weights``).
"""

from __future__ import annotations

from typing import Any

WORKER_EXTENSION = "rollout.weight_receiver.NcclWeightReceiver"


class NcclWeightReceiver:
    """Mixed into vLLM's GPU worker; ``self`` is the worker (device, model_runner)."""

    def init_weight_update_group(
        self, master_address: str, master_port: int, rank_offset: int, world_size: int
    ) -> None:
        from vllm.distributed.device_communicators.pynccl import PyNcclCommunicator
        from vllm.distributed.parallel_state import get_world_group
        from vllm.distributed.utils import StatelessProcessGroup

        rank = get_world_group().rank + rank_offset
        group = StatelessProcessGroup.create(
            host=master_address, port=master_port, rank=rank, world_size=world_size
        )
        self._weight_comm = PyNcclCommunicator(group, device=self.device)  # type: ignore[attr-defined]

    def receive_weights(self, specs: list[tuple[str, str, list[int]]]) -> int:
        """Receive each (name, dtype, shape) broadcast from rank 0 and load it in place."""
        import torch

        model: Any = self.model_runner.model  # type: ignore[attr-defined]
        for name, dtype, shape in specs:
            tensor = torch.empty(shape, dtype=getattr(torch, dtype), device="cuda")
            self._weight_comm.broadcast(tensor, src=0, stream=torch.cuda.current_stream())
            model.load_weights(weights=[(name, tensor)])
        torch.cuda.synchronize()
        return len(specs)
