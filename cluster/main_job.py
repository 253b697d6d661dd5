"""The main job as it stands: evaluate the policy on the task's held-out ID and OOD suites.

Stages (each timed): start Ray -> prepare the model -> start rollout workers (vLLM) ->
play every suite's held-out episodes with verifier feedback turns (and the VIter sweep if
configured) -> write the report (report.json with every number, report.md, PNG figures).
The evaluation itself is ``evaluation.run.evaluate_model``; SFT and RL stages join this loop
as they land, calling ``evaluation.Evaluator.run`` every ``evaluation.every_k_updates``.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path

import ray

from cluster.config import ExperimentConfig
from cluster.ray_runtime import init_ray
from evaluation.run import evaluate_model, resolve_model


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
    try:
        with timed(timings, "model_prepare"):
            model = resolve_model(cfg.model.name, cfg.model.multimodal)
        # Workers start, suites play and the report is written inside (each timed there).
        evaluate_model(cfg, model, run_dir, timings, stage="init")
    finally:
        ray.shutdown()
    return run_dir
