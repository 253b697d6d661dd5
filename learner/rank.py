"""One DeepSpeed rank of the learner group, run inside a Ray actor.

The rank owns a model replica (or shard, under ZeRO-3), its DeepSpeed engine (optimizer and
lr schedule inside) and its progress counters. It knows nothing about the controller: the
group (learner/group.py) hands it its shard of each batch and collects metrics. Every method
that runs a forward/backward or gathers parameters is collective: the group calls it on all
ranks with equally many micro-batches. Weight export, the NCCL weight broadcast and
checkpoints live in learner/rank_state.py (a mixin of this class); sampling and one-off checks
for tests in learner/rank_tools.py (another).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import defaultdict
from typing import Any

import pyarrow as pa
import torch

from common.paths import set_build_env
from common.ports import free_port
from learner import checkpoint as ckpt
from learner.batching import ModelBatch, TrainRow, collate, rows_from_table
from learner.config import LearnerConfig
from learner.deepspeed_config import deepspeed_config
from learner.lora import add_lora
from learner.models import PolicyWithValue, rows_image_inputs
from learner.ppo import PPOTargets, forward_logprobs, ppo_loss, sft_loss
from learner.prefix_tree import collate_shared, shared_prefix_order
from learner.rank_state import RankStateMixin
from learner.rank_tools import RankToolsMixin
from learner.reference import load_reference, row_reward_kl
from learner.schedule import lr_multiplier


def _right_align(parts: list[torch.Tensor], width: int) -> torch.Tensor:
    """Stack 1-d tensors of lengths <= width, right-aligned, zero-filled: (B, width)."""
    out = torch.zeros((len(parts), width), dtype=torch.float32)
    for i, p in enumerate(parts):
        if p.numel():
            out[i, width - p.numel() :] = p
    return out


def _response_slice(logp: torch.Tensor, row: int, length: int) -> torch.Tensor:
    """Row ``row``'s response log-probs (its last ``length`` positions: rows are right-aligned
    in the batch's response window), float32 on the CPU."""
    return logp[row, logp.shape[1] - length :].float().cpu()


class LearnerRank(RankStateMixin, RankToolsMixin):
    """A DeepSpeed rank: ``setup`` joins the process group and builds the engine."""

    def __init__(self, rank: int, world_size: int, cfg: LearnerConfig) -> None:
        set_build_env()
        self.rank = rank
        self.world_size = world_size
        self.cfg = cfg
        self.engine: Any = None
        self.ref_model: Any = None  # frozen reference policy (learner/reference.py), kl_coef > 0
        self._model_path, self._dtype = "", torch.float32  # set in setup
        self.chat: Any = None  # tokenizer, or processor for VLMs (saved with the policy)
        self.tokenizer: Any = None
        self.counters = ckpt.Counters()
        self._ppo: dict[str, Any] = {}  # the prepared batch between ppo_prepare and ppo_update
        self._pack = False  # shared-prefix packing (set in setup: config and model allow it)
        torch.set_num_threads(cfg.torch_threads or max(1, int(cfg.cpus_per_rank)))

    def address(self) -> tuple[str, int]:
        """(ip, free port) of this rank's node, for rank 0 to host the rendezvous."""
        import ray

        ip = ray.util.get_node_ip_address()
        return ip, free_port("0.0.0.0" if ip != "127.0.0.1" else ip)

    def private_rendezvous(self) -> str:
        """A file:// rendezvous in a fresh private folder (mkdtemp, 0700), for ranks that all
        run on this machine: unlike torch's TCP store, which listens on every interface, a
        file store opens no port at all."""
        folder = tempfile.mkdtemp(prefix="veriray-rendezvous-")
        return f"file://{folder}/store"

    # ------------------------------------------------------------------ setup

    def setup(
        self, master_addr: str, master_port: int, model_path: str, init_method: str | None = None
    ) -> None:
        """Join the group and build the engine. ``init_method`` (a file:// store from rank 0's
        ``private_rendezvous``) replaces the TCP rendezvous when every rank is on one machine."""
        import deepspeed
        from transformers import AutoProcessor, AutoTokenizer

        os.environ.update(
            MASTER_ADDR=master_addr,
            MASTER_PORT=str(master_port),
            RANK=str(self.rank),
            WORLD_SIZE=str(self.world_size),
            LOCAL_RANK="0",
            LOCAL_WORLD_SIZE="1",
        )
        backend = "nccl" if self.cfg.gpus_per_rank > 0 else "gloo"
        if init_method is None:
            deepspeed.init_distributed(dist_backend=backend, auto_mpi_discovery=False)
        else:
            if backend == "gloo" and os.path.exists("/sys/class/net/lo"):
                os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # gloo's pairs on loopback
            deepspeed.init_distributed(
                dist_backend=backend,
                auto_mpi_discovery=False,
                init_method=init_method,
                rank=self.rank,
                world_size=self.world_size,
            )
        torch.manual_seed(self.cfg.seed)  # same value-head init on every rank
        dtype = torch.bfloat16 if self.cfg.dtype == "bfloat16" else torch.float32
        model = PolicyWithValue.from_pretrained(
            model_path, dtype, self.cfg.critic, self.cfg.value_head_hidden
        )
        if self.cfg.lora.enabled:  # after the seed: every rank draws the same adapter init
            add_lora(model.policy, self.cfg.lora, dtype)
        model.autocast_bf16 = self.cfg.autocast_bf16
        if self.cfg.gradient_checkpointing:
            model.enable_gradient_checkpointing()
        self._pack = self.cfg.share_prefixes and model.packable
        if model.multimodal:
            self.chat = AutoProcessor.from_pretrained(model_path)
            self.tokenizer = self.chat.tokenizer
        else:
            self.chat = self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        cfg = self.cfg

        def schedule(optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LambdaLR:
            return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_multiplier(s, cfg))

        self.engine, *_ = deepspeed.initialize(
            model=model,
            model_parameters=[p for p in model.parameters() if p.requires_grad],
            config=deepspeed_config(self.cfg),
            lr_scheduler=schedule,
        )
        self._model_path, self._dtype = model_path, dtype  # the reference loads from here

    @property
    def pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return int(pad if pad is not None else self.tokenizer.eos_token_id)

    # ------------------------------------------------------------------ batches

    def _collate(
        self, rows: list[TrainRow], images: list[dict[str, torch.Tensor] | None]
    ) -> ModelBatch:
        if self._pack and all(i is None for i in images):
            return collate_shared(rows, self.pad_id).to(self.engine.device)
        batch = collate(rows, self.pad_id, images=images)
        dtype = self.engine.module.policy.dtype
        if batch.pixel_values is not None:
            batch.pixel_values = batch.pixel_values.to(dtype)
        return batch.to(self.engine.device)

    def _generator(self, salt: int) -> torch.Generator:
        """Data-order RNG from (seed, step, salt, rank): resume replays the same order."""
        g = torch.Generator()
        g.manual_seed(hash((self.cfg.seed, self.counters.step, salt, self.rank)) % 2**63)
        return g

    def _micro_step(self, loss: torch.Tensor, sums: dict[str, float]) -> None:
        self.engine.backward(loss)
        boundary = self.engine.is_gradient_accumulation_boundary()
        lr = self.engine.get_lr()[0]
        # ZeRO 0 with a client-style torch optimizer reports no norm: the gradients are
        # already all-reduced after a boundary backward, so measure them before the step.
        own_norm = self._grad_norm() if boundary and self.cfg.zero_stage == 0 else None
        self.engine.step()
        if boundary:
            self.counters.step += 1
            norm = self.engine.get_global_grad_norm()
            sums["grad_norm"] += float(norm if norm is not None else own_norm or 0.0)
            sums["lr"] += lr
            sums["optimizer_steps"] += 1

    def _grad_norm(self) -> float:
        grads = [
            p.grad.detach().float() for p in self.engine.module.parameters() if p.grad is not None
        ]
        return (
            float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])))
            if grads
            else 0.0
        )

    @staticmethod
    def _finish(sums: dict[str, float], micro: int, tokens: int, t0: float) -> dict[str, float]:
        steps = max(1.0, sums.pop("optimizer_steps", 0.0))
        out = {f"learner/{k}": v / micro for k, v in sums.items() if k not in ("grad_norm", "lr")}
        out["learner/grad_norm"] = sums.get("grad_norm", 0.0) / steps
        out["learner/lr"] = sums.get("lr", 0.0) / steps
        # Tokens computed forward and backward (shared prefixes once): the compute meter's D.
        out["learner/tokens"] = float(tokens)
        elapsed = time.perf_counter() - t0
        out["timing/learner_step"] = elapsed
        out["perf/learner_tokens_per_s"] = tokens / max(elapsed, 1e-9)
        return out

    # ------------------------------------------------------------------ SFT

    def sft_step(
        self, rows: list[TrainRow], num_samples: int, image_dir: str | None = None
    ) -> dict[str, float]:
        """Optimizer steps over this rank's rows, in order (len = k x micro x accum). With
        shared-prefix packing, the rows of each optimizer step are sorted by their tokens
        first: each step trains the same rows, and its micro-batches share more."""
        t0 = time.perf_counter()
        if self._pack:
            per_step = self.cfg.micro_batch_size * self.cfg.grad_accum_steps
            steps = [rows[s : s + per_step] for s in range(0, len(rows), per_step)]
            rows = []
            for step in steps:
                order = shared_prefix_order([r.prompt_ids + r.response_ids for r in step])
                rows += [step[i] for i in order]
        images = rows_image_inputs(self.chat, rows, image_dir)
        sums: dict[str, float] = defaultdict(float)
        mb, micro, tokens = self.cfg.micro_batch_size, 0, 0
        self.engine.train()
        for s in range(0, len(rows), mb):
            batch = self._collate(rows[s : s + mb], images[s : s + mb])
            loss, metrics = sft_loss(self.engine, batch)
            self._micro_step(loss, sums)
            for k, v in metrics.items():
                sums[k] += float(v)
            micro, tokens = micro + 1, tokens + batch.processed_tokens
        self.counters.consumed_samples += num_samples
        return self._finish(sums, micro, tokens, t0)

    # ------------------------------------------------------------------ PPO

    def ppo_prepare(
        self, table: pa.Table, weights: list[float], image_dir: str | None = None
    ) -> list[float]:
        """Build this rank's rows; old log-probs and old values under the current weights,
        and the reference model's log-probs when there is a KL penalty.

        Returns the value of each row (the group runs GAE over whole episodes with them).
        """
        rows = rows_from_table(table, self.tokenizer, weights, self.counters.policy_version)
        images = rows_image_inputs(self.chat, rows, image_dir)
        old_values = [0.0] * len(rows)
        self._ppo = {"rows": rows, "images": images, "old_logp": None, "values": old_values}
        self._ppo["ref_logp"] = None
        self._ppo["forward_tokens"] = 0  # tokens of the no-grad passes (2ND on the meter)
        ppo = self.cfg.ppo
        if ppo.kl_coef > 0 and self.ref_model is None:
            # Loaded on the first PPO batch, not in setup: SFT groups never pay for it, and a
            # resumed run still gets the stage's starting weights, not the checkpoint's.
            self.ref_model = load_reference(
                self._model_path, self._dtype, self.cfg.autocast_bf16, self.engine.device
            )
        # The KL in the reward is taken under pi_old before the update: it needs the pass.
        need_old = (ppo.kl_coef > 0 and ppo.kl_mode == "reward") or not (
            self._old_logp_is_own_forward(len(rows))
        )
        if not need_old and self.ref_model is None:
            return old_values
        old_logp: list[torch.Tensor] = [torch.empty(0)] * len(rows)
        ref_logp: list[torch.Tensor] = [torch.empty(0)] * len(rows)
        order, mb = self._row_order(rows, None), self.cfg.micro_batch_size
        with torch.no_grad():
            for s in range(0, len(order), mb):
                idx = order[s : s + mb]
                batch = self._collate([rows[i] for i in idx], [images[i] for i in idx])
                if need_old:
                    logp, values = forward_logprobs(self.engine, batch, ppo.temperature)
                    self._ppo["forward_tokens"] += batch.processed_tokens
                    vals = values.tolist() if values is not None else [0.0] * len(idx)
                    for k, i in enumerate(idx):
                        old_logp[i] = _response_slice(logp, k, len(rows[i].response_ids))
                        old_values[i] = float(vals[k])
                if self.ref_model is not None:
                    ref, _ = forward_logprobs(self.ref_model, batch, ppo.temperature, False)
                    self._ppo["forward_tokens"] += batch.processed_tokens
                    for k, i in enumerate(idx):
                        ref_logp[i] = _response_slice(ref, k, len(rows[i].response_ids))
        self._ppo["old_logp"] = old_logp if need_old else None
        self._ppo["ref_logp"] = ref_logp if self.ref_model is not None else None
        return old_values

    def ppo_reward_kl(self) -> list[tuple[float, int]]:
        """Per prepared row (summed KL(pi_old || pi_ref) estimate over its response tokens,
        their count): the KL that goes into the reward (ppo.kl_mode reward)."""
        old, ref = self._ppo["old_logp"], self._ppo["ref_logp"]
        if old is None or ref is None:
            raise RuntimeError("ppo_reward_kl: needs ppo_prepare with kl_coef > 0")
        kind = self.cfg.ppo.kl_estimator
        return [
            row_reward_kl(o, r, [a or b for a, b in zip(row.answer_mask, row.reasoning_mask)], kind)
            for o, r, row in zip(old, ref, self._ppo["rows"], strict=True)
        ]

    def _old_logp_is_own_forward(self, num_rows: int) -> bool:
        """Whether the update's own forward (detached) is pi_old exactly: one epoch, at most
        one optimizer step over this rank's rows, no value model. The weights then cannot move
        between ppo_prepare and any micro-batch's forward, so a no-grad pass before the update
        would compute the same log-probs again (a third of the update's compute)."""
        cfg = self.cfg
        return (
            cfg.ppo.epochs == 1
            and num_rows <= cfg.micro_batch_size * cfg.grad_accum_steps
            and self.engine.module.value_head is None
        )

    def _row_order(self, rows: list[TrainRow], generator: torch.Generator | None) -> list[int]:
        """Micro-batch order of the rows. Unpacked: shuffled by ``generator`` (None = as
        given). With shared-prefix packing: rows sorted by their tokens and cut into
        micro-batches there, so rows that share the longest prefixes train together, and the
        micro-batches (not the rows) shuffled by ``generator``."""
        if not self._pack:
            if generator is None:
                return list(range(len(rows)))
            return torch.randperm(len(rows), generator=generator).tolist()
        order = shared_prefix_order([r.prompt_ids + r.response_ids for r in rows])
        mb = self.cfg.micro_batch_size
        batches = [order[s : s + mb] for s in range(0, len(order), mb)]
        if generator is not None:
            batches = [batches[k] for k in torch.randperm(len(batches), generator=generator)]
        return [i for b in batches for i in b]

    def ppo_update(
        self, advantages: list[float], returns: list[float], num_samples: int
    ) -> dict[str, float]:
        """ppo.epochs passes over the prepared rows, reshuffled each epoch; bumps the version."""
        t0 = time.perf_counter()
        rows, images = self._ppo["rows"], self._ppo["images"]
        adv = [a if r.weight > 0 else 0.0 for a, r in zip(advantages, rows, strict=True)]
        sums: dict[str, float] = defaultdict(float)
        mb, micro, tokens = self.cfg.micro_batch_size, 0, 0
        self.engine.train()
        for epoch in range(self.cfg.ppo.epochs):
            order = self._row_order(rows, self._generator(epoch))
            for s in range(0, len(order), mb):
                idx = order[s : s + mb]
                batch = self._collate([rows[i] for i in idx], [images[i] for i in idx])
                targets = self._targets(idx, adv, returns, batch.response_ids.shape[1])
                loss, metrics = ppo_loss(self.engine, batch, targets, self.cfg.ppo)
                self._micro_step(loss, sums)
                for k, v in metrics.items():
                    sums[k] += float(v)
                micro, tokens = micro + 1, tokens + batch.processed_tokens
        self.counters.consumed_samples += num_samples
        self.counters.policy_version += 1
        self.counters.epoch += 1
        forward_tokens = self._ppo["forward_tokens"]
        self._ppo = {}
        out = self._finish(sums, micro, tokens, t0)
        out["learner/forward_tokens"] = float(forward_tokens)  # old log-probs / values pass
        return out

    def _targets(
        self, idx: list[int], adv: list[float], returns: list[float], width: int
    ) -> PPOTargets:
        device = self.engine.device
        old, ref = self._ppo["old_logp"], self._ppo["ref_logp"]
        kl_in_loss = ref is not None and self.cfg.ppo.kl_mode == "loss"
        return PPOTargets(
            old_logp=None if old is None else _right_align([old[i] for i in idx], width).to(device),
            ref_logp=_right_align([ref[i] for i in idx], width).to(device) if kl_in_loss else None,
            old_values=torch.tensor([self._ppo["values"][i] for i in idx], device=device),
            advantages=torch.tensor([adv[i] for i in idx], device=device),
            returns=torch.tensor([returns[i] for i in idx], device=device),
        )

    def score(
        self, rows: list[TrainRow], temperature: float = 1.0, image_dir: str | None = None
    ) -> list[list[float]]:
        """Log-probs of each row's response tokens under the current weights (no update).

        What the learner believes the policy is: compare with the engines' behaviour log-probs
        after a weight sync.
        """
        images = rows_image_inputs(self.chat, rows, image_dir)
        out: list[list[float]] = []
        mb = self.cfg.micro_batch_size
        self.engine.eval()
        with torch.no_grad():
            for s in range(0, len(rows), mb):
                chunk = rows[s : s + mb]
                logp, _ = forward_logprobs(
                    self.engine, self._collate(chunk, images[s : s + mb]), temperature, False
                )
                for i, row in enumerate(chunk):
                    t = len(row.response_ids)
                    # Rows are right-aligned in the batch's response window.
                    out.append(logp[i, logp.shape[1] - t :].tolist())
        return out
