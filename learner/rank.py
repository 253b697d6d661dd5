"""One DeepSpeed rank of the learner group, run inside a Ray actor.

The rank owns a model replica (or shard, under ZeRO-3) and its DeepSpeed engine. It knows
nothing about the controller: the group calls it with batches and asks it for metrics.
"""

from __future__ import annotations

import hashlib
import os
import socket
from typing import Any

import torch

from cluster.paths import set_build_env
from learner.config import LearnerConfig
from learner.deepspeed_config import deepspeed_config


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class LearnerRank:
    """A DeepSpeed rank: ``setup`` joins the process group and builds the engine."""

    def __init__(self, rank: int, world_size: int, cfg: LearnerConfig) -> None:
        set_build_env()
        self.rank = rank
        self.world_size = world_size
        self.cfg = cfg
        self.engine: Any = None
        torch.set_num_threads(max(1, int(cfg.cpus_per_rank)))

    def address(self) -> tuple[str, int]:
        """(ip, free port) of this rank's node, for rank 0 to host the rendezvous."""
        import ray

        ip = ray.util.get_node_ip_address()
        return ip, free_port("0.0.0.0" if ip != "127.0.0.1" else ip)

    def setup(self, master_addr: str, master_port: int, model_path: str) -> None:
        import deepspeed
        from transformers import AutoModelForCausalLM

        os.environ.update(
            MASTER_ADDR=master_addr,
            MASTER_PORT=str(master_port),
            RANK=str(self.rank),
            WORLD_SIZE=str(self.world_size),
            LOCAL_RANK="0",
            LOCAL_WORLD_SIZE="1",
        )
        backend = "nccl" if self.cfg.gpus_per_rank > 0 else "gloo"
        deepspeed.init_distributed(dist_backend=backend, auto_mpi_discovery=False)
        torch.manual_seed(self.cfg.seed)
        dtype = torch.bfloat16 if self.cfg.dtype == "bfloat16" else torch.float32
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype)
        self.engine, *_ = deepspeed.initialize(
            model=model,
            model_parameters=[p for p in model.parameters() if p.requires_grad],
            config=deepspeed_config(self.cfg),
        )

    def train_lm_step(self, input_ids: list[list[int]]) -> dict[str, float]:
        """One optimizer step of next-token loss on this rank's shard (tests, SFT smoke)."""
        batch = torch.tensor(input_ids, dtype=torch.long, device=self.engine.device)
        out = self.engine(input_ids=batch, labels=batch)
        self.engine.backward(out.loss)
        self.engine.step()
        return {"loss": float(out.loss.detach())}

    def param_digest(self) -> str:
        """A hash of the full parameters (gathered under ZeRO-3) to compare ranks."""
        import deepspeed

        h = hashlib.sha256()
        for name, p in self.engine.module.named_parameters():
            with deepspeed.zero.GatheredParameters([p], enabled=self.cfg.zero_stage == 3):
                h.update(name.encode())
                h.update(p.detach().float().cpu().numpy().tobytes())
        return h.hexdigest()
