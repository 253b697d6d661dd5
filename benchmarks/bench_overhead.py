"""Overhead: the share of an RL iteration's wall time spent outside the real work.

Runs the real controller (``cluster.controller.run_experiment``: Ray, rollout fleet, replay
buffer, DeepSpeed learner, weight sync, scheduled evaluation, checkpoint, metrics) on a short
RL-only config, then reads the run's ``metrics.jsonl``. Per RL update u the controller logs
the stage timers ``timing/iteration`` (the whole update), ``timing/rollout`` (waiting for
the update's episodes: generation with the env and verifier actor calls inside it),
``timing/rollout_play`` (the play itself, which starts right after the previous sync),
``timing/train`` (buffer consume + PPO update), ``timing/weight_sync``, and ``timing/eval`` /
``timing/checkpoint`` when they run; every row carries its wall-clock ``time``.

  iteration wall(u) = timing/iteration(u)   (older controllers: time(u) - time(u-1), update
                                             1 skipped)
  work(u)           = rollout(u) + train(u)         (generation, env, verifier, training)
  scheduled(u)      = eval(u) + checkpoint(u)       (not per-iteration work; listed apart)
  overhead(u)       = wall(u) - work(u) - scheduled(u)
  overhead share    = sum overhead / sum (wall - scheduled)     (target <= 5%)

Overhead so includes the weight sync (publishing weights is neither generation nor
training), reported as its own share too, and the controller's glue: Ray calls for stats,
metrics logging, scheduling. It is an upper bound: in on-policy mode the next update's
episodes start right after the sync, so the glue after it overlaps generation that
``timing/rollout`` (the wait) no longer sees; ``rollout_play_s`` per window shows how long
generation really ran.

Usage (from the repository root):
  python -m benchmarks.bench_overhead [--models tiny-lm smollm2-135m] [--updates 4]
      [--episodes-per-update 16] [--out benchmarks/results/overhead.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import tempfile
import time
from pathlib import Path

from benchmarks.common import exit_on_sigterm, write_json
from benchmarks.rl_loop import LoopSpec, experiment_config

DEFAULT_OUT = Path("benchmarks/results/overhead.json")
WORK = ("timing/rollout", "timing/train")
SCHEDULED = ("timing/eval", "timing/checkpoint")


def run(model: str, updates: int, episodes: int, workdir: Path) -> Path:
    from cluster.controller import run_experiment

    spec = LoopSpec(
        model=model,
        episodes_per_update=episodes,
        samples_per_task=1,
        viter=2,  # the study's multi-turn episodes, feedback turns included
        policy_loss="ppo_turn",
        advantage="gae",
        critic="shared",
        epochs=1,
        name=f"bench-overhead-{model}-{os.getpid()}",
    )
    cfg = experiment_config(spec, workdir)
    cfg = dataclasses.replace(cfg, rl=dataclasses.replace(cfg.rl, updates=updates))
    return run_experiment(cfg)


def analyse(metrics_path: Path) -> dict:
    rows = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
    updates = [r for r in rows if "timing/rollout" in r]
    # A controller that times the whole iteration (timing/iteration) gives every update its
    # wall time; otherwise it is the gap between consecutive rows (update 1 has none).
    timed = "timing/iteration" in updates[0]
    pairs = zip([None, *updates], updates, strict=False) if timed else itertools.pairwise(updates)
    windows = []
    for prev, cur in pairs:
        wall = cur["timing/iteration"] if timed else cur["time"] - prev["time"]
        work = sum(cur.get(k, 0.0) for k in WORK)
        scheduled = sum(cur.get(k, 0.0) for k in SCHEDULED)
        sync = cur.get("timing/weight_sync", 0.0)
        overhead = wall - work - scheduled
        windows.append(
            {
                "update": cur["step"],
                "wall_s": wall,
                "rollout_s": cur["timing/rollout"],
                "train_s": cur["timing/train"],
                "weight_sync_s": sync,
                "scheduled_s": scheduled,
                "overhead_s": overhead,
                "glue_s": overhead - sync,
                # generation as long as it ran (it starts during the previous iteration)
                "rollout_play_s": cur.get("timing/rollout_play"),
            }
        )
    base = sum(w["wall_s"] - w["scheduled_s"] for w in windows)
    total = lambda k: sum(w[k] for w in windows)  # noqa: E731
    return {
        "overhead_share": total("overhead_s") / base,
        "weight_sync_share": total("weight_sync_s") / base,
        "glue_share": total("glue_s") / base,
        "rollout_share": total("rollout_s") / base,
        "train_share": total("train_s") / base,
        "iteration_s_mean": base / len(windows),
        "windows": windows,
    }


def plot(results: dict, out_png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 1.4 + 0.6 * len(results)))
    parts = [
        ("rollout_share", "rollout (gen + env + verifier)", "#4c72b0"),
        ("train_share", "train", "#dd8452"),
        ("weight_sync_share", "weight sync", "#55a868"),
        ("glue_share", "controller glue", "#c44e52"),
    ]
    for y, r in enumerate(results.values()):
        left = 0.0
        for key, label, color in parts:
            v = 100 * r[key]
            ax.barh(y, v, left=left, color=color, label=label if y == 0 else None)
            if v > 3:
                ax.text(left + v / 2, y, f"{v:.1f}%", ha="center", va="center", fontsize=8)
            left += v
        ax.text(101, y, f"overhead {100 * r['overhead_share']:.1f}%", va="center", fontsize=8)
    ax.set_yticks(range(len(results)), list(results))
    ax.set_xlim(0, 125)
    ax.set_xlabel("% of RL iteration wall time (eval and checkpoint excluded)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.45, -0.5), ncol=4)
    ax.set_title("where an RL iteration's time goes (controller stage timers)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out_png, dpi=120, bbox_inches="tight")  # the legend sits below the axes
    plt.close(fig)
    print(f"wrote {out_png}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["tiny-lm", "smollm2-135m"])
    parser.add_argument("--updates", type=int, default=4, help="RL updates (>= 3)")
    parser.add_argument("--episodes-per-update", type=int, default=16)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    exit_on_sigterm()
    if args.updates < 3:
        parser.error("--updates must be >= 3 (older controllers give update 1 no wall time)")
    results = {}
    with tempfile.TemporaryDirectory(prefix="veriray-overhead-") as tmp:
        for model in args.models:
            t0 = time.perf_counter()
            run_dir = run(model, args.updates, args.episodes_per_update, Path(tmp))
            results[model] = analyse(run_dir / "metrics.jsonl") | {
                "run_wall_s": time.perf_counter() - t0
            }
            r = results[model]
            print(
                f"{model}: overhead {100 * r['overhead_share']:.2f}% "
                f"(weight sync {100 * r['weight_sync_share']:.2f}%, "
                f"glue {100 * r['glue_share']:.2f}%), iteration {r['iteration_s_mean']:.2f} s"
            )
    write_json(
        args.out,
        "overhead",
        {
            "headline": {f"{m}/overhead_share": r["overhead_share"] for m, r in results.items()},
            "target_max_share": 0.05,
            "per_model": results,
        },
        settings={
            "updates": args.updates,
            "episodes_per_update": args.episodes_per_update,
            "task": "GeneralPoints, 2 cards, one_op, viter 2 (feedback turns)",
            "algorithm": "turn-level PPO (value head), 1 epoch, on-policy",
            "windows": "every update (timing/iteration), or 2..N on older controllers",
        },
    )
    plot(results, args.out.with_suffix(".png"))


if __name__ == "__main__":
    main()
