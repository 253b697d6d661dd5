"""The study's figure: success vs training GFLOPs for both arms, over seeds.

One panel per suite (ID and OOD side by side). Per arm: a thin line per seed, and the mean
over seeds at each evaluation point with a shaded 95% interval across seeds (Student t; with
one seed, the Wilson interval of that seed's rate). Every arm's curve starts at the shared
init point. Values in percent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evaluation import plots
from evaluation.stats import mean_difference_ci, wilson_interval
from evaluation.study import arm_points, init_point, seeds_of

COLORS = {"rl": "tab:blue", "sft": "tab:orange"}
LABELS = {"rl": "RL arm", "sft": "SFT arm"}


def _rate(point: dict[str, Any], suite: str) -> tuple[float, int, int]:
    m = point["suites"][suite]
    return m["rate"], m["successes"], m["n"]


def arms_vs_compute(
    points: list[dict[str, Any]],
    path: Path,
    title: str = "",
    references: list[dict[str, Any]] | None = None,
) -> Path | None:
    """Write the figure (see the module docstring); None when no seed has both arms.
    ``references`` (policies without a language model, see report.load_references): a dashed
    grey line at each one's success on each suite."""
    seeds = seeds_of(points)
    if not seeds:
        return None
    init = init_point(points)
    first = arm_points(points, "rl", seeds[0])[-1]
    suites = list(first["suites"])
    fig, axes = plots.plt.subplots(1, len(suites), figsize=(4.4 * len(suites), 3.4), squeeze=False)
    for ax, suite in zip(axes[0], suites, strict=True):
        for arm in ("rl", "sft"):
            curves = []
            for seed in seeds:
                pts = ([init] if init is not None else []) + arm_points(points, arm, seed)
                pts = [p for p in pts if suite in p["suites"]]
                xs = [p["train_gflops"] for p in pts]
                ys = [100 * _rate(p, suite)[0] for p in pts]
                ax.plot(xs, ys, color=COLORS[arm], lw=0.7, alpha=0.45)
                curves.append(pts)
            depth = min(len(c) for c in curves)
            mean_x, mean_y, lo, hi = [], [], [], []
            for k in range(depth):
                at = [c[k] for c in curves]
                rates = [_rate(p, suite)[0] for p in at]
                mean_x.append(sum(p["train_gflops"] for p in at) / len(at))
                mean, ci = mean_difference_ci(rates)
                if ci is None:  # one seed: the binomial (Wilson) interval of its rate
                    _, k_succ, n = _rate(at[0], suite)
                    ci = list(wilson_interval(k_succ, n))
                mean_y.append(100 * mean)
                lo.append(100 * max(0.0, ci[0]))
                hi.append(100 * min(1.0, ci[1]))
            ax.plot(mean_x, mean_y, color=COLORS[arm], lw=2, marker="o", ms=3, label=LABELS[arm])
            ax.fill_between(mean_x, lo, hi, color=COLORS[arm], alpha=0.18, lw=0)
        for ref in references or []:
            if suite in ref["suites"]:
                label = ref.get("label") or ref["name"]
                rate = 100 * ref["suites"][suite]["rate"]
                ax.axhline(rate, color="tab:gray", ls="--", lw=1, label=label)
        ax.set_title(suite, fontsize=9)
        ax.set_xlabel("training GFLOPs")
        ax.set_ylabel("success (%)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    n = len(seeds)
    fig.suptitle(
        f"{title} ({n} seed{'s' if n > 1 else ''}: thin = each seed, bold = mean, "
        "band = 95% interval)",
        fontsize=9,
    )
    return plots.save_figure(fig, path)
