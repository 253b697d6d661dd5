"""A learner rank's weights and state leaving or entering it: the policy as a HF folder, the
engine-layout weight file and the NCCL broadcast a weight sync uses, and the resumable
checkpoint. A mixin of ``LearnerRank`` (learner/rank.py), split out to keep that file to the
training steps; every method here is collective under ZeRO-3 (parameters are gathered).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from learner import checkpoint as ckpt
from learner.config import LearnerConfig
from learner.lora import ADAPTER_DIR, has_lora, save_adapter


class RankStateMixin:
    """Needs the rank's ``rank``, ``cfg``, ``engine`` (DeepSpeed), ``chat`` and ``counters``."""

    rank: int
    cfg: LearnerConfig
    engine: Any
    chat: Any
    counters: ckpt.Counters

    def _gathered(self) -> Any:
        import deepspeed

        params = list(self.engine.module.parameters())
        return deepspeed.zero.GatheredParameters(params, enabled=self.cfg.zero_stage == 3)

    def export_policy(self, folder: str) -> list[str]:
        """The policy as a HF folder (config, safetensors incl. a tied lm_head, tokenizer).

        Collective under ZeRO-3 (parameters are gathered); rank 0 writes. Returns the
        safetensors files written (empty on other ranks).
        """
        with self._gathered():
            if self.rank != 0:
                return []
            return ckpt.save_hf_policy(self.engine.module.policy, Path(folder), self.chat)

    def export_weights(self, folder: str) -> list[str]:
        """Weight-sync hook: the policy's tensors in HF key layout (+ config), no tokenizer.

        Collective; rank 0 writes and returns the safetensors paths a rollout engine reloads.
        Rewritten in place when ``folder`` already holds the same layout (engine_weights.py).
        """
        from learner.engine_weights import write_engine_weights

        with self._gathered():
            if self.rank != 0:
                return []
            policy = self.engine.module.policy
            files = write_engine_weights(policy, Path(folder))
            return files if files is not None else ckpt.save_hf_policy(policy, Path(folder))

    # The GPU weight broadcast (learner/nccl_sync.py; the transport is learner/weight_sync.py).

    def nccl_group_init(self, master_address: str, master_port: int, rank: int, world: int) -> None:
        """Rank 0 joins the weight-update NCCL group with the rollout workers (GPU only)."""
        from learner.nccl_sync import NcclSender

        self._sender = NcclSender(master_address, master_port, rank, world)

    def weight_specs(self) -> list[tuple[str, str, list[int]]]:
        """(name, dtype, shape) of the tensors ``nccl_broadcast_weights`` sends, in order."""
        from learner.nccl_sync import weight_specs

        return weight_specs(self.engine.module.policy)

    def nccl_broadcast_weights(self) -> int:
        """Broadcast the policy to the group (rank 0). Under ZeRO-3 call it on every rank:
        the other ranks only join the parameter gathers."""
        from learner import nccl_sync

        policy, zero3 = self.engine.module.policy, self.cfg.zero_stage == 3
        if self.rank != 0:
            return nccl_sync.for_each_full_tensor(policy, zero3, None) if zero3 else 0
        return self._sender.broadcast(policy, zero3)

    def broadcast_digest(self) -> list[tuple[str, list[int], float]]:
        """What the NCCL broadcast would send, without sending: (name, shape, float64 sum) per
        tensor in broadcast order, on rank 0 ([] elsewhere). Collective like the broadcast, so
        the CPU tests run the same gather-and-iterate path on gloo ranks."""
        from learner import nccl_sync

        out: list[tuple[str, list[int], float]] = []

        def record(name: str, tensor: Any) -> None:  # a full torch.Tensor
            out.append((name, list(tensor.shape), float(tensor.double().sum())))

        policy, zero3 = self.engine.module.policy, self.cfg.zero_stage == 3
        nccl_sync.for_each_full_tensor(policy, zero3, record if self.rank == 0 else None)
        return out

    def save_checkpoint(self, folder: str) -> None:
        """Everything to resume exactly (see learner/checkpoint.py). Collective."""
        root = Path(folder)
        (root / "rng").mkdir(parents=True, exist_ok=True)
        self.engine.save_checkpoint(str(root / ckpt.DS_DIR), tag=f"step{self.counters.step}")
        ckpt.save_rng_state(root / "rng" / f"rank{self.rank}.json")
        with self._gathered():
            if self.rank == 0:
                ckpt.save_hf_policy(self.engine.module.policy, root / ckpt.HF_DIR, self.chat)
                ckpt.save_value_model(self.engine.module, root / ckpt.VALUE_FILE)
                if has_lora(self.engine.module.policy):
                    save_adapter(self.engine.module.policy, root / ADAPTER_DIR)
                ckpt.save_counters(root / ckpt.STATE_FILE, self.counters)

    def load_checkpoint(self, folder: str) -> dict[str, int]:
        """Restore model, optimizer, scheduler, RNG and counters. Collective."""
        root = Path(folder)
        path, _ = self.engine.load_checkpoint(
            str(root / ckpt.DS_DIR), load_optimizer_states=True, load_lr_scheduler_states=True
        )
        if path is None:
            raise FileNotFoundError(f"no DeepSpeed checkpoint under {root / ckpt.DS_DIR}")
        self.counters = ckpt.load_counters(root / ckpt.STATE_FILE)
        ckpt.load_rng_state(root / "rng" / f"rank{self.rank}.json")
        return self.state()

    def state(self) -> dict[str, int]:
        """The progress counters."""
        from dataclasses import asdict

        return asdict(self.counters)

    def param_digest(self) -> str:
        """A hash of the full parameters (gathered under ZeRO-3) to compare ranks."""
        h = hashlib.sha256()
        with self._gathered():
            for name, p in self.engine.module.named_parameters():
                h.update(name.encode())
                h.update(p.detach().float().cpu().numpy().tobytes())
        return h.hexdigest()
