"""The task registry: built-in families register like plugins, a family's section is checked
by its own typed config, and unknown or broken families fail naming the field."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from cluster.config import load_experiment
from common.typed_config import ConfigError
from envs import families
from envs.families import TaskFamily, family, names, register

ROOT = Path(__file__).resolve().parents[3]


def test_the_study_families_are_found_without_a_list() -> None:
    assert {"generalpoints", "virl"} <= set(names())
    assert family("generalpoints").budget_field == "viter"
    assert family("virl").budget_field == "tries_per_point"


def test_no_framework_package_names_a_family() -> None:
    # The framework reaches tasks only through the registry (envs/<task>/family.py).
    offenders = []
    for package in ("cluster", "common", "rollout", "learner", "evaluation"):
        for path in (ROOT / package).rglob("*.py"):
            # The one exception: an experiment without a task section plays the study's task.
            text = path.read_text().replace('DEFAULT_FAMILY = "generalpoints"', "")
            for word in ('"generalpoints"', '"virl"', "import envs.generalpoints",
                         "from envs.generalpoints", "from envs.virl"):  # fmt: skip
                if word in text and "assets" not in path.parts:
                    offenders.append(f"{path.relative_to(ROOT)}: {word}")
    assert not offenders, offenders


@dataclass
class ToyConfig:
    """A toy family's parameters."""

    size: int = 3
    """Board size."""
    split: str = "train"
    """Which prompts."""

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"size: must be >= 1, got {self.size}")


def _toy(name: str = "toy_registry") -> TaskFamily:
    return TaskFamily(
        name=name,
        config_cls=ToyConfig,
        make_env=lambda c: None,  # type: ignore[arg-type,return-value]
        make_verifier=lambda c: None,  # type: ignore[arg-type,return-value]
        suites=lambda c: {"in_distribution": c | {"split": "eval"}},
        eval_reset_options=lambda c, limit, seed: [{"seed": i} for i in range(limit or 2)],
    )


TOY = ("task.family=toy_registry", "study.primary_suite=in_distribution")


def test_a_family_registered_in_code_is_a_task_family_value() -> None:
    register(_toy(), replace=True)
    cfg = load_experiment(
        None,
        [*TOY, "task.toy_registry.size=5", "evaluation.suites=[]"],
    )
    assert cfg.task.active == ToyConfig(size=5)
    assert cfg.task.train_dict() == {"size": 5, "split": "train"}
    with pytest.raises(ConfigError, match=r"^task\.toy_registry\.size: must be >= 1"):
        load_experiment(None, [*TOY, "task.toy_registry.size=0"])
    with pytest.raises(ConfigError, match=r"^task\.toy_registry\.size: expected an integer"):
        load_experiment(None, [*TOY, "task.toy_registry.size=big"])
    with pytest.raises(ConfigError, match=r"^task\.toy_registry\.colour: unknown field"):
        load_experiment(None, [*TOY, "task.toy_registry.colour=red"])
    # Its suites, budget and SFT are the family's, checked at load time.
    with pytest.raises(ConfigError, match=r"^evaluation\.suites: \['ood_rule'\] not defined"):
        load_experiment(None, [*TOY, "evaluation.suites=[ood_rule]"])
    with pytest.raises(ConfigError, match=r"^evaluation\.viter_sweep: .* no verification"):
        load_experiment(None, [*TOY, "evaluation.viter_sweep=[1,2]"])
    with pytest.raises(ConfigError, match=r"^sft\.enabled: task family toy_registry cannot"):
        load_experiment(None, [*TOY, "sft.enabled=true"])
    with pytest.raises(ConfigError, match=r"^study\.primary_suite: 'ood_rule' is not among"):
        load_experiment(None, ["task.family=toy_registry"])


def test_module_attribute_names_a_family_any_process_can_import(tmp_path, monkeypatch) -> None:
    (tmp_path / "toy_ref_tasks.py").write_text(
        "from tests.unit.envs.test_registry import _toy\nFAMILY = _toy('toy_ref')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = load_experiment(
        None,
        [
            "task.family=toy_ref_tasks:FAMILY",
            "task.toy_ref.size=2",
            "study.primary_suite=in_distribution",
        ],
    )
    assert cfg.task.spec.name == "toy_ref" and cfg.task.active.size == 2
    with pytest.raises(ConfigError, match=r"^task\.family: task family 'toy_ref_tasks:NOPE'"):
        load_experiment(None, ["task.family=toy_ref_tasks:NOPE"])
    sys.modules.pop("toy_ref_tasks", None)


def test_unknown_family_and_section_name_what_to_do() -> None:
    with pytest.raises(ConfigError, match=r"^task\.family: .*not registered; registered: \["):
        load_experiment(None, ["task.family=chess"])
    with pytest.raises(ConfigError, match=r"^task\.chess: unknown field of TaskConfig"):
        load_experiment(None, ["task.chess.size=3"])


def test_a_broken_plugin_fails_only_when_asked_for(monkeypatch) -> None:
    monkeypatch.setitem(families._BROKEN, "broken_toy", "ImportError: no module named x")
    with pytest.raises(ValueError, match="its plugin failed to load: ImportError"):
        family("broken_toy")
    assert "generalpoints" in names()


def test_register_rejects_clashes_and_non_families() -> None:
    register(_toy("toy_clash"), replace=True)
    with pytest.raises(ValueError, match="already registered"):
        register(_toy("toy_clash"))
    with pytest.raises(TypeError, match="expected a TaskFamily"):
        register("toy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Python identifier"):
        register(_toy("toy-dash"))


def test_the_task_section_round_trips_through_yaml(tmp_path) -> None:
    import yaml

    from common.typed_config import to_dict

    cfg = load_experiment(ROOT / "configs/cpu/quick.yaml", ["task.virl.tries_per_point=3"])
    data = to_dict(cfg)
    assert (
        data["task"]["family"] == "generalpoints" and data["task"]["virl"]["tries_per_point"] == 3
    )
    path = tmp_path / "again.yaml"
    path.write_text(yaml.safe_dump(data))
    again = load_experiment(path)
    assert again.task == cfg.task and again.task.generalpoints.num_cards == 2
