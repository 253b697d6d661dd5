"""Learner throughput: SFT and PPO-update tokens/s of one DeepSpeed rank on this machine.

Measures, per model and precision (a rank run in-process, gloo world of 1, no Ray, 2 threads;
precisions: float32, bfloat16 weights, and ``autocast`` = fp32 weights under bf16 autocast,
the learner's ``autocast_bf16``):
  sft/tokens_per_s   trained tokens per second of SFT optimizer steps
  ppo/tokens_per_s   response tokens per second of one PPO update (prepare + ppo.epochs
                     passes of forward/backward), the study's turn-level PPO with a value head
Sequences: prompt 192 + response 64 tokens (a 2-card GeneralPoints turn after SFT is ~200+30),
micro-batch 8. Weight-sync timings belong to the lead's benchmark.

Usage (from the repository root):
  python -m benchmarks.bench_learner [--models tiny-lm smollm2-135m]
      [--dtypes float32 bfloat16 autocast] [--steps 3] [--out ...json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import pyarrow as pa
import torch

from benchmarks.common import exit_on_sigterm, write_json
from learner.assets import prepare
from learner.batching import TrainRow, turn_advantages
from learner.config import LearnerConfig
from learner.rank import LearnerRank, free_port
from rollout.trajectory import TurnRecord, to_record_batch

DEFAULT_OUT = Path("benchmarks/results/learner.json")
PROMPT, RESPONSE, BATCH = 192, 64, 8


def _table(vocab: int, seed: int) -> pa.Table:
    g = torch.Generator().manual_seed(seed)
    turns = [
        TurnRecord(
            episode_id=f"e{i}", turn_index=0, task_family="bench", task_state="{}",
            prompt_token_ids=torch.randint(5, vocab, (PROMPT,), generator=g).tolist(),
            response_token_ids=torch.randint(5, vocab, (RESPONSE,), generator=g).tolist(),
            behaviour_logprobs=[-1.0] * RESPONSE, response_text="reasoning {\"a\": 1}",
            reward=float(i % 2), success=False, done=True, truncated=False, verdict="{}",
            policy_version=0, group_id="g",
        )
        for i in range(BATCH)
    ]  # fmt: skip
    return pa.Table.from_batches([to_record_batch(turns)])


def bench(model: str, dtype: str, steps: int) -> dict[str, float]:
    autocast = {"autocast_bf16": True} if dtype == "autocast" else {}
    cfg = LearnerConfig(
        micro_batch_size=BATCH,
        dtype="float32" if dtype == "autocast" else dtype,  # type: ignore[arg-type]
        lr=1e-6,
        cpus_per_rank=2,
        **autocast,
    )
    rank = LearnerRank(0, 1, cfg)
    rank.setup("127.0.0.1", free_port(), str(prepare(model)))
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
    table = _table(vocab, 1)
    start = time.perf_counter()
    values = rank.ppo_prepare(table, [1.0] * BATCH)
    adv, ret = turn_advantages(table, values, cfg)
    m = rank.ppo_update(adv, ret, BATCH)
    ppo_time = time.perf_counter() - start
    return {
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
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    exit_on_sigterm()
    results = {}
    for m in args.models:
        for d in args.dtypes:
            print(f"[{m}/{d}] ...", flush=True)
            results[f"{m}/{d}"] = bench(m, d, args.steps)
    shape = {"prompt": PROMPT, "response": RESPONSE, "micro_batch": BATCH}
    write_json(
        args.out, "learner", results, shape=shape, threads=torch.get_num_threads(), steps=args.steps
    )
    plot(results, args.out.with_suffix(".png"))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
