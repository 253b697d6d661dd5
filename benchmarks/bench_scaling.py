"""Scaling: rollout throughput and RL iteration time vs rollout workers, env actors, model size.

For each model one learner group lives through the whole sweep; for each point the rollout
fleet is restarted with that many rollout workers and env actors (weights published to it),
warmed up, then ``--iterations`` on-policy RL iterations run (benchmarks/rl_loop.py: play the
update's episodes -> train -> sync weights). The study's setting: 2-card GeneralPoints with
VIter 2 (feedback turns), turn-level PPO with a value head, 1 epoch.

Curves (one PNG each, rollout episodes/s on the left axis, iteration seconds on the right):
  scaling_workers.png     rollout workers 1, 2      (1 env actor; ``--sweep-models``)
  scaling_env_actors.png  env actors 1, 2, 4        (1 rollout worker; ``--sweep-models``)
  scaling_model.png       model size (parameters)   (1 worker, 1 env actor; every model)

On this 2-core machine every process shares the same cores, so more actors can only help
where one of them waits on another; the curves show where that is and what actors cost.

Usage (from the repository root):
  python -m benchmarks.bench_scaling [--models tiny-lm smollm2-135m] [--sweep-models tiny-lm]
      [--workers 1 2]
      [--env-actors 1 2 4] [--episodes-per-update 16] [--iterations 1]
      [--out benchmarks/results/scaling.json]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks.common import exit_on_sigterm, save_png, write_json
from benchmarks.rl_loop import LoopSpec, RLBench, mean

DEFAULT_OUT = Path("benchmarks/results/scaling.json")


def sweep(model: str, points: list[tuple[int, int]], args: argparse.Namespace, tmp: Path) -> dict:
    from evaluation.flops import count_parameters
    from learner.assets import prepare

    spec = LoopSpec(
        model=model,
        episodes_per_update=args.episodes_per_update,
        samples_per_task=1,
        viter=2,
        policy_loss="ppo_turn",
        advantage="gae",
        critic="shared",
        epochs=1,
        workers=points[0][0],
        env_actors=points[0][1],
        name=f"bench-scaling-{model}",
    )
    bench = RLBench(spec, tmp)
    out: dict[str, dict] = {}
    try:
        for workers, envs in points:
            start_s = (
                bench.start_fleet(workers=workers, env_actors=envs)
                if (workers, envs) != (bench.spec.workers, bench.spec.env_actors)
                else 0.0
            )
            bench.warm_up(4 * workers)
            its = [bench.iteration() for _ in range(args.iterations)]
            point = {
                "workers": workers,
                "env_actors": envs,
                "fleet_start_s": start_s,
                "rollout_episodes_per_s": sum(i["episodes"] for i in its)
                / sum(i["rollout_s"] for i in its),
                "rollout_tokens_per_s": sum(i["response_tokens"] for i in its)
                / sum(i["rollout_s"] for i in its),
                "iteration_s": mean([i["iteration_s"] for i in its]),
                "rollout_s": mean([i["rollout_s"] for i in its]),
                "train_s": mean([i["train_s"] for i in its]),
                "weight_sync_s": mean([i["weight_sync_s"] for i in its]),
            }
            out[f"w{workers}-e{envs}"] = point
            print(
                f"[{model}] workers={workers} env_actors={envs}: "
                f"{point['rollout_episodes_per_s']:.2f} episodes/s, "
                f"iteration {point['iteration_s']:.2f} s",
                flush=True,
            )
    finally:
        bench.close()
    return {"n_params": count_parameters(prepare(model)), "points": out}


def curve_png(
    out_png: Path,
    title: str,
    xlabel: str,
    series: dict[str, tuple[list, list, list]],
    logx: bool = False,
    names: list[str] | None = None,
) -> None:
    """series: label -> (x values, rollout episodes/s, iteration s); two panels, values
    printed at the points, log y where a panel spans more than 10x (models differ a lot)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, k, ylabel in (
        (axes[0], 1, "rollout episodes / s"),
        (axes[1], 2, "RL iteration seconds"),
    ):
        values = [v for s in series.values() for v in s[k]]
        for i, (label, s) in enumerate(series.items()):
            ax.plot(s[0], s[k], "o-", color=f"C{i}", label=label)
            for x, y in zip(s[0], s[k], strict=True):
                ax.annotate(
                    f"{y:.2f}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7
                )
        for i, name in enumerate(names or []):  # label the points (the model curve)
            xs, ys = next(iter(series.values()))[0], next(iter(series.values()))[k]
            ax.annotate(
                name, (xs[i], ys[i]), textcoords="offset points", xytext=(4, -12), fontsize=8
            )
        if values and max(values) > 10 * max(min(values), 1e-9):
            ax.set_yscale("log")
        else:
            ax.set_ylim(0, 1.2 * max(values or [1]))
        if logx:
            ax.set_xscale("log")
        else:
            ax.set_xticks(sorted({x for s in series.values() for x in s[0]}))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if len(series) > 1:
            ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    save_png(fig, out_png)


def plots(results: dict, out: Path) -> None:
    def pick(model: str, keys: list[str], x: str) -> tuple[list, list, list]:
        pts = [results[model]["points"][k] for k in keys if k in results[model]["points"]]
        return (
            [p[x] for p in pts],
            [p["rollout_episodes_per_s"] for p in pts],
            [p["iteration_s"] for p in pts],
        )

    swept = [m for m in results if len(results[m]["points"]) > 1] or list(results)
    workers = sorted({p["workers"] for r in results.values() for p in r["points"].values()})
    envs = sorted({p["env_actors"] for r in results.values() for p in r["points"].values()})
    curve_png(
        out.with_name(out.stem + "_workers.png"),
        "rollout workers (1 env actor)",
        "rollout workers",
        {m: pick(m, [f"w{w}-e1" for w in workers], "workers") for m in swept},
    )
    curve_png(
        out.with_name(out.stem + "_env_actors.png"),
        "env actors (1 rollout worker)",
        "env actors",
        {m: pick(m, [f"w1-e{e}" for e in envs], "env_actors") for m in swept},
    )
    models = sorted(results, key=lambda m: results[m]["n_params"])
    base = [results[m]["points"]["w1-e1"] for m in models]
    curve_png(
        out.with_name(out.stem + "_model.png"),
        "model size (1 worker, 1 env actor)",
        "parameters (log)",
        {
            "models": (
                [results[m]["n_params"] for m in models],
                [p["rollout_episodes_per_s"] for p in base],
                [p["iteration_s"] for p in base],
            )
        },
        logx=True,
        names=models,
    )


def main() -> None:
    from common.paths import set_build_env

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["tiny-lm", "smollm2-135m"])
    parser.add_argument(
        "--sweep-models",
        nargs="+",
        default=["tiny-lm"],
        help="models swept over workers and env actors; the others run 1 worker, 1 env actor",
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--env-actors", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--episodes-per-update", type=int, default=16)
    parser.add_argument("--iterations", type=int, default=1)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    exit_on_sigterm()
    set_build_env()
    points = [(1, 1)] + [(w, 1) for w in args.workers if w != 1]
    points += [(1, e) for e in args.env_actors if e != 1]
    results = {}
    with tempfile.TemporaryDirectory(prefix="veriray-scaling-") as tmp:
        for model in args.models:
            t0 = time.perf_counter()
            swept = points if model in args.sweep_models else [(1, 1)]
            results[model] = sweep(model, swept, args, Path(tmp))
            results[model]["wall_s"] = time.perf_counter() - t0
    write_json(
        args.out,
        "scaling",
        {"per_model": results},
        settings={
            "task": "GeneralPoints, 2 cards, one_op, viter 2 (feedback turns)",
            "algorithm": "turn-level PPO (value head), 1 epoch, on-policy",
            "episodes_per_update": args.episodes_per_update,
            "iterations_per_point": args.iterations,
            "points": points,
            "swept_models": args.sweep_models,
        },
    )
    plots(results, args.out)


if __name__ == "__main__":
    main()
