"""The learner group: N DeepSpeed ranks as Ray actors in one placement group.

The group is the only place that sees a whole batch: it shards rows across ranks (equal
micro-batch counts, learner/batching.py), runs GAE over whole episodes with the values the
ranks computed, and averages the ranks' metrics. Ranks never talk to the controller.

PPO update (``train_ppo``), two collective phases:
  1. ppo_prepare: each rank computes old log-probs and old values of its rows (no grad);
  2. the group computes advantages/returns over the whole batch (whitened over all ranks),
     from rewards shaped by the truncation handling and, with the KL in the reward, by each
     turn's KL to the reference model (the ranks' ppo_reward_kl);
  3. ppo_update: each rank runs ppo.epochs passes of micro-batches; the all-reduce keeps
     the replicas identical.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pyarrow as pa
import ray
from ray.util.placement_group import remove_placement_group

from common.placement import RoleSpec, in_bundle, reserve
from common.placement_config import PlacementConfig
from learner.batching import TrainRow, shard_indices, turn_advantages
from learner.config import LearnerConfig
from learner.dynamic_sampling import informative_rows
from learner.rank import LearnerRank
from learner.truncation import shape_rewards, truncated_flags

# Building a DeepSpeed engine loads the model and joins the process group: slow on CPU.
SETUP_TIMEOUT_S = 600
# Metrics summed over ranks (the rest are averaged).
SUMMED_METRICS = ("learner/tokens", "learner/forward_tokens", "perf/learner_tokens_per_s")


def merge_metrics(per_rank: list[dict[str, float]]) -> dict[str, float]:
    """Rank metrics -> one dict: tokens and throughput summed, step time max, rest mean."""
    out: dict[str, float] = {}
    for key in per_rank[0]:
        vals = [m[key] for m in per_rank]
        if key in SUMMED_METRICS:
            out[key] = sum(vals)
        elif key.startswith("timing/"):
            out[key] = max(vals)
        else:
            out[key] = sum(vals) / len(vals)
    return out


class LearnerGroup:
    """Creates the ranks (one placement-group bundle each), joins them into one process group.

    The placement group is built by common.placement, like every other role's, so
    ``placement.learner_strategy`` and ``placement.learner_resources`` apply to the ranks.
    """

    def __init__(
        self, cfg: LearnerConfig, model_path: str, placement: PlacementConfig | None = None
    ) -> None:
        self.cfg = cfg
        p = placement or PlacementConfig()
        spec = RoleSpec(
            "learner",
            cfg.num_ranks,
            cfg.cpus_per_rank,
            cfg.gpus_per_rank,
            p.learner_resources,
            p.learner_strategy,
        )
        self.pg = reserve(spec, timeout_s=SETUP_TIMEOUT_S)
        actor_cls = ray.remote(LearnerRank)
        self.ranks = [
            actor_cls.options(**in_bundle(self.pg, i, spec)).remote(i, cfg.num_ranks, cfg)
            for i in range(cfg.num_ranks)
        ]
        addr, port = ray.get(self.ranks[0].address.remote())
        # A node on loopback (the embedded single-machine cluster) has every rank here: they
        # meet through a private file store instead of a TCP store open on every interface.
        local = addr == "127.0.0.1"
        init = ray.get(self.ranks[0].private_rendezvous.remote()) if local else None
        ray.get(
            [r.setup.remote(addr, port, model_path, init) for r in self.ranks],
            timeout=SETUP_TIMEOUT_S,
        )

    def call(self, method: str, per_rank_args: list[tuple] | None = None) -> list[Any]:
        """Call ``method`` on every rank (with its own args) and wait for all."""
        args = per_rank_args or [()] * len(self.ranks)
        refs = [getattr(r, method).remote(*a) for r, a in zip(self.ranks, args)]
        return _get_all(refs, method, self.cfg.call_timeout_s)

    def call_all(self, method: str, *args: Any) -> list[Any]:
        """Call ``method`` with the same args on every rank (collectives) and wait for all."""
        refs = [getattr(r, method).remote(*args) for r in self.ranks]
        return _get_all(refs, method, self.cfg.call_timeout_s)

    # ------------------------------------------------------------------ training

    def train_ppo(self, table: pa.Table, image_dir: str | None = None) -> dict[str, float]:
        """One PPO update on a batch of turns (TRAJECTORY_SCHEMA rows, whole episodes).

        Before the update: truncated responses are masked or penalised, dynamic sampling
        drops the groups of equal returns (after that handling), and with the KL in the
        reward each turn's reward loses kl_coef x its response's KL to the reference."""
        ppo, pre = self.cfg.ppo, {}
        reasons = table.column("finish_reason").to_pylist()
        shaped, loss_weight = shape_rewards(
            table.column("reward").to_pylist(),
            reasons,
            ppo.truncated_response,
            ppo.truncated_penalty,
        )
        if ppo.dynamic_sampling:
            keep, ds = informative_rows(
                table.column("group_id").to_pylist(), table.column("episode_id").to_pylist(), shaped
            )
            if len(keep) < table.num_rows:
                table = table.take(keep)
                reasons = [reasons[i] for i in keep]
                shaped, loss_weight = [shaped[i] for i in keep], [loss_weight[i] for i in keep]
            pre |= {f"learner/{k}": v for k, v in ds.items()}
        pre["learner/truncated_frac"] = float(truncated_flags(reasons).double().mean())
        shards = shard_indices(table.num_rows, self.cfg)
        values_per_rank = self.call(
            "ppo_prepare",
            [
                (table.take([i for i, _ in s]), [w * loss_weight[i] for i, w in s], image_dir)
                for s in shards
            ],
        )
        values = _merge_rows(shards, values_per_rank, table.num_rows, 0.0)
        rewards = shaped
        if ppo.kl_coef > 0 and ppo.kl_mode == "reward":
            kl = _merge_rows(shards, self.call("ppo_reward_kl"), table.num_rows, (0.0, 0))
            rewards = [r - ppo.kl_coef * k for r, (k, _) in zip(rewards, kl, strict=True)]
            tokens = max(1, sum(n for _, n in kl))
            pre["learner/kl_ref"] = sum(k for k, _ in kl) / tokens  # per token, as in the loss
            pre["learner/kl_reward_penalty"] = ppo.kl_coef * sum(k for k, _ in kl) / len(kl)
        critic = self.cfg.critic != "none"
        adv, ret = turn_advantages(table, values if critic else None, self.cfg, rewards)
        metrics = merge_metrics(
            self.call(
                "ppo_update",
                [([adv[i] for i, _ in s], [ret[i] for i, _ in s], table.num_rows) for s in shards],
            )
        )
        raw_rewards = table.column("reward").to_pylist()
        metrics["learner/batch_reward_mean"] = sum(raw_rewards) / len(raw_rewards)
        metrics["learner/advantage_abs_mean"] = sum(abs(a) for a in adv) / len(adv)
        return metrics | pre

    def train_from_buffer(
        self,
        buffer: Any,
        num_episodes: int,
        timeout_s: float,
        image_dir: str | None = None,
        request_id: str | None = None,
    ) -> dict[str, float]:
        """Consume ``num_episodes`` episodes from a replay buffer actor, run one PPO update,
        and announce the new policy version to the buffer (its staleness filter).
        ``request_id`` names the batch: if the buffer restarts while serving it, the retried
        call gets the same episodes."""
        table = ray.get(buffer.consume.remote(num_episodes, timeout_s, request_id))
        if table.num_rows == 0:
            raise TimeoutError(f"replay buffer: no episodes within {timeout_s} s")
        metrics = self.train_ppo(table, image_dir)
        ray.get(buffer.set_policy_version.remote(self.policy_version()))
        return metrics

    def sft_step(self, rows: list[TrainRow], image_dir: str | None = None) -> dict[str, float]:
        """Optimizer step(s) of SFT on ``rows`` (a multiple of rows_per_step is pad-free)."""
        shards = shard_indices(len(rows), self.cfg)
        # A padding repeat gets weight 0, which empties its loss mask in collate.
        per_rank = [
            (
                [rows[i] if w > 0 else replace(rows[i], weight=0.0) for i, w in s],
                len(rows),
                image_dir,
            )
            for s in shards
        ]
        return merge_metrics(self.call("sft_step", per_rank))

    # ------------------------------------------------------------------ state

    def policy_version(self) -> int:
        return int(ray.get(self.ranks[0].state.remote())["policy_version"])

    def state(self) -> dict[str, int]:
        return ray.get(self.ranks[0].state.remote())

    def export_policy(self, folder: str) -> list[str]:
        """HF folder of the policy (collective; rank 0 writes). Returns safetensors paths."""
        return self.call_all("export_policy", folder)[0]

    def export_weights(self, folder: str) -> list[str]:
        """Weight-sync hook: policy tensors + config in HF layout. Returns safetensors paths."""
        return self.call_all("export_weights", folder)[0]

    def save_checkpoint(self, folder: str) -> None:
        self.call_all("save_checkpoint", folder)

    def load_checkpoint(self, folder: str) -> dict[str, int]:
        return self.call_all("load_checkpoint", folder)[0]

    def score(self, rows: list[TrainRow], temperature: float = 1.0) -> list[list[float]]:
        """Rank 0's log-probs of each row's response tokens (all ranks hold the same weights
        under ZeRO 0-2)."""
        return ray.get(self.ranks[0].score.remote(rows, temperature))

    def param_digests(self) -> list[str]:
        return self.call_all("param_digest")

    def shutdown(self) -> None:
        for r in self.ranks:
            ray.kill(r)
        remove_placement_group(self.pg)


def _merge_rows(
    shards: list[list[tuple[int, float]]], per_rank: list[list[Any]], num_rows: int, fill: Any
) -> list[Any]:
    """Per table row, the value its rank returned for it: each row's one real (weight > 0)
    place in the shards; the weight-0 repeats that pad a rank are skipped."""
    out = [fill] * num_rows
    for shard, vals in zip(shards, per_rank, strict=True):
        for (i, w), v in zip(shard, vals, strict=True):
            if w > 0:
                out[i] = v
    return out


def _get_all(refs: list[Any], method: str, timeout_s: float) -> list[Any]:
    """Every rank's result, in order; the first rank to fail raises at once. A plain
    ``ray.get(refs)`` waits in order, and when one rank dies the others stay blocked in the
    collective they share with it: it would wait forever on them. A rank that has not answered
    within ``timeout_s`` is reported as hung, by rank and call."""
    pending = list(refs)
    deadline = time.monotonic() + timeout_s
    while pending:
        done, pending = ray.wait(pending, num_returns=1, timeout=deadline - time.monotonic())
        if not done:
            ranks = [refs.index(p) for p in pending]
            raise TimeoutError(
                f"learner rank(s) {ranks}: {method} did not return within {timeout_s:.0f} s "
                "(learner.call_timeout_s); a rank is hung or its peers wait on a dead one"
            )
        ray.get(done[0])  # raises the rank's error (e.g. ActorDiedError)
    return ray.get(refs)
