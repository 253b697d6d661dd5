"""The study's verdict: the primary endpoint first, then the secondary comparisons.

Inputs are the run's evaluation points (evaluation/evaluator.py): one shared ``init`` point
and, per training seed, the RL arm's points (stage ``rl``) and the SFT arm's points (stage
``sft``), the SFT arm evaluated where its compute reached each RL point. Every point scored the
same prompts, each with a stable id, so every comparison is paired.

- Primary endpoint (fixed in the config before the run, ``study.*``): the RL arm's metric minus
  the SFT arm's on the primary suite, at matched training compute, at the last evaluation
  point. Per seed: the paired difference and an exact McNemar test with its discordant counts.
  Across seeds: the mean difference and its Student-t 95% interval (n >= 2 seeds).
- Secondary: each arm against the init (paired, per seed), every suite, first-try success.

Everything here is a pure function of the points (no Ray, no files), tested alone.
"""

from __future__ import annotations

from typing import Any

from evaluation.stats import mean_difference_ci, paired_comparison

ARMS = ("rl", "sft")
OUTCOME_METRICS = {"success": "success", "first_try": "first_try"}


def outcomes(point: dict[str, Any], suite: str, metric: str = "success") -> dict[str, bool]:
    """Prompt id -> outcome of ``metric`` on ``suite`` at ``point`` (the paired data)."""
    record = point["suites"][suite].get("outcomes")
    if record is None:
        raise ValueError(
            f"point {point['stage']} step {point['step']}: suite {suite!r} holds no per-prompt "
            "outcomes (evaluated before outcomes were recorded); re-run its evaluation"
        )
    key = OUTCOME_METRICS.get(metric)
    if key is None:
        raise ValueError(f"metric {metric!r} has no per-prompt outcomes; use success/first_try")
    ids = record["ids"]
    if len(set(ids)) != len(ids):
        # A repeated prompt would silently collapse in the pairing: refuse it instead.
        raise ValueError(
            f"point {point['stage']} step {point['step']}: suite {suite!r} "
            "lists a prompt id twice; its outcomes cannot be paired"
        )
    return {pid: bool(v) for pid, v in zip(ids, record[key], strict=True)}


def arm_points(points: list[dict[str, Any]], stage: str, seed: int | None) -> list[dict[str, Any]]:
    """One arm's points of one training seed, in training order."""
    return [p for p in points if p["stage"] == stage and p.get("seed") == seed]


def has_outcomes(point: dict[str, Any]) -> bool:
    return all("outcomes" in m for m in point["suites"].values())


def seeds_of(points: list[dict[str, Any]]) -> list[int | None]:
    """Training seeds that have points of both arms, in order of first appearance (points
    recorded without per-prompt outcomes, by older versions, cannot be paired: left out)."""
    points = [p for p in points if has_outcomes(p)]
    seen: list[int | None] = []
    for p in points:
        if p["stage"] in ARMS and p.get("seed") not in seen:
            seen.append(p.get("seed"))
    return [s for s in seen if all(arm_points(points, a, s) for a in ARMS)]


def init_point(points: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((p for p in points if p["stage"] == "init" and has_outcomes(p)), None)


def _comparison(a: dict[str, Any], b: dict[str, Any], suite: str, metric: str) -> dict[str, Any]:
    """``a`` minus ``b`` on one suite, paired by prompt, with where both points stand."""
    out = paired_comparison(outcomes(a, suite, metric), outcomes(b, suite, metric))
    return out | {
        "first": {"stage": a["stage"], "step": a["step"], "train_gflops": a["train_gflops"]},
        "second": {"stage": b["stage"], "step": b["step"], "train_gflops": b["train_gflops"]},
    }


def primary_endpoint(points: list[dict[str, Any]], study: dict[str, Any]) -> dict[str, Any]:
    """The primary endpoint (see the module docstring) from the run's points.

    Returns ``difference`` (mean over seeds, as a fraction), ``ci95`` ([lo, hi] across seeds;
    None with one seed), ``seeds`` (how many) and ``per_seed`` (each seed's paired comparison:
    n, both rates, difference, discordant counts b and c, McNemar p, and the points compared).
    """
    suite, metric = study["primary_suite"], study["primary_metric"]
    per_seed = []
    for seed in seeds_of(points):
        rl, sft = arm_points(points, "rl", seed)[-1], arm_points(points, "sft", seed)[-1]
        per_seed.append({"seed": seed} | _comparison(rl, sft, suite, metric))
    if not per_seed:
        return {"suite": suite, "metric": metric, "seeds": 0, "per_seed": [], "difference": None}
    mean, ci = mean_difference_ci([s["difference"] for s in per_seed])
    return {
        "comparison": study.get("primary_comparison", "rl_minus_sft"),
        "suite": suite,
        "metric": metric,
        "at": "last evaluation point, matched training compute",
        "difference": mean,
        "ci95": ci,
        "seeds": len(per_seed),
        "per_seed": per_seed,
    }


def secondary_comparisons(
    points: list[dict[str, Any]], metrics: tuple[str, ...] = ("success", "first_try")
) -> list[dict[str, Any]]:
    """Per seed, suite and metric at the last point: RL vs SFT, RL vs init, SFT vs init."""
    init = init_point(points)
    out = []
    for seed in seeds_of(points):
        last = {a: arm_points(points, a, seed)[-1] for a in ARMS}
        pairs = [("rl", "sft", last["rl"], last["sft"])]
        if init is not None:
            pairs += [(a, "init", last[a], init) for a in ARMS]
        for name_a, name_b, a, b in pairs:
            for suite in a["suites"]:
                if suite not in b["suites"]:
                    continue
                for metric in metrics:
                    cmp = _comparison(a, b, suite, metric)
                    out.append(
                        {"seed": seed, "comparison": f"{name_a}_vs_{name_b}", "suite": suite}
                        | {"metric": metric}
                        | cmp
                    )
    return out


def across_seeds(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Secondary comparisons averaged over seeds: mean difference and its 95% interval."""
    groups: dict[tuple[str, str, str], list[float]] = {}
    for r in rows:
        groups.setdefault((r["comparison"], r["suite"], r["metric"]), []).append(r["difference"])
    out = []
    for (comparison, suite, metric), diffs in groups.items():
        mean, ci = mean_difference_ci(diffs)
        out.append(
            {"comparison": comparison, "suite": suite, "metric": metric}
            | {"difference": mean, "ci95": ci, "seeds": len(diffs), "per_seed": diffs}
        )
    return out


def verdict_text(endpoint: dict[str, Any]) -> list[str]:
    """The primary endpoint in words: value, 95% interval across seeds, each seed's McNemar p,
    and what it says (an interval that excludes 0 decides the direction)."""
    if not endpoint.get("per_seed"):
        return ["- The primary endpoint could not be computed: no seed has points of both arms."]
    d = 100 * endpoint["difference"]
    suite, metric = endpoint["suite"], endpoint["metric"]
    ci = endpoint["ci95"]
    seeds = ", ".join(
        f"seed {s['seed']}: {100 * s['difference']:+.1f} (b={s['b']}, c={s['c']}, "
        f"McNemar p={s['p_value']:.3g}, n={s['n']})"
        for s in endpoint["per_seed"]
    )
    if ci is None:
        interval = "no interval across seeds (one seed)"
        decided = "One seed cannot settle it; run more seeds (study.seeds)."
    else:
        lo, hi = 100 * ci[0], 100 * ci[1]
        interval = f"95% CI across {endpoint['seeds']} seeds [{lo:+.1f}, {hi:+.1f}]"
        if ci[0] > 0:
            decided = "RL beat SFT here: the interval excludes 0."
        elif ci[1] < 0:
            decided = "SFT beat RL here: the interval excludes 0."
        else:
            decided = "Not settled: the interval includes 0."
    return [
        f"- **Primary endpoint** ({metric} on `{suite}`, RL arm minus SFT arm at matched "
        f"training compute, last evaluation point): **{d:+.1f} points**, {interval}. {decided}",
        f"- Per seed (paired on the same prompts): {seeds}.",
    ]
