"""Learner throughput: SFT and PPO-update tokens/s of one DeepSpeed rank on this machine.

Measures, per model and precision (a rank run in-process, gloo world of 1, no Ray, 2 threads;
precisions: float32, bfloat16 weights, and ``autocast`` = fp32 weights under bf16 autocast,
the learner's ``autocast_bf16``):
  sft/tokens_per_s   trained tokens per second of SFT optimizer steps
  ppo/tokens_per_s   response tokens per second of one PPO update (prepare + ppo.epochs
                     passes of forward/backward), the study's turn-level PPO with a value head
  grpo/update_s_*    seconds of one GRPO update (no critic, one epoch, one optimizer step) on
                     2 tasks x 4 samples, with the rows of a task sharing their prompt:
                     ``unpacked`` trains each row whole, ``packed`` computes each shared
                     prefix once (learner.share_prefixes); ``grpo/packing_speedup`` the ratio
  rl_update/<model> the study's RL update on real GeneralPoints episodes (32 episodes of
                     2-card one_op, about half of them two turns; SmolLM2-135M, shared value
                     head, bf16 autocast, micro-batch 8, old-log-prob/value pass + 2 PPO
                     epochs) with learner.share_prefixes false vs true: wall seconds, tokens
                     computed, speed-up and MFU against an in-run bf16 matmul probe
                     (benchmarks/bench_rl_update.py has the rows and the definitions)
Sequences: prompt 192 + response 64 tokens (a 2-card GeneralPoints turn after SFT is ~200+30),
micro-batch 8. Weight-sync timings belong to the lead's benchmark.

Usage (from the repository root):
  python -m benchmarks.bench_learner [--models tiny-lm smollm2-135m]
      [--dtypes float32 bfloat16 autocast] [--steps 3] [--grpo-dtypes autocast]
      [--rl-update-models smollm2-135m] [--rl-episodes 32] [--out ...json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import torch

from benchmarks import bench_rl_update
from benchmarks.common import exit_on_sigterm, write_json
from common.ports import free_port
from learner.assets import prepare
from learner.batching import TrainRow, turn_advantages
from learner.config import LearnerConfig, PPOConfig
from learner.rank import LearnerRank
from rollout.trajectory import TurnRecord, to_record_batch

DEFAULT_OUT = Path("benchmarks/results/learner.json")
PROMPT, RESPONSE, BATCH = 192, 64, 8


def _table(vocab: int, seed: int, group: int = 1) -> pa.Table:
    """BATCH single-turn rows; ``group`` consecutive rows share a prompt (a GRPO group)."""
    g = torch.Generator().manual_seed(seed)
    prompts = [torch.randint(5, vocab, (PROMPT,), generator=g).tolist() for _ in range(BATCH)]
    turns = [
        TurnRecord(
            episode_id=f"e{i}", turn_index=0, task_family="bench", task_state="{}",
            prompt_token_ids=prompts[i - i % group],
            response_token_ids=torch.randint(5, vocab, (RESPONSE,), generator=g).tolist(),
            behaviour_logprobs=[-1.0] * RESPONSE, response_text="reasoning {\"a\": 1}",
            reward=float(i % 2), success=False, done=True, truncated=False, verdict="{}",
            policy_version=0, group_id=f"g{i // group}",
        )
        for i in range(BATCH)
    ]  # fmt: skip
    return pa.Table.from_batches([to_record_batch(turns)])


def _rank(model: str, dtype: str, **fields: Any) -> LearnerRank:
    autocast = {"autocast_bf16": True} if dtype == "autocast" else {}
    cfg = LearnerConfig(
        micro_batch_size=BATCH,
        dtype="float32" if dtype == "autocast" else dtype,  # type: ignore[arg-type]
        lr=1e-6,
        cpus_per_rank=2,
        **autocast,
        **fields,
    )
    rank = LearnerRank(0, 1, cfg)
    rank.setup("127.0.0.1", free_port(), str(prepare(model)))
    return rank


def _update(rank: LearnerRank, table: pa.Table) -> tuple[float, dict[str, float]]:
    """(seconds, metrics) of one RL update on ``table``: prepare, advantages, update."""
    start = time.perf_counter()
    values = rank.ppo_prepare(table, [1.0] * BATCH)
    adv, ret = turn_advantages(table, values, rank.cfg)
    metrics = rank.ppo_update(adv, ret, BATCH)
    return time.perf_counter() - start, metrics


def bench_grpo(model: str, dtype: str) -> dict[str, float]:
    """One GRPO update (after a warm-up one) unpacked and packed, on 2 tasks x 4 samples."""
    out = {}
    for name, pack in (("unpacked", False), ("packed", True)):
        ppo = PPOConfig(policy_loss="grpo", advantage="grpo", epochs=1)
        rank = _rank(model, dtype, critic="none", share_prefixes=pack, ppo=ppo)
        table = _table(len(rank.tokenizer), 2, group=4)
        _update(rank, table)  # warm-up
        out[f"grpo/update_s_{name}"] = _update(rank, table)[0]
    out["grpo/packing_speedup"] = out["grpo/update_s_unpacked"] / out["grpo/update_s_packed"]
    return out


def bench(model: str, dtype: str, steps: int, grpo: bool) -> dict[str, float]:
    rank = _rank(model, dtype)
    cfg = rank.cfg
    vocab = len(rank.tokenizer)
    n = PROMPT + RESPONSE - 1  # SFT trains every token after the first
    rows = [
        TrainRow([t["prompt_token_ids"][0]], t["prompt_token_ids"][1:] + t["response_token_ids"],
                 [True] * n, [False] * n)
        for t in _table(vocab, 0).to_pylist()
    ]  # fmt: skip
    rank.sft_step(rows, BATCH)  # warm-up
    start = time.perf_counter()
    tokens = sum(rank.sft_step(rows, BATCH)["learner/tokens"] for _ in range(steps))
    sft = tokens / (time.perf_counter() - start)
    ppo_time, m = _update(rank, _table(vocab, 1))
    return (bench_grpo(model, dtype) if grpo else {}) | {
        "sft/tokens_per_s": sft,
        "sft/step_s": BATCH * n / sft,
        "ppo/tokens_per_s": BATCH * RESPONSE * cfg.ppo.epochs / ppo_time,
        "ppo/update_s": ppo_time,
        "ppo/epochs": cfg.ppo.epochs,
        "ppo/learner_tokens_per_s": m["perf/learner_tokens_per_s"],
    }


def plot(results: dict[str, dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    x = range(len(names))
    ax.bar([i - 0.2 for i in x], [results[n]["sft/tokens_per_s"] for n in names], 0.4, label="SFT")
    ax.bar([i + 0.2 for i in x], [results[n]["ppo/tokens_per_s"] for n in names], 0.4, label="PPO")
    ax.set_xticks(list(x), names, fontsize=8)
    ax.set_ylabel("trained tokens / s")
    ax.set_yscale("log")
    ax.set_title(f"learner throughput, 1 rank, {platform.machine()} CPU")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["tiny-lm"])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16", "autocast"])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument(
        "--grpo-dtypes",
        nargs="+",
        default=["autocast"],
        help="precisions that also time a GRPO update unpacked vs packed (2 more ranks each)",
    )
    parser.add_argument(
        "--rl-update-models",
        nargs="*",
        default=["smollm2-135m"],
        help="models whose RL update on real episodes is timed, shared prefixes off vs on",
    )
    parser.add_argument("--rl-episodes", type=int, default=32)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    exit_on_sigterm()
    results: dict[str, Any] = {}
    for m in args.models:
        for d in args.dtypes:
            print(f"[{m}/{d}] ...", flush=True)
            results[f"{m}/{d}"] = bench(m, d, args.steps, d in args.grpo_dtypes)
    throughput = dict(results)
    if args.rl_update_models:
        # Under "rl_update", apart from the per-precision rows above (summary.py reads both).
        results["rl_update"] = {
            m: bench_rl_update.bench(m, args.rl_episodes, repeats=1) for m in args.rl_update_models
        }
    shape = {"prompt": PROMPT, "response": RESPONSE, "micro_batch": BATCH}
    write_json(
        args.out,
        "learner",
        results,
        shape=shape,
        threads=torch.get_num_threads(),
        steps=args.steps,
        rl_update_settings=bench_rl_update.settings(args.rl_episodes),
    )
    plot(throughput, args.out.with_suffix(".png"))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
