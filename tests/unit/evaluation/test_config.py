"""EvaluationConfig: validation names the field; the experiment carries the section."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cluster.config import load_experiment
from common.typed_config import ConfigError
from evaluation.config import EvaluationConfig

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"episodes": 0}, "episodes"),
        ({"seed": -1}, "seed"),
        ({"suites": [""]}, "suites"),
        ({"suites": ["ood_rule", "ood_rule"]}, "suites"),
        ({"temperature": -0.1}, "temperature"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"viter_sweep": [0, 3]}, "viter_sweep"),
        ({"viter_sweep": [3, 3]}, "viter_sweep"),
        ({"every_k_updates": -1}, "every_k_updates"),
    ],
)
def test_bad_values_raise_naming_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}: "):
        EvaluationConfig(**kwargs)


def test_schedule() -> None:
    cfg = EvaluationConfig(every_k_updates=5)
    assert [u for u in range(1, 16) if cfg.due(u)] == [5, 10, 15]
    assert cfg.due(7, last=True)
    assert not EvaluationConfig(every_k_updates=0).due(5)


def test_experiment_section_and_cross_check() -> None:
    cfg = load_experiment(
        ROOT / "configs/cpu/quick.yaml",
        ["evaluation.suites=[ood_rule]", "evaluation.viter_sweep=[1,3,5,10]"],
    )
    assert cfg.evaluation.suites == ["ood_rule"] and cfg.evaluation.viter_sweep == [1, 3, 5, 10]
    with pytest.raises(ConfigError, match=r"^evaluation\.max_new_tokens: must be < rollout"):
        load_experiment(ROOT / "configs/cpu/quick.yaml", ["evaluation.max_new_tokens=5000"])
    with pytest.raises(ConfigError, match=r"evaluation\.every_k_updates"):
        load_experiment(None, ["evaluation.every_k_updates=-2"])
    # Suite names are the task family's: checked against it, naming the field.
    with pytest.raises(ConfigError, match=r"^evaluation\.suites: \['ood_colour'\] not defined"):
        load_experiment(ROOT / "configs/cpu/quick.yaml", ["evaluation.suites=[ood_colour]"])


@pytest.mark.parametrize("path", sorted((ROOT / "configs").rglob("*.yaml")), ids=str)
def test_shipped_configs_load(path: Path) -> None:
    load_experiment(path)


def test_config_module_imports_nothing_heavy() -> None:
    code = (
        "import sys, evaluation.config; "
        "print(sorted(m for m in ('torch', 'ray', 'vllm') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert out.stdout.strip() == "[]"
