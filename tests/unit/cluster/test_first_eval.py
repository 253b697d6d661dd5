"""Which evaluation runs before any training: the base model's, the init's, or none."""

from __future__ import annotations

from pathlib import Path

from cluster.config import load_experiment
from cluster.controller import first_eval_stage

DEMO = Path(__file__).resolve().parents[3] / "configs" / "cpu" / "demo.yaml"


def test_base_point_is_optional_before_a_warm_start() -> None:
    assert first_eval_stage(load_experiment(DEMO, ["evaluation.base=true"]), []) == "base"
    assert first_eval_stage(load_experiment(DEMO, ["evaluation.base=false"]), []) is None


def test_without_sft_the_first_point_is_the_init_and_always_runs() -> None:
    cfg = load_experiment(DEMO, ["sft.enabled=false", "evaluation.base=false"])
    assert first_eval_stage(cfg, []) == "init"


def test_resumed_or_shared_runs_do_not_evaluate_again() -> None:
    cfg = load_experiment(DEMO, ["evaluation.base=true"])
    assert first_eval_stage(cfg, [{"stage": "base"}]) is None
    shared = load_experiment(DEMO, ["evaluation.base=true", "sft.warm_start_from=runs/demo"])
    assert first_eval_stage(shared, []) is None
