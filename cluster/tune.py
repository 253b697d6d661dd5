"""Tuning on the validation split, never on the evaluation suites: `veriray tune`.

The study's arms must be fair: each arm's learning rate, and the warm start's length, are
chosen on held-out training-rule hands that no evaluation suite holds (the task's
``validation`` suite), and the choice is written down before the study runs. A sweep is one
run per value of one config field, each an ordinary run (its own folder and report) that
evaluates only the validation suite:

- ``rl.lr``: the RL arm alone from a shared warm start (``--from RUN``), scored at its last
  update;
- ``sft.arm_lr``: the SFT arm alone, ``--sft-steps`` steps from the shared warm start, scored
  at its last step;
- ``sft.examples`` (the warm start's length): one warm start per value, no arms, scored at the
  init point.

``write_sweep`` tabulates the runs into tune.json, tune.md and tune.png in the sweep folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cluster.config import ExperimentConfig, load_experiment
from common.typed_config import ConfigError

VALIDATION_SUITE = "validation"
SWEEPABLE = ("rl.lr", "sft.arm_lr", "sft.examples")
SCORED_STAGE = {"rl.lr": "rl", "sft.arm_lr": "sft", "sft.examples": "init"}


def sweep_overrides(key: str, value: str, warm_from: str | None, sft_steps: int) -> list[str]:
    """The dotted overrides of one sweep run (validation suite only, one seed, one arm)."""
    if key not in SWEEPABLE:
        raise ConfigError(f"tune: {key} is not one of {list(SWEEPABLE)}")
    common = [
        f"{key}={value}",
        f"evaluation.suites=[{VALIDATION_SUITE}]",
        f"study.primary_suite={VALIDATION_SUITE}",
        "study.seeds=1",
        "sft.enabled=true",
    ]
    if key != "sft.examples":
        if not warm_from:
            raise ConfigError(f"tune: --from RUN (a finished warm start) is needed to sweep {key}")
        common.append(f"sft.warm_start_from={warm_from}")
    if key == "rl.lr":
        return [*common, "rl.enabled=true", "sft.branch_compute=steps", "sft.branch_steps=0"]
    if key == "sft.arm_lr":
        if sft_steps < 1:
            raise ConfigError("tune: --sft-steps must be >= 1 to sweep sft.arm_lr")
        return [
            *common,
            "rl.enabled=false",
            "sft.branch_compute=steps",
            f"sft.branch_steps={sft_steps}",
            f"evaluation.every_k_updates={sft_steps}",
        ]
    return [*common, "rl.enabled=false", "sft.branch_compute=steps", "sft.branch_steps=0"]


def sweep_configs(
    config: str | Path,
    overrides: list[str],
    key: str,
    values: list[str],
    warm_from: str | None,
    sft_steps: int,
) -> list[ExperimentConfig]:
    """One checked config per value, named ``<name>-tune-<key>-<value>``."""
    base = load_experiment(config, overrides)
    out = []
    for value in values:
        name = f"{base.name}-tune-{key.replace('.', '_')}-{value}"
        extra = [*sweep_overrides(key, value, warm_from, sft_steps), f"name={name}"]
        out.append(load_experiment(config, [*overrides, *extra]))
    return out


def score(run_dir: Path, key: str) -> dict[str, Any]:
    """Validation success of one sweep run at the point its key is scored at."""
    report = json.loads((run_dir / "report.json").read_text())
    stage = SCORED_STAGE[key]
    points = [p for p in report["points"] if p["stage"] == stage]
    if not points:
        raise ValueError(f"{run_dir}: no {stage!r} point to score {key} with")
    m = points[-1]["suites"][VALIDATION_SUITE]
    return {
        "run_dir": str(run_dir),
        "stage": stage,
        "step": points[-1]["step"],
        "success": m["rate"],
        "n": m["n"],
        "wilson95": m.get("wilson95"),
        "first_try": m["first_try"]["rate"],
    }


def write_sweep(out_dir: Path, key: str, values: list[str], run_dirs: list[Path]) -> Path:
    """tune.json, tune.md and tune.png of a finished sweep; returns the markdown path."""
    from evaluation import plots

    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [{"value": v} | score(d, key) for v, d in zip(values, run_dirs, strict=True)]
    best = max(rows, key=lambda r: r["success"])
    (out_dir / "tune.json").write_text(
        json.dumps({"key": key, "suite": VALIDATION_SUITE, "runs": rows, "best": best}, indent=2)
    )
    fig, ax = plots.plt.subplots(figsize=(4.5, 3.2))
    ax.plot(range(len(rows)), [100 * r["success"] for r in rows], marker="o")
    ax.set_xticks(range(len(rows)), [r["value"] for r in rows])
    ax.set_xlabel(key)
    ax.set_ylabel(f"{VALIDATION_SUITE} success (%)")
    ax.set_ylim(0, 100)
    plots.save_figure(fig, out_dir / "tune.png")
    lines = [
        f"# Sweep of `{key}` on the validation suite",
        "",
        "Each value is one run scored on held-out training-rule prompts that no evaluation "
        "suite holds (greedy, each distinct prompt once).",
        "",
        "| value | success | 95% (Wilson) | first try | n | point |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        w = r["wilson95"]
        interval = f"[{100 * w[0]:.1f}, {100 * w[1]:.1f}]" if w else "-"
        lines.append(
            f"| {r['value']} | {100 * r['success']:.1f}% | {interval} | "
            f"{100 * r['first_try']:.1f}% | {r['n']} | {r['stage']} {r['step']} |"
        )
    lines += ["", f"Best: `{key}={best['value']}`.", "", "![sweep](tune.png)", ""]
    (out_dir / "tune.md").write_text("\n".join(lines))
    return out_dir / "tune.md"
