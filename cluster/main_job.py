"""The main job as it stands: evaluate the policy on in-distribution and OOD-rule suites.

Stages (each timed): start Ray -> prepare the model -> start rollout workers (vLLM) ->
play every suite's held-out episodes with verifier feedback turns -> write the report
(JSON + Markdown + PNG). SFT and RL stages join this loop as they land.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ray
from tqdm import tqdm

from cluster.config import ExperimentConfig
from cluster.ray_runtime import init_ray
from envs.families import config_dict, family
from evaluation.stats import Rate
from learner.assets import resolve_model_path
from rollout.fleet import RolloutFleet, start_fleet
from rollout.runner import EpisodeResult, EpisodeSpec


@contextmanager
def timed(timings: dict[str, float], stage: str):
    start = time.perf_counter()
    yield
    timings[f"timing/{stage}"] = round(time.perf_counter() - start, 3)


def run_main(cfg: ExperimentConfig) -> Path:
    """Run the job; return the folder holding the report."""
    timings: dict[str, float] = {}
    run_dir = cfg.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    with timed(timings, "ray_init"):
        handle = init_ray(cfg.ray)
    if handle.dashboard_url:
        print(f"Ray dashboard: {handle.dashboard_url} (token: veriray ray token-path)")
    with timed(timings, "model_prepare"):
        model_path = str(resolve_model_path(cfg.model.name))
    with timed(timings, "workers_start"):
        fleet = start_fleet(model_path, cfg.rollout, cfg.model.multimodal, run_dir / "images")
    results: dict[str, Any] = {}
    fam = family(cfg.task.family)
    suites = fam.suites(config_dict(cfg.task.active))
    for name, suite in tqdm(suites.items(), desc="suites", unit="suite"):
        with timed(timings, f"eval_{name}"):
            episodes = play_suite(fleet, fam.name, name, suite, cfg.episodes, cfg.seed)
        rate = Rate(sum(e.success for e in episodes), len(episodes))
        results[name] = rate.to_dict() | {
            "mean_turns": sum(len(e.turns) for e in episodes) / len(episodes),
            "example_response": episodes[0].turns[0].response_text[:500],
        }
    report = {
        "name": cfg.name,
        "model": cfg.model.name,
        "task": cfg.task.family,
        "episodes_per_suite": cfg.episodes,
        "suites": results,
        "timings": timings,
    }
    write_report(run_dir, report)
    fleet.shutdown()
    ray.shutdown()
    return run_dir


def play_suite(
    fleet: RolloutFleet,
    family_name: str,
    suite_name: str,
    suite: dict[str, Any],
    n: int,
    seed: int,
) -> list[EpisodeResult]:
    options = family(family_name).eval_reset_options(suite, n, seed)
    specs = [
        EpisodeSpec(f"{suite_name}-{i}", family_name, suite, o) for i, o in enumerate(options)
    ]
    return fleet.play(specs)


def write_report(run_dir: Path, report: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    (run_dir / "report.json").write_text(json.dumps(report, indent=2))
    names = list(report["suites"])
    rates = [100 * report["suites"][n]["rate"] for n in names]
    errs = [100 * report["suites"][n]["stderr"] for n in names]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.bar(names, rates, yerr=errs, capsize=6, color=["#4c72b0", "#dd8452"][: len(names)])
    ax.set_ylabel("success rate (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"{report['model']} on {report['task']} (n={report['episodes_per_suite']})")
    fig.tight_layout()
    fig.savefig(run_dir / "report.png", dpi=120)
    plt.close(fig)
    lines = [
        f"# {report['name']}",
        "",
        f"Model `{report['model']}`, task `{report['task']}`, "
        f"{report['episodes_per_suite']} held-out episodes per suite.",
        "",
        "| suite | success | ± (binomial s.e.) | mean turns |",
        "|---|---|---|---|",
    ]
    for n in names:
        s = report["suites"][n]
        lines.append(
            f"| {n} | {100 * s['rate']:.1f}% | {100 * s['stderr']:.1f} | {s['mean_turns']:.2f} |"
        )
    lines += ["", "![success](report.png)", ""]
    (run_dir / "report.md").write_text("\n".join(lines))
