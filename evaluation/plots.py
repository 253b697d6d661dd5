"""Paper-style figures as matplotlib PNGs (headless Agg backend).

Every function takes plain report data (the dicts of ``evaluation.report``), writes one PNG and
returns its path, or returns None when the report holds nothing to draw (e.g. recognition on a
text task), so a report never embeds an empty figure. Values are plotted in percent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from evaluation.metrics import headline

Series = dict[str, list[dict[str, Any]]]
"""Curve label -> its points in order (each point: train_gflops, suites)."""

CURVE_METRICS = ("success", "step_accuracy")
DPI = 110


def save_figure(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def suite_bars(point: dict[str, Any], title: str, path: Path) -> Path:
    """Success per suite of one point, with binomial error bars."""
    names = list(point["suites"])
    values = [100 * point["suites"][n]["rate"] for n in names]
    errs = [100 * point["suites"][n]["stderr"] for n in names]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    colors = [plt.cm.tab10(i) for i in range(len(names))]
    ax.bar(names, values, yerr=errs, capsize=6, color=colors)
    ax.set_ylabel("success rate (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=9)
    return save_figure(fig, path)


def curves(series: Series, path: Path, title: str = "") -> Path | None:
    """Metric vs training GFLOPs: one panel per (metric, suite), one line per series."""
    suites: list[str] = []
    for points in series.values():
        for p in points:
            suites += [s for s in p["suites"] if s not in suites]
    panels = [
        (metric, suite)
        for metric in CURVE_METRICS
        for suite in suites
        if any(
            suite in p["suites"] and headline(p["suites"][suite], metric) is not None
            for points in series.values()
            for p in points
        )
    ]
    if not panels:
        return None
    cols = len(suites)
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, (metric, suite) in zip(axes.flat, panels):
        for i, (label, points) in enumerate(series.items()):
            xs, ys, es = [], [], []
            for p in points:
                value = headline(p["suites"][suite], metric) if suite in p["suites"] else None
                if value is not None:
                    xs.append(p["train_gflops"])
                    ys.append(100 * value[0])
                    es.append(100 * value[1])
            if xs:
                # The init is the one point every later curve starts from: a star on top.
                init = label.endswith("init")
                ax.errorbar(
                    xs,
                    ys,
                    yerr=es,
                    marker="*" if init else "o",
                    markersize=12 if init else 6,
                    zorder=5 if init else 2,
                    capsize=3,
                    label=label,
                    color="black" if init else plt.cm.tab10(i % 10),
                )
        ax.set_title(f"{suite}: {metric.replace('_', ' ')}", fontsize=9)
        ax.set_xlabel("training GFLOPs (6ND + 2ND)")
        ax.set_ylabel(f"{metric.replace('_', ' ')} (%)")
        ax.set_ylim(-2, 102)
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


def gain_bars(
    gains: dict[str, dict[str, Any]], path: Path, metric: str = "success", title: str = ""
) -> Path | None:
    """Change from the init per suite (percentage points), one bar per series, with the
    combined error bar sqrt(se_init^2 + se_final^2)."""
    labels = [lb for lb, by_suite in gains.items() if any(metric in g for g in by_suite.values())]
    if not labels:
        return None
    suites: list[str] = []
    for lb in labels:
        suites += [s for s in gains[lb] if s not in suites and metric in gains[lb][s]]
    width = 0.8 / len(labels)
    fig, ax = plt.subplots(figsize=(1.2 + 1.6 * len(suites), 3.6))
    for i, lb in enumerate(labels):
        xs, ds, es = [], [], []
        for j, s in enumerate(suites):
            g = gains[lb].get(s, {}).get(metric)
            if g is not None:
                xs.append(j + (i - (len(labels) - 1) / 2) * width)
                ds.append(100 * g["delta"])
                es.append(100 * g["stderr"])
        ax.bar(xs, ds, width, yerr=es, capsize=4, label=lb, color=plt.cm.tab10(i % 10))
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(suites)), suites)
    ax.set_ylabel(f"{metric.replace('_', ' ')} change from init (pts)")
    ax.legend(fontsize=7)
    ax.set_title(title or f"gain / loss vs init ({metric.replace('_', ' ')})", fontsize=9)
    return save_figure(fig, path)


def recognition_vs_success(series: Series, path: Path) -> Path | None:
    """GP-VL: card-recognition accuracy against success, one marker per (point, suite)."""
    markers = "osD^v"
    drawn = False
    fig, ax = plt.subplots(figsize=(4.6, 3.8))
    for i, (label, points) in enumerate(series.items()):
        suites = sorted({s for p in points for s, m in p["suites"].items() if "recognition" in m})
        for k, suite in enumerate(suites):
            pts = [
                p["suites"][suite] for p in points if "recognition" in p["suites"].get(suite, {})
            ]
            xs = [100 * m["recognition"]["rate"] for m in pts]
            ys = [100 * m["rate"] for m in pts]
            ax.errorbar(
                xs,
                ys,
                xerr=[100 * m["recognition"]["stderr"] for m in pts],
                yerr=[100 * m["stderr"] for m in pts],
                fmt=markers[k % len(markers)],
                linestyle="-",
                alpha=0.8,
                capsize=2,
                color=plt.cm.tab10(i % 10),
                label=f"{label} {suite}",
            )
            drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xlabel("card recognition (%)")
    ax.set_ylabel("success (%)")
    ax.set_xlim(-2, 102)
    ax.set_ylim(-2, 102)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("recognition vs success", fontsize=9)
    return save_figure(fig, path)


def viter_sweep(sweeps: list[dict[str, Any]], path: Path, metric: str = "success") -> Path | None:
    """Metric vs verification budget, one line per (sweep, suite)."""
    if not sweeps:
        return None
    fig, ax = plt.subplots(figsize=(4.8, 3.6))
    line = 0
    for sweep in sweeps:
        for suite, by_budget in sweep["suites"].items():
            budgets = sorted(by_budget, key=int)
            values = [headline(by_budget[b], metric) for b in budgets]
            if any(v is None for v in values):
                continue
            ax.errorbar(
                [int(b) for b in budgets],
                [100 * v[0] for v in values],
                yerr=[100 * v[1] for v in values],
                marker="o",
                capsize=3,
                color=plt.cm.tab10(line % 10),
                label=f"{sweep['stage']}@{sweep['step']} {suite}",
            )
            line += 1
    if not line:
        plt.close(fig)
        return None
    ax.set_xlabel("verification iterations (VIter)")
    ax.set_ylabel(f"{metric.replace('_', ' ')} (%)")
    ax.set_ylim(-2, 102)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("verification-iteration sweep", fontsize=9)
    return save_figure(fig, path)
