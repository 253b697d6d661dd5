"""The study's RL update on real GeneralPoints episodes: shared prefixes off vs on, and MFU.

One PPO update as the demo runs it (SmolLM2-135M by default, the shared value head, bf16
autocast over fp32 weights, micro-batch 8, 2 PPO epochs, so an old-log-prob/value pass first)
on the same rows twice: ``learner.share_prefixes`` false (every row whole) and true (the rows
of a micro-batch packed as one prefix tree). The rows are real episodes' turns: 32 dealt 2-card
one_op hands, each first user turn rendered with the model's chat template as rollout renders
it; the response is the oracle's answer, and every other episode first answers a wrong formula,
gets the verifier's feedback and answers again (a turn-2 row's prompt holds turn 1 whole).

Reported per setting: wall seconds of the update (prepare + update), tokens computed by the
learner forward-and-backward (``learner/tokens``) and forward-only (``learner/forward_tokens``),
and MFU = useful training FLOP/s over this machine's bf16 matmul FLOP/s, measured by a probe
in the same run (2048 x 2048 bf16 matmuls, the learner's threads, best of 5 x 4 products).
Useful training FLOPs = 6 N x tokens computed forward and backward + 2 N x tokens computed
forward-only (N = parameters): the FLOPs meter's own definition, so with sharing on a shared
prefix counts once.
Each setting counts the tokens it computes: unshared, every row whole, so its MFU includes
the repeated prefixes (MFU says how well the machine is used; the speed-up what sharing saves).

Usage (from the repository root):
  python -m benchmarks.bench_rl_update [--model smollm2-135m] [--episodes 32] [--repeats 1]
      [--out benchmarks/results/rl_update.json]
bench_learner.py runs the same measurement (``--rl-update-models``) into learner.json; this
module also runs it alone.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import torch

from benchmarks.common import exit_on_sigterm, write_json
from common.ports import free_port
from learner.assets import prepare
from learner.batching import turn_advantages
from learner.config import LearnerConfig, PPOConfig
from learner.rank import LearnerRank
from rollout.trajectory import TurnRecord, to_record_batch

DEFAULT_OUT = Path("benchmarks/results/rl_update.json")
MICRO_BATCH, THREADS = 8, 2


def episode_table(model_path: Path, episodes: int, seed: int = 0) -> pa.Table:
    """Real GeneralPoints turns (see the module docstring) as trajectory rows."""
    import numpy as np
    from transformers import AutoTokenizer

    from envs.families import family
    from envs.generalpoints.config import GeneralPointsConfig
    from envs.generalpoints.deal import deal_task
    from envs.generalpoints.oracle import oracle_answer

    tok = AutoTokenizer.from_pretrained(model_path)
    cfg = GeneralPointsConfig(num_cards=2, target_mode="one_op", viter=2)
    env = family("generalpoints").make_env(dict(cfg.to_dict()))
    rng = np.random.default_rng(seed)
    turns = []
    for e in range(episodes):
        task = deal_task(cfg, rng)
        obs, _ = env.reset(options={"task_state": task.to_dict()})
        messages = [{"role": "user", "content": obs["text"]}]
        answers = [oracle_answer(task)]
        if e % 2:  # a wrong first answer, then the verifier's feedback and the right one
            answers.insert(0, json.dumps({"cards": list(task.ranks), "formula": "1+1"}))
        for k, answer in enumerate(answers):
            prompt = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"]
            response_ids = tok(answer, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
            obs, reward, done, truncated, _ = env.step(answer)
            turns.append(
                TurnRecord(
                    episode_id=f"e{e}", turn_index=k, task_family="generalpoints",
                    task_state=json.dumps(task.to_dict()), prompt_token_ids=prompt_ids,
                    response_token_ids=response_ids,
                    behaviour_logprobs=[-0.5] * len(response_ids), response_text=answer,
                    reward=float(reward), success=bool(done), done=bool(done or truncated),
                    truncated=bool(truncated), verdict="{}", policy_version=0,
                    group_id=f"e{e}",
                )
            )  # fmt: skip
            messages += [
                {"role": "assistant", "content": answer},
                {"role": "user", "content": obs["text"]},
            ]
    return pa.Table.from_batches([to_record_batch(turns)])


def matmul_probe(threads: int, size: int = 2048, repeats: int = 5) -> float:
    """This machine's bf16 matmul FLOP/s (best of ``repeats``) with the learner's threads."""
    torch.set_num_threads(threads)
    a, b = (torch.randn(size, size, dtype=torch.bfloat16) for _ in range(2))
    a @ b  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(4):
            a @ b
        best = min(best, (time.perf_counter() - start) / 4)
    return 2 * size**3 / best


def _rank(model_path: Path, share: bool) -> LearnerRank:
    cfg = LearnerConfig(
        micro_batch_size=MICRO_BATCH,
        lr=1e-6,
        cpus_per_rank=THREADS,
        autocast_bf16=True,
        share_prefixes=share,
        ppo=PPOConfig(epochs=2, clip_eps=0.1),
    )
    rank = LearnerRank(0, 1, cfg)
    rank.setup("127.0.0.1", free_port(), str(model_path))
    return rank


def update(rank: LearnerRank, table: pa.Table) -> tuple[float, dict[str, float]]:
    """(seconds, metrics) of one PPO update: prepare (old log-probs, values), GAE, update."""
    n = table.num_rows
    pad = -(-n // MICRO_BATCH) * MICRO_BATCH - n  # whole micro-batches, as the group pads
    weights = [1.0] * n + [0.0] * pad
    table = pa.concat_tables([table, table.slice(0, pad)]) if pad else table
    start = time.perf_counter()
    values = rank.ppo_prepare(table, weights)
    adv, ret = turn_advantages(table, values, rank.cfg)
    metrics = rank.ppo_update(adv, ret, n)
    return time.perf_counter() - start, metrics


def bench(model: str, episodes: int, repeats: int) -> dict[str, Any]:
    """One warm-up on a micro-batch, then ``repeats`` timed updates with sharing off and on."""
    from evaluation.flops import count_parameters

    path = prepare(model)
    table = episode_table(path, episodes)
    n_params = count_parameters(path)
    peak = matmul_probe(THREADS)
    out: dict[str, Any] = {"rows": table.num_rows, "n_params": n_params, "probe_flops": peak}
    # Warm-up on one micro-batch's worth of rows (allocations, oneDNN primitives): a whole
    # warm-up update would double the benchmark's time (~1.5 min unshared on SmolLM2 here).
    warm = table.slice(0, MICRO_BATCH)
    for name, share in (("whole_rows", False), ("shared_prefixes", True)):
        rank = _rank(path, share)
        update(rank, warm)
        times, metrics = [], {}
        for _ in range(repeats):
            seconds, metrics = update(rank, table)
            times.append(seconds)
        train, forward = metrics["learner/tokens"], metrics["learner/forward_tokens"]
        useful = 6 * n_params * train + 2 * n_params * forward
        best = min(times)
        out[name] = {
            "update_s": best,
            "update_s_all": times,
            "tokens_trained": train,
            "tokens_forward_only": forward,
            "useful_flops": useful,
            "mfu": useful / best / peak,
        }
        print(f"[{model}/{name}] {json.dumps(out[name])}", flush=True)
        del rank
    whole, shared = out["whole_rows"], out["shared_prefixes"]
    out["speedup"] = whole["update_s"] / shared["update_s"]
    out["tokens_ratio"] = (whole["tokens_trained"] + whole["tokens_forward_only"]) / (
        shared["tokens_trained"] + shared["tokens_forward_only"]
    )
    return out


def settings(episodes: int) -> dict[str, Any]:
    """What the measurement ran, for the JSON (MFU's definition included)."""
    return {
        "episodes": episodes,
        "task": "GeneralPoints 2 cards, one_op, viter 2; odd episodes fail turn 1, then solve",
        "micro_batch": MICRO_BATCH,
        "ppo_epochs": 2,
        "critic": "shared value head",
        "precision": "fp32 weights, bf16 autocast",
        "threads": THREADS,
        "warm_up": f"one update of the first {MICRO_BATCH} rows, not timed",
        "tokens_trained": "learner/tokens: tokens computed forward and backward (a shared "
        "prefix once with share_prefixes)",
        "tokens_forward_only": "learner/forward_tokens: the old-log-prob/value pass",
        "useful_flops": "6 N tokens_trained + 2 N tokens_forward_only (N = parameters)",
        "probe_flops": f"best bf16 matmul FLOP/s, 2048x2048, {THREADS} threads",
        "mfu": "useful_flops / update_s / probe_flops",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--episodes", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    exit_on_sigterm()
    torch.set_num_threads(THREADS)
    result = bench(args.model, args.episodes, args.repeats)
    write_json(args.out, "rl_update", {args.model: result}, settings=settings(args.episodes))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
