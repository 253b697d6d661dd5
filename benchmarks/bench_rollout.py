"""Rollout throughput: veriray's vLLM rollout workers vs the study's sequential loop.

Same model, same task (2-card GeneralPoints, VIter 2, feedback turns included), same
sampling. The baseline is how the reference code generated: HF ``generate``, one episode at a
time, batch size 1. veriray runs N rollout workers (vLLM, many concurrent episodes each) with
env and verifier actors on an embedded Ray cluster. Reports episodes/s and tokens/s and the
speed-up, as JSON and a PNG.

Usage (from the repository root):
  python -m benchmarks.bench_rollout [--model tiny-lm|smollm2-135m] [--episodes 64]
      [--workers 1 2] [--out benchmarks/results/rollout.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

DEFAULT_OUT = Path("benchmarks/results/rollout.json")


def task_config() -> dict:
    from envs.families import config_dict
    from envs.generalpoints.config import GeneralPointsConfig

    return config_dict(GeneralPointsConfig(num_cards=2, target_mode="one_op", viter=2))


def sequential_hf(model_path: Path, episodes: int, max_new_tokens: int) -> dict:
    """The study's loop: one episode at a time, HF generate at batch size 1."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from envs.families import family

    tok = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32).eval()
    fam = family("generalpoints")
    options = fam.eval_reset_options(task_config(), episodes, 0)
    tokens = 0
    start = time.perf_counter()
    for opt in options:
        env = fam.make_env(task_config())
        obs, _ = env.reset(options=opt)
        messages = [{"role": "user", "content": obs["text"]}]
        done = False
        while not done:
            ids = tok.apply_chat_template(
                messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
            with torch.no_grad():
                out = model.generate(
                    **ids, max_new_tokens=max_new_tokens, do_sample=True, temperature=0.7
                )
            response = out[0, ids["input_ids"].shape[1] :]
            tokens += len(response)
            text = tok.decode(response, skip_special_tokens=True)
            obs, _, term, trunc, _ = env.step(text)
            done = term or trunc
            messages += [
                {"role": "assistant", "content": text},
                {"role": "user", "content": obs["text"]},
            ]
    wall = time.perf_counter() - start
    return {"episodes_per_s": episodes / wall, "tokens_per_s": tokens / wall, "wall_s": wall}


def veriray_fleet(
    model_path: Path, episodes: int, workers: int, max_new_tokens: int, tmp: Path
) -> dict:
    import ray

    from cluster.ray_config import RayConfig
    from cluster.ray_runtime import init_ray
    from rollout.config import RolloutConfig
    from rollout.fleet import start_fleet
    from rollout.runner import EpisodeSpec

    init_ray(RayConfig(num_cpus=max(2, workers), include_dashboard=False))
    cfg = RolloutConfig(
        num_workers=workers,
        # Env and verifier bundles hold a sliver of CPU each: the workers share 1.9 CPUs.
        cpus_per_worker=1.9 / workers,
        cpus_per_env_actor=0.0,
        cpus_per_verifier_actor=0.0,
        max_model_len=2048,
        max_new_tokens=max_new_tokens,
        temperature=0.7,
        max_concurrent_episodes=64,
    )
    fleet = start_fleet(model_path, cfg, False, tmp / "images")
    from envs.families import family

    options = family("generalpoints").eval_reset_options(task_config(), episodes, 0)
    warm = [
        EpisodeSpec(f"warm-{i}", "generalpoints", task_config(), options[i % len(options)])
        for i in range(2 * workers)
    ]
    fleet.play(warm)  # engines started and warmed up; not timed
    specs = [EpisodeSpec(f"e{i}", "generalpoints", task_config(), o) for i, o in enumerate(options)]
    start = time.perf_counter()
    results = fleet.play(specs)
    wall = time.perf_counter() - start
    tokens = sum(len(t.response_token_ids) for r in results for t in r.turns)
    fleet.shutdown()
    ray.shutdown()
    return {"episodes_per_s": episodes / wall, "tokens_per_s": tokens / wall, "wall_s": wall}


def plot(results: dict, out_png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results["runs"])
    eps = [results["runs"][n]["episodes_per_s"] for n in names]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(names, eps, color=["#999999"] + ["#4c72b0"] * (len(names) - 1))
    for i, v in enumerate(eps):
        ax.text(i, v, f"{v:.2f}", ha="center", va="bottom")
    ax.set_ylabel("episodes / s")
    ax.set_title(f"Rollout throughput, {results['model']} (2-card GeneralPoints, VIter 2)")
    fig.tight_layout()
    fig.savefig(out_png, dpi=120)
    plt.close(fig)


def main() -> None:
    import tempfile

    from cluster.paths import set_build_env
    from learner.assets import prepare

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="tiny-lm")
    parser.add_argument("--episodes", type=int, default=64)
    parser.add_argument("--baseline-episodes", type=int, default=16)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    set_build_env()
    model_path = prepare(args.model)
    runs = {
        "sequential HF (study)": sequential_hf(
            model_path, args.baseline_episodes, args.max_new_tokens
        )
    }
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.workers:
            runs[f"veriray vLLM x{n}"] = veriray_fleet(
                model_path, args.episodes, n, args.max_new_tokens, Path(tmp)
            )
    base = runs["sequential HF (study)"]["episodes_per_s"]
    results = {
        "model": args.model,
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} CPUs",
        "runs": runs,
        "speedup_vs_sequential": {k: v["episodes_per_s"] / base for k, v in runs.items()},
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    plot(results, args.out.with_suffix(".png"))
    print(json.dumps(results["speedup_vs_sequential"], indent=2))


if __name__ == "__main__":
    main()
