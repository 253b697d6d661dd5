"""Config loading: types, unknown keys, impossible values and overrides fail with the field."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from cluster.config import ExperimentConfig, load_experiment
from common.typed_config import (
    ConfigError,
    apply_overrides,
    check,
    explain,
    field_docs,
    from_dict,
    load,
    parse_override,
    to_dict,
)

ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Inner:
    rate: float = 0.5
    """A rate in (0, 1]."""
    mode: Literal["a", "b"] = "a"
    """The mode."""

    def __post_init__(self) -> None:
        check(0 < self.rate <= 1, "rate", f"must be in (0, 1], got {self.rate}")


@dataclass
class Outer:
    steps: int = 3
    """How many steps."""
    name: str | None = None
    """Optional name."""
    tags: list[str] = field(default_factory=list)
    """Free tags."""
    inner: Inner = field(default_factory=Inner)
    """A nested section."""


def test_defaults_and_nested_values_load() -> None:
    cfg = from_dict(Outer, {"steps": 5, "inner": {"rate": 1, "mode": "b"}, "tags": ["x"]})
    assert cfg == Outer(steps=5, tags=["x"], inner=Inner(rate=1.0, mode="b"))
    assert isinstance(cfg.inner.rate, float)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"stepz": 1},
            "stepz: unknown field of Outer; allowed fields: ['inner', 'name', 'steps', 'tags']",
        ),
        ({"steps": "3"}, "steps: expected an integer, got '3'"),
        ({"steps": True}, "steps: expected an integer, got True"),
        ({"name": 4}, "name: expected str or null, got 4"),
        ({"tags": "x"}, "tags: expected a list, got 'x'"),
        ({"tags": [1]}, "tags[0]: expected a string, got 1"),
        ({"inner": {"mode": "c"}}, "inner.mode: 'c' is not one of ['a', 'b']"),
        ({"inner": {"rate": 0}}, "inner.rate: must be in (0, 1], got 0.0"),
        ({"inner": 3}, "inner: expected a mapping for Inner, got 3"),
        ({"inner": {"extra": 1}}, "inner.extra: unknown field of Inner"),
    ],
)
def test_bad_values_name_the_field(data: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        from_dict(Outer, data)
    assert str(err.value).startswith(message)


def test_overrides_parse_yaml_scalars_and_numbers() -> None:
    assert parse_override("learner.lr=1e-6") == (["learner", "lr"], 1e-6)
    assert parse_override("a.b=true") == (["a", "b"], True)
    assert parse_override("a=null") == (["a"], None)
    assert parse_override("a=[1, 2]") == (["a"], [1, 2])
    assert parse_override("a=hello") == (["a"], "hello")
    with pytest.raises(ConfigError, match=r"expected dotted\.key=value"):
        parse_override("learner.lr")
    with pytest.raises(ConfigError, match="not a dotted field name"):
        parse_override("learner..lr=1")


def test_overrides_merge_into_sections_without_touching_the_input() -> None:
    base = {"inner": {"rate": 0.2}}
    merged = apply_overrides(base, ["inner.mode=b", "steps=9"])
    assert merged == {"inner": {"rate": 0.2, "mode": "b"}, "steps": 9}
    assert base == {"inner": {"rate": 0.2}}
    with pytest.raises(ConfigError, match="steps: is a value, not a section"):
        apply_overrides({"steps": 1}, ["steps.x=1"])


def test_yaml_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load(Outer, tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: [1,\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not valid YAML"):
        load(Outer, bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load(Outer, listy)


def test_experiment_overrides_and_errors() -> None:
    cfg = load_experiment(None, ["learner.lr=1e-6", "task.generalpoints.num_cards=2"])
    assert cfg.learner.lr == 1e-6 and cfg.task.generalpoints.num_cards == 2
    cases = {
        "learner.zero_stage=5": "learner.zero_stage: 5 is not one of [0, 1, 2, 3]",
        "learner.offload_optimizer=true": "learner.offload_optimizer: needs zero_stage",
        "rollout.max_new_tokens=5000": "rollout.max_new_tokens: must be in [1, max_model_len",
        "task.generalpoints.face_card_rule=x": "task.generalpoints.face_card_rule: 'x' is not one",
        "task.virl.action_space=up": "task.virl.action_space: 'up' is not one of",
        "task.family=chess": "task.family: task family 'chess' is not registered; registered: [",
        "ray.dashboard_port=0": "ray.dashboard_port: must be in 1..65535",
        "learner.torch_threads=-1": "learner.torch_threads: must be >= 0",
    }
    for override, message in cases.items():
        with pytest.raises(ConfigError) as err:
            load_experiment(None, [override])
        assert str(err.value).startswith(message), (override, str(err.value))


def test_sft_arm_matched_to_rl_needs_rl() -> None:
    with pytest.raises(ConfigError) as err:
        load_experiment(None, ["sft.enabled=true", "rl.enabled=false"])
    assert str(err.value).startswith("sft.branch_compute: 'match_rl' gives the SFT arm")
    cfg = load_experiment(
        None, ["sft.enabled=true", "rl.enabled=false", "sft.branch_compute=steps"]
    )
    assert cfg.sft.branch_compute == "steps"


def test_round_trip_through_plain_data() -> None:
    cfg = load_experiment(
        None, ["rollout.temperature=0.7", "learner.ppo.temperature=0.7", "task.family=virl"]
    )
    assert from_dict(ExperimentConfig, to_dict(cfg)) == cfg


def test_every_field_has_a_docstring() -> None:
    rows = explain(ExperimentConfig)
    assert len(rows) > 40
    undocumented = [name for name, _, _, doc in rows if not doc]
    assert undocumented == []
    assert field_docs(Inner) == {"rate": "A rate in (0, 1].", "mode": "The mode."}


@pytest.mark.parametrize("path", sorted((ROOT / "configs").rglob("*.yaml")), ids=str)
def test_every_shipped_config_loads(path: Path) -> None:
    load_experiment(path)


def test_config_modules_import_nothing_heavy() -> None:
    code = (
        "import sys, cluster.config, common.typed_config, rollout.config, learner.config; "
        "heavy = [m for m in ('torch', 'ray', 'vllm', 'deepspeed', 'transformers') "
        "if m in sys.modules]; print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", ["..", ".", "a/b", ".hidden", "x y", ""])
def test_run_name_must_be_a_plain_folder_name(name: str) -> None:
    with pytest.raises(ConfigError, match=r"^name: .*not a plain run name"):
        ExperimentConfig(name=name)


@pytest.mark.parametrize("name", ["demo", "demo-vl", "quick_2", "demo-tune-rl_lr-3e-06"])
def test_plain_run_names_are_accepted(name: str) -> None:
    assert ExperimentConfig(name=name).name == name
