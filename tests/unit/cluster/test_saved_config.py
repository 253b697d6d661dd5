"""A run folder and its checkpoints keep the resolved config; eval and compare read it back.

The folders are laid out as the controller writes them (cluster/stages.py, controller.py):
config.yaml in the run folder and in each checkpoint, hf/ inside a checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster.cli import main
from cluster.config import (
    CONFIG_FILE,
    config_data,
    describe_task,
    find_saved_config,
    load_experiment,
    load_for_model,
    run_task,
    save_config,
)

ROOT = Path(__file__).resolve().parents[3]
QUICK = ROOT / "configs" / "cpu" / "quick.yaml"


@pytest.mark.parametrize("name", ["quick", "demo", "demo-vl"])
def test_saved_config_loads_back_to_the_same_experiment(tmp_path: Path, name: str) -> None:
    cfg = load_experiment(ROOT / "configs" / "cpu" / f"{name}.yaml", ["learner.lr=3e-6"])
    saved = save_config(cfg, tmp_path)
    assert saved == tmp_path / CONFIG_FILE
    again = load_experiment(saved)
    assert config_data(again) == config_data(cfg)
    assert again.learner.lr == 3e-6 and again.task.active == cfg.task.active


def test_saved_config_keeps_only_the_active_task(tmp_path: Path) -> None:
    cfg = load_experiment(QUICK, ["task.virl.observation_mode=image"])  # an inactive section
    assert set(config_data(cfg)["task"]) == {"family", "generalpoints"}


def _run_with_checkpoint(run: Path, seeded: bool) -> Path:
    cfg = load_experiment(QUICK)
    save_config(cfg, run)
    ckpt = run / ("seed-1" if seeded else "") / "checkpoints" / "update-000002"
    (ckpt / "hf").mkdir(parents=True)
    (ckpt / "hf" / "config.json").write_text("{}")  # a Hugging Face config, not ours
    return ckpt


@pytest.mark.parametrize("seeded", [False, True])
def test_a_checkpoint_finds_its_runs_config(tmp_path: Path, seeded: bool) -> None:
    run = tmp_path / "quick"
    ckpt = _run_with_checkpoint(run, seeded)
    for start in (ckpt, ckpt / "hf"):
        assert find_saved_config(start) == (run / CONFIG_FILE).resolve()
    save_config(load_experiment(QUICK, ["seed=1"]), ckpt)  # its own copy comes first
    assert find_saved_config(ckpt / "hf") == (ckpt / CONFIG_FILE).resolve()


def test_a_model_no_run_made_has_no_saved_config(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("something: else\n")  # not an experiment's
    (tmp_path / "model").mkdir()
    assert find_saved_config(tmp_path / "model") is None
    assert find_saved_config("tiny-lm") is None  # an asset name, not a folder


def test_eval_config_comes_from_the_checkpoint_unless_given(tmp_path: Path) -> None:
    ckpt = _run_with_checkpoint(tmp_path / "quick", seeded=False)
    cfg, source = load_for_model(str(ckpt), None, ["evaluation.episodes=3"])
    assert source == str((tmp_path / "quick" / CONFIG_FILE).resolve())
    assert cfg.task.generalpoints.num_cards == 2 and cfg.evaluation.episodes == 3
    assert describe_task(cfg).startswith("generalpoints (num_cards=2, target_mode='one_op'")
    default, source = load_for_model("tiny-lm", None, [])
    assert default.task.generalpoints.num_cards == 4 and source.startswith("defaults")
    given, source = load_for_model(str(ckpt), str(QUICK), ["task.generalpoints.num_cards=3"])
    assert given.task.generalpoints.num_cards == 3 and source == str(QUICK)


def test_config_show_prints_only_the_active_task(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "show", str(ROOT / "configs/paper/virl-l.yaml")]) == 0
    out = capsys.readouterr().out
    assert "  virl:\n" in out and "generalpoints" not in out and "gymnasium" not in out


def test_compare_names_each_runs_task(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "quick"
    save_config(load_experiment(QUICK), run)
    old = tmp_path / "old"  # a run from before configs were saved: its report says the task
    old.mkdir()
    (old / "report.json").write_text('{"task": "virl", "task_config": {"city": "new_york"}}')
    assert run_task(run).startswith("generalpoints (num_cards=2")
    assert run_task(old) == "virl {'city': 'new_york'}"
    main(["compare", str(run), str(old), "--out", str(tmp_path / "cmp")])  # prints tasks first
    out = capsys.readouterr().out
    assert f"{run}: task generalpoints (num_cards=2" in out
    assert "the runs play different tasks" in out
