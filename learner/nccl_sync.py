"""Learner side of the NCCL weight broadcast (GPU clusters; the CPU path exports a HF folder).

Learner rank 0 and every vLLM worker join one NCCL group (vLLM's StatelessProcessGroup +
PyNcclCommunicator, so the learner's own torch.distributed group is untouched); rank 0 then
broadcasts each policy tensor in ``weight_specs`` order and the workers load them in place
(rollout/weight_receiver.py). Names are the policy's parameter names plus an explicit
``lm_head.weight`` for tied embeddings (vLLM keeps a separate head tensor). Under ZeRO-3 each
parameter is gathered just before it is sent, so the full model never sits in memory at once;
the gather is collective, so every learner rank calls ``broadcast_weights`` (non-zero ranks
send nothing). Needs GPUs: tested on GPU machines only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

WeightSpec = tuple[str, str, list[int]]  # (name, torch dtype name, shape)


def _named_tensors(policy: nn.Module) -> list[tuple[str, nn.Parameter]]:
    named = list(policy.named_parameters())
    out_emb = policy.get_output_embeddings()
    in_emb = policy.get_input_embeddings()
    if out_emb is not None and out_emb.weight is in_emb.weight:
        # named_parameters lists a tied weight once, under the embedding's name.
        named.append(("lm_head.weight", out_emb.weight))
    return named


def _full_shape(p: nn.Parameter) -> list[int]:
    return list(getattr(p, "ds_shape", p.shape))  # ZeRO-3 keeps the full shape in ds_shape


def weight_specs(policy: nn.Module) -> list[WeightSpec]:
    """(name, dtype, shape) of every tensor broadcast, in broadcast order."""
    return [
        (name, str(p.dtype).removeprefix("torch."), _full_shape(p))
        for name, p in _named_tensors(policy)
    ]


class NcclSender:
    """Rank 0's end of the weight-update group."""

    def __init__(self, master_address: str, master_port: int, rank: int, world_size: int) -> None:
        from vllm.distributed.device_communicators.pynccl import PyNcclCommunicator
        from vllm.distributed.utils import StatelessProcessGroup

        group = StatelessProcessGroup.create(
            host=master_address, port=master_port, rank=rank, world_size=world_size
        )
        self.comm: Any = PyNcclCommunicator(group, device=torch.cuda.current_device())

    def broadcast(self, policy: nn.Module, zero3: bool) -> int:
        """Send every tensor of ``weight_specs`` order; returns the count."""
        stream = torch.cuda.current_stream()

        def send(_: str, tensor: torch.Tensor) -> None:
            self.comm.broadcast(tensor.contiguous(), src=0, stream=stream)

        n = for_each_full_tensor(policy, zero3, send)
        torch.cuda.synchronize()
        return n


def for_each_full_tensor(
    policy: nn.Module, zero3: bool, visit: Callable[[str, torch.Tensor], None] | None
) -> int:
    """Gather each tensor of ``weight_specs`` order in turn and hand the full tensor to
    ``visit`` (the sending rank), or only join the gather (``visit`` None: the other ranks).

    Under ZeRO-3 each gather is a collective: every learner rank must call this, with the same
    policy, or the sending rank waits forever. Returns the number of tensors.
    """
    import deepspeed

    n = 0
    for name, p in _named_tensors(policy):
        with deepspeed.zero.GatheredParameters([p], enabled=zero3):
            if visit is not None:
                visit(name, p.data)
        n += 1
    return n
