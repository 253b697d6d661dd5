"""Per-run reports and multi-run comparisons.

A run folder gets: report.json (every number: meta, the primary endpoint and the secondary
paired comparisons (evaluation/study.py), every curve point with all suite metrics, per-prompt
outcomes and compute, every VIter sweep, gains from the init), report.md (the verdict first,
then tables and the PNGs), and the figures: arms.png (both arms' success vs training GFLOPs
over seeds), report.png (suite success at the latest point), curves.png (metric vs training
GFLOPs per stage), gains.png (change from the init per suite), recognition.png (GP-VL) and
viter_sweep.png (when swept). ``compare_runs`` overlays several runs' curves and gains.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from evaluation import plots, study
from evaluation.metrics import headline
from evaluation.study_plots import arms_vs_compute

REPORT_JSON = "report.json"
REFERENCE_DIR_PREFIX = "baseline_"
"""Reference policies (e.g. `veriray baseline rllib`) write <run_dir>/baseline_<name>/result.json:
{"name", "label", "suites": {suite: {"rate", "successes", "n", "wilson95"}}, ...}."""
GAIN_METRICS = ("success", "step_accuracy", "recognition")


def stage_series(points: list[dict[str, Any]], prefix: str = "") -> plots.Series:
    """Points grouped into one curve per stage, each starting from where its stage began: the
    latest "init" point when there is one (the RL and SFT arms both grow out of the SFT
    warm start, whichever ran first), else the previous stage's last point."""
    series: plots.Series = {}
    previous: dict[str, Any] | None = None
    init: dict[str, Any] | None = None
    for p in points:
        label = f"{prefix}{p['stage']}"
        if label not in series:
            start = init if init is not None and p["stage"] != "init" else previous
            series[label] = [start] if start is not None else []
        series[label].append(p)
        previous = p
        if p["stage"] == "init":
            init = p
    return series


def verdict_lines(gains: dict[str, dict[str, Any]], metric: str = "success") -> list[str]:
    """One sentence per (stage, suite): did the stage move ``metric`` up or down from the
    init, by how much, and is the change larger than twice its standard error?"""
    lines = []
    for stage, by_suite in gains.items():
        for suite, by_metric in by_suite.items():
            g = by_metric.get(metric)
            if g is None:
                continue
            delta, se = 100 * g["delta"], 100 * g["stderr"]
            moved = "moved" if delta else "left"
            direction = "up" if delta > 0 else "down" if delta < 0 else "unchanged"
            clear = "beyond 2 s.e." if abs(delta) > 2 * se else "within 2 s.e. (not significant)"
            lines.append(
                f"- **{stage}** {moved} **{suite}** {metric} {direction}: {100 * g['init']:.1f}% "
                f"-> {100 * g['final']:.1f}% ({delta:+.1f} ± {se:.1f} points, {clear}; "
                f"at {g['final_train_gflops']:.4g} training GFLOPs)"
            )
    return lines


def gains_from_init(points: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per stage (other than the init): last point minus the init point, per suite and metric.

    The init is the first point of stage "init" (else the first point). The error bar of a
    difference of two independent estimates is sqrt(se_a^2 + se_b^2).
    """
    if not points:
        return {}
    init = next((p for p in points if p["stage"] == "init"), points[0])
    seeds = {p.get("seed") for p in points if p.get("seed") is not None}
    last: dict[str, dict[str, Any]] = {}
    for p in points:
        if p is not init and p["stage"] not in ("init", "base"):  # base precedes the init
            label = p["stage"] if len(seeds) <= 1 else f"{p['stage']} (seed {p.get('seed')})"
            last[label] = p
    out: dict[str, dict[str, Any]] = {}
    for stage, p in last.items():
        by_suite: dict[str, Any] = {}
        for suite, m in p["suites"].items():
            if suite not in init["suites"]:
                continue
            entry = {}
            for metric in GAIN_METRICS:
                a, b = headline(init["suites"][suite], metric), headline(m, metric)
                if a is not None and b is not None:
                    entry[metric] = {
                        "init": a[0],
                        "final": b[0],
                        "delta": b[0] - a[0],
                        "stderr": math.sqrt(a[1] ** 2 + b[1] ** 2),
                        "final_step": p["step"],
                        "final_train_gflops": p["train_gflops"],
                    }
            by_suite[suite] = entry
        out[stage] = by_suite
    return out


def load_references(run_dir: str | Path) -> list[dict[str, Any]]:
    """The reference policies' results in a run folder (name order), each without its
    per-prompt outcomes; [] when there are none."""
    out = []
    for path in sorted(Path(run_dir).glob(f"{REFERENCE_DIR_PREFIX}*/result.json")):
        ref = json.loads(path.read_text())
        suites = {
            name: {k: v for k, v in m.items() if k != "outcomes"}
            for name, m in ref.get("suites", {}).items()
        }
        out.append(
            {"name": ref.get("name", path.parent.name), "label": ref.get("label", "")}
            | {"suites": suites, "seeds": [s.get("seed") for s in ref.get("per_seed", [])]}
        )
    return out


def build_report(
    meta: dict[str, Any],
    points: list[dict[str, Any]],
    sweeps: list[dict[str, Any]] | None = None,
    timings: dict[str, float] | None = None,
    references: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Everything a run measured, as one JSON-able dict. ``suites`` = the latest point's."""
    if not points:
        raise ValueError("build_report needs at least one evaluation point")
    all_timings = dict(timings or {})
    for p in points:
        for key, seconds in p.get("timings", {}).items():
            all_timings[key] = round(all_timings.get(key, 0.0) + seconds, 3)
    design = meta.get("study") or {"primary_suite": "ood_rule", "primary_metric": "success"}
    comparisons = study.secondary_comparisons(points)
    return meta | {
        "primary_endpoint": study.primary_endpoint(points, design),
        "comparisons": comparisons,
        "comparisons_across_seeds": study.across_seeds(comparisons),
        "distinct_prompts": {
            name: m.get("distinct_prompts") for name, m in points[-1]["suites"].items()
        },
        "prompts_in_suite": {
            name: m.get("prompts_in_suite") for name, m in points[-1]["suites"].items()
        },
        "suites": points[-1]["suites"],
        "points": points,
        "gains": gains_from_init(points),
        "viter_sweeps": sweeps or [],
        "timings": all_timings,
        "references": references or [],
    }


def write_report(run_dir: str | Path, report: dict[str, Any]) -> dict[str, Path]:
    """Write report.json, the figures and report.md into ``run_dir``; return the paths."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / REPORT_JSON).write_text(json.dumps(report, indent=2))
    title = f"{report.get('model', '?')} on {report.get('task', '?')}"
    series = stage_series(report["points"])
    figures = {
        "arms": arms_vs_compute(
            report["points"], run_dir / "arms.png", title, report.get("references", [])
        ),
        "report": plots.suite_bars(report["points"][-1], title, run_dir / "report.png"),
        "curves": plots.curves(series, run_dir / "curves.png", title),
        "gains": plots.gain_bars(report["gains"], run_dir / "gains.png"),
        "recognition": plots.recognition_vs_success(series, run_dir / "recognition.png"),
        "viter_sweep": plots.viter_sweep(report["viter_sweeps"], run_dir / "viter_sweep.png"),
    }
    written = {k: v for k, v in figures.items() if v is not None}
    (run_dir / "report.md").write_text(render_markdown(report, written))
    return written | {"json": run_dir / REPORT_JSON, "markdown": run_dir / "report.md"}


def _pct(value: float, err: float) -> str:
    return f"{100 * value:.1f} ± {100 * err:.1f}"


def _wilson(rate: dict[str, Any] | None) -> str:
    """'75.9% [65.7, 83.8]' from a Rate dict; '-' when the metric is absent."""
    if not rate:
        return "-"
    if "wilson95" not in rate:  # reports written before intervals were stored
        return f"{100 * rate['rate']:.1f}% ± {100 * rate['stderr']:.1f}"
    low, high = rate["wilson95"]
    return f"{100 * rate['rate']:.1f}% [{100 * low:.1f}, {100 * high:.1f}]"


def _seed_note(point: dict[str, Any]) -> str:
    return "" if point.get("seed") is None else f" (seed {point['seed']})"


def render_markdown(report: dict[str, Any], figures: dict[str, Path]) -> str:
    latest = report["points"][-1]
    lines = [
        f"# {report.get('name', 'evaluation')}",
        "",
        f"Model `{report.get('model')}`, task `{report.get('task')}`, "
        f"at most {report.get('episodes_per_suite')} distinct held-out prompts per suite (seed "
        f"{report.get('seed')}), sampling {json.dumps(report.get('sampling', {}))}.",
        "Each checkpoint's rates carry their Wilson 95% interval in brackets; comparisons "
        "are paired on the same prompts (exact McNemar per seed, Student-t interval across "
        "seeds). Training compute: 6ND over the tokens the learner computes (a prefix shared "
        "by rows of a micro-batch counts once) + 2ND for its forward-only passes + 2ND for the "
        "rollout tokens.",
        "",
    ]
    study_lines = _study_lines(report)
    lines += study_lines
    # The unpaired view (difference of two independent s.e.) only where no paired one exists.
    verdict = [] if study_lines else verdict_lines(report["gains"])
    if verdict:
        lines += ["## Each stage against the init (last point, binomial s.e.)", "", *verdict, ""]
    lines += [
        f"## Latest point: stage `{latest['stage']}`{_seed_note(latest)}, step "
        f"{latest['step']}, {latest['train_gflops']:.4g} training GFLOPs",
        "",
        "| suite | success [Wilson 95%] | first try [Wilson 95%] | mean turns | per-step acc | "
        "recognition | translation |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, m in latest["suites"].items():
        step = headline(m, "step_accuracy")
        lines.append(
            f"| {name} | {_wilson(m)} | {_wilson(m['first_try'])} | {m['mean_turns']:.2f} | "
            f"{_pct(*step) if step else '-'} | {_wilson(m.get('recognition'))} | "
            f"{_wilson(m.get('translation'))} |"
        )
    faces = {n: m["by_face_card"] for n, m in latest["suites"].items() if "by_face_card" in m}
    if faces:
        lines += [
            "",
            "Success by face card in the hand (n in brackets):",
            "",
            "| suite | J | Q | K | no face card |",
            "|---|---|---|---|---|",
        ]
        for name, by in faces.items():
            cells = [
                f"{_pct(by[k]['rate'], by[k]['stderr'])} ({by[k]['n']})" if by[k]["n"] else "-"
                for k in ("J", "Q", "K", "none")
            ]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if report["gains"] and not study_lines:
        lines += [
            "",
            "## Change from the init (percentage points)",
            "",
            "| stage | suite | metric | init | final | change |",
            "|---|---|---|---|---|---|",
        ]
        for stage, by_suite in report["gains"].items():
            for suite, by_metric in by_suite.items():
                for metric, g in by_metric.items():
                    lines.append(
                        f"| {stage} | {suite} | {metric} | {100 * g['init']:.1f} | "
                        f"{100 * g['final']:.1f} | {100 * g['delta']:+.1f} ± "
                        f"{100 * g['stderr']:.1f} |"
                    )
    suites = list(latest["suites"])
    lines += [
        "",
        "## Every evaluation point (success; first try) [Wilson 95%]",
        "",
        "| stage | seed | step | training GFLOPs | " + " | ".join(suites) + " |",
        "|---|---|---|---|" + "---|" * len(suites),
    ]
    for p in report["points"]:
        cells = [
            f"{_wilson(p['suites'][s])}; {_wilson(p['suites'][s].get('first_try'))}"
            if s in p["suites"]
            else "-"
            for s in suites
        ]
        seed = p.get("seed")
        lines.append(
            f"| {p['stage']} | {'-' if seed is None else seed} | {p['step']} | "
            f"{p['train_gflops']:.4g} | " + " | ".join(cells) + " |"
        )
    lines += _reference_lines(report.get("references", []), suites)
    for sweep in report["viter_sweeps"]:
        lines += [
            "",
            f"## VIter sweep at {sweep['stage']} step {sweep['step']} (success %)",
            "",
            "| suite | " + " | ".join(f"VIter {b}" for b in sweep["budgets"]) + " |",
            "|---|" + "---|" * len(sweep["budgets"]),
        ]
        for suite, by_budget in sweep["suites"].items():
            lines.append(
                f"| {suite} | "
                + " | ".join(
                    _pct(by_budget[str(b)]["rate"], by_budget[str(b)]["stderr"])
                    for b in sweep["budgets"]
                )
                + " |"
            )
    lines += ["", "## Figures", ""]
    lines += [f"![{name}]({path.name})" for name, path in figures.items()]
    lines += ["", "Every number above (and more: tokens, compute, timings) is in report.json.", ""]
    return "\n".join(lines)


def _reference_lines(references: list[dict[str, Any]], suites: list[str]) -> list[str]:
    """A table row per reference policy (no language model), on the same suites."""
    if not references:
        return []
    lines = [
        "",
        "## Reference policies (success, mean over seeds [Wilson 95% of the pooled episodes])",
        "",
        "Scored by the same verifier on the same held-out prompts, played greedily.",
        "",
        "| policy | seeds | " + " | ".join(suites) + " |",
        "|---|---|" + "---|" * len(suites),
    ]
    for ref in references:
        cells = [_wilson(ref["suites"].get(s)) for s in suites]
        seeds = ", ".join(str(s) for s in ref.get("seeds", [])) or "-"
        label = ref.get("label") or ref["name"]
        lines.append(f"| {label} | {seeds} | " + " | ".join(cells) + " |")
    return lines


def _suite_size(suite: str, played: int | None, in_suite: int | None) -> str:
    """'ood_rule 218', or 'in_distribution 400 (a seeded sample of 1,234)' when capped."""
    if in_suite is not None and played is not None and in_suite > played:
        return f"{suite} {played} (a seeded sample of {in_suite:,})"
    return f"{suite} {played}"


def _study_lines(report: dict[str, Any]) -> list[str]:
    """The verdict (primary endpoint first), the paired table per seed, and the secondary
    comparisons averaged over seeds."""
    endpoint = report.get("primary_endpoint") or {}
    if not endpoint.get("per_seed"):
        return []
    sizes = ", ".join(
        _suite_size(k, v, report.get("prompts_in_suite", {}).get(k))
        for k, v in report.get("distinct_prompts", {}).items()
    )
    lines = [
        "## Verdict",
        "",
        *study.verdict_text(endpoint),
        f"- Distinct prompts per suite, each played once at every point: {sizes}.",
        "",
        "## Paired comparisons per seed (last evaluation point, same prompts)",
        "",
        "b = prompts only the first solved, c = only the second; p = exact McNemar.",
        "",
        "| seed | comparison | suite | metric | first | second | difference | b | c | p | n |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["comparisons"]:
        lines.append(
            f"| {r['seed']} | {r['comparison']} | {r['suite']} | {r['metric']} | "
            f"{100 * r['rate_a']:.1f}% | {100 * r['rate_b']:.1f}% | "
            f"{100 * r['difference']:+.1f} | {r['b']} | {r['c']} | {r['p_value']:.3g} | {r['n']} |"
        )
    lines += [
        "",
        "## Secondary results across seeds (mean difference, Student-t 95% interval)",
        "",
        "| comparison | suite | metric | mean difference | 95% CI | per seed |",
        "|---|---|---|---|---|---|",
    ]
    for r in report["comparisons_across_seeds"]:
        ci = r["ci95"]
        interval = f"[{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]" if ci else "- (one seed)"
        seeds = ", ".join(f"{100 * d:+.1f}" for d in r["per_seed"])
        lines.append(
            f"| {r['comparison']} | {r['suite']} | {r['metric']} | "
            f"{100 * r['difference']:+.1f} | {interval} | {seeds} |"
        )
    return [*lines, ""]


def load_report(run_dir: str | Path) -> dict[str, Any]:
    return json.loads((Path(run_dir) / REPORT_JSON).read_text())


def compare_runs(run_dirs: list[str | Path], out_dir: str | Path) -> dict[str, Path]:
    """Overlay several runs' curves and gains on one figure each (compare.png, gains.png)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    series: plots.Series = {}
    gains: dict[str, dict[str, Any]] = {}
    summary: dict[str, Any] = {}
    for run_dir in run_dirs:
        report = load_report(run_dir)
        name = report.get("name") or Path(run_dir).name
        if name in summary:  # two runs with one name: keep both apart
            name = f"{name} ({Path(run_dir)})"
        series |= stage_series(report["points"], prefix=f"{name}/")
        gains |= {f"{name}/{stage}": g for stage, g in report["gains"].items()}
        summary[name] = {
            "run_dir": str(run_dir),
            "suites": report["suites"],
            "gains": report["gains"],
            "points": len(report["points"]),
        }
    figures = {
        "curves": plots.curves(series, out / "compare.png", "runs compared"),
        "gains": plots.gain_bars(gains, out / "compare_gains.png"),
        "recognition": plots.recognition_vs_success(series, out / "compare_recognition.png"),
    }
    written = {k: v for k, v in figures.items() if v is not None}
    (out / "compare.json").write_text(json.dumps(summary, indent=2))
    lines = ["# Runs compared", "", "| run | suite | success | ± |", "|---|---|---|---|"]
    for name, s in summary.items():
        for suite, m in s["suites"].items():
            lines.append(f"| {name} | {suite} | {100 * m['rate']:.1f}% | {100 * m['stderr']:.1f} |")
    lines += [""] + [f"![{k}]({p.name})" for k, p in written.items()] + [""]
    (out / "compare.md").write_text("\n".join(lines))
    return written | {"json": out / "compare.json", "markdown": out / "compare.md"}
