"""The study repeated over seeds: one run per seed, aggregated into one report.

Each seed's run is an ordinary run folder (its own report). ``aggregate_seeds`` reads their
report.json files and, per stage and suite, averages the change from the init; the error bar
is the standard error across seeds (std / sqrt(n), n >= 2), which includes the training noise
a single run's binomial error bar does not. It writes seeds.json, seeds.md, seeds_gains.png
and the overlaid curves of every seed (compare.png, via ``compare_runs``).
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

from evaluation import plots
from evaluation.report import compare_runs, load_report, verdict_lines

SEED_KEYS = ("seed", "sft.seed", "learner.seed", "rollout.seed")
"""Config fields one seed sets: dealing, SFT order, value-head init, sampling. The held-out
evaluation episodes (evaluation.seed) stay pinned, so every seed is scored on the same set."""


def seed_overrides(name: str, seed: int) -> list[str]:
    """Dotted overrides of one seed's run (its own name, so its own run folder)."""
    return [f"{key}={seed}" for key in SEED_KEYS] + [f"name={name}-seed{seed}"]


def _mean_sem(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    sem = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return mean, sem


def aggregate_gains(reports: list[dict[str, Any]], metric: str = "success") -> dict[str, Any]:
    """Per stage and suite: mean init, final and change over seeds; stderr across seeds.

    Only (stage, suite) pairs every seed measured are kept. Same shape as a report's
    ``gains`` (so the same verdict and figure code applies), plus ``per_seed`` deltas.
    """
    out: dict[str, Any] = {}
    for stage in reports[0]["gains"]:
        for suite in reports[0]["gains"][stage]:
            entries = [r["gains"].get(stage, {}).get(suite, {}).get(metric) for r in reports]
            if any(e is None for e in entries):
                continue
            delta, sem = _mean_sem([e["delta"] for e in entries])
            out.setdefault(stage, {})[suite] = {
                metric: {
                    "init": statistics.fmean(e["init"] for e in entries),
                    "final": statistics.fmean(e["final"] for e in entries),
                    "delta": delta,
                    "stderr": sem,
                    "final_train_gflops": statistics.fmean(
                        e["final_train_gflops"] for e in entries
                    ),
                    "per_seed": [e["delta"] for e in entries],
                }
            }
    return out


def aggregate_seeds(
    run_dirs: list[str | Path], out_dir: str | Path, name: str | None = None
) -> dict[str, Path]:
    """Write the across-seed summary of ``run_dirs`` into ``out_dir``; return the paths.
    ``name``: the experiment's name before the per-seed suffix (the title)."""
    if not run_dirs:
        raise ValueError("aggregate_seeds: no run folders given")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    reports = [load_report(d) for d in run_dirs]
    gains = aggregate_gains(reports)
    summary = {
        "runs": [str(d) for d in run_dirs],
        "seeds": len(reports),
        "gains": gains,
        "error_bars": "standard error across seeds (std / sqrt(n))",
    }
    (out / "seeds.json").write_text(json.dumps(summary, indent=2))
    figure = plots.gain_bars(
        gains, out / "seeds_gains.png", title=f"change from init, mean of {len(reports)} seeds"
    )
    compared = compare_runs(run_dirs, out)
    lines = [
        f"# {name or reports[0].get('name', 'run')}: {len(reports)} seeds",
        "",
        "Mean over seeds; ± is the standard error across seeds (std / sqrt(n)).",
        "",
        "## Verdict: change from the init",
        "",
        *verdict_lines(gains),
        "",
        "| stage | suite | init | final | change | per seed |",
        "|---|---|---|---|---|---|",
    ]
    for stage, by_suite in gains.items():
        for suite, by_metric in by_suite.items():
            g = by_metric["success"]
            seeds = ", ".join(f"{100 * d:+.1f}" for d in g["per_seed"])
            lines.append(
                f"| {stage} | {suite} | {100 * g['init']:.1f} | {100 * g['final']:.1f} | "
                f"{100 * g['delta']:+.1f} ± {100 * g['stderr']:.1f} | {seeds} |"
            )
    lines += ["", "Runs: " + ", ".join(f"`{d}`" for d in run_dirs), ""]
    if figure is not None:
        lines.append(f"![gains]({figure.name})")
    lines += [f"![curves]({compared['curves'].name})" if compared.get("curves") else "", ""]
    (out / "seeds.md").write_text("\n".join(lines))
    written = {"json": out / "seeds.json", "markdown": out / "seeds.md"}
    return written | ({"gains": figure} if figure is not None else {})
