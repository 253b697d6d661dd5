"""`veriray tune`: each sweep run scores only the validation suite, one arm at a time, from a
shared warm start; the sweep's table and figure come from the runs' reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from cluster.tune import score, sweep_configs, sweep_overrides, write_sweep
from common.typed_config import ConfigError

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "configs" / "cpu" / "demo.yaml"


def test_rl_lr_runs_the_rl_arm_alone_on_the_validation_suite() -> None:
    configs = sweep_configs(DEMO, [], "rl.lr", ["1e-6", "3e-6"], "runs/demo", 0)
    assert [c.name for c in configs] == ["demo-tune-rl_lr-1e-6", "demo-tune-rl_lr-3e-6"]
    for cfg, lr in zip(configs, (1e-6, 3e-6), strict=True):
        assert cfg.rl.lr == lr and cfg.rl.enabled
        assert cfg.evaluation.suites == ["validation"]  # never an evaluation suite
        assert cfg.study.primary_suite == "validation" and cfg.study.seeds == 1
        assert cfg.sft.warm_start_from == "runs/demo"
        assert cfg.sft.branch_compute == "steps" and cfg.sft.branch_steps == 0  # no SFT arm


def test_sft_arm_lr_runs_the_sft_arm_alone_for_the_given_steps() -> None:
    (cfg,) = sweep_configs(DEMO, [], "sft.arm_lr", ["5e-6"], "runs/demo", 40)
    assert cfg.sft.arm_lr == 5e-6 and not cfg.rl.enabled
    assert cfg.sft.branch_steps == 40 and cfg.evaluation.every_k_updates == 40


def test_warm_start_length_needs_no_earlier_run() -> None:
    (cfg,) = sweep_configs(DEMO, [], "sft.examples", ["240"], None, 0)
    assert cfg.sft.examples == 240 and cfg.sft.warm_start_from is None and not cfg.rl.enabled


def test_bad_sweeps_fail_with_what_to_do() -> None:
    with pytest.raises(ConfigError, match="is not one of"):
        sweep_overrides("learner.lr", "1e-6", "runs/demo", 0)
    with pytest.raises(ConfigError, match="--from RUN"):
        sweep_overrides("rl.lr", "1e-6", None, 0)
    with pytest.raises(ConfigError, match="--sft-steps"):
        sweep_overrides("sft.arm_lr", "1e-6", "runs/demo", 0)


def _fake_run(root: Path, name: str, rate: float) -> Path:
    run = root / name
    run.mkdir()
    suite = {"rate": rate, "n": 40, "wilson95": [rate - 0.1, rate + 0.1]}
    suite["first_try"] = {"rate": rate / 2}
    points = [
        {"stage": "init", "step": 0, "suites": {"validation": suite | {"rate": 0.1}}},
        {"stage": "rl", "step": 6, "suites": {"validation": suite}},
    ]
    (run / "report.json").write_text(json.dumps({"points": points}))
    return run


def test_write_sweep_tabulates_every_run_and_names_the_best(tmp_path: Path) -> None:
    runs = [_fake_run(tmp_path, f"r{i}", rate) for i, rate in enumerate((0.4, 0.7, 0.5))]
    assert score(runs[1], "rl.lr")["success"] == 0.7
    assert score(runs[1], "sft.examples")["success"] == 0.1  # the warm start: the init point
    md = write_sweep(tmp_path / "sweep", "rl.lr", ["1e-6", "3e-6", "1e-5"], runs)
    summary = json.loads((tmp_path / "sweep" / "tune.json").read_text())
    assert [r["success"] for r in summary["runs"]] == [0.4, 0.7, 0.5]
    assert summary["best"]["value"] == "3e-6"
    assert "Best: `rl.lr=3e-6`" in md.read_text()
    with Image.open(tmp_path / "sweep" / "tune.png") as img:
        assert img.format == "PNG"
