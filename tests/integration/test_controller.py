"""The controller end to end on an embedded cluster (`veriray demo --quick`, the README's quick
mode): base eval -> SFT warm start -> PPO with weight sync -> SFT arm at the PPO arm's compute
-> report, in async mode (the next batch plays while the learner trains) while `veriray scale`
changes the rollout workers of the running job; `--resume`
continues from the last checkpoint; `--seeds` runs each seed's arms from one shared warm start
and reports the primary endpoint; the VL variant runs the image path through every stage; a
bad config fails before anything starts."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from common.ports import free_port
from tests.integration.quick_demo import JOB_TIMEOUT_S, ROOT, quick_demo_args


def _run_args(out: Path, *extra: str) -> list[str]:
    return quick_demo_args(out, *extra)


# The first run and its resume: async mode, one version of staleness allowed.
ASYNC = ("rl.mode=async", "buffer.max_staleness=1")
# The first run sends its metrics and samples to every tracker (wandb offline, MLflow local).
TRACKERS = ("tensorboard", "jsonl", "wandb", "mlflow")


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """quick.yaml with 2 RL updates in async mode; scaled to 2 rollout workers while it runs."""
    out = tmp_path_factory.mktemp("runs")
    # stderr to a file: a pipe nobody reads while stdout is scanned fills up and stalls the job
    stderr_file = (out / "stderr.log").open("w+")
    job = subprocess.Popen(
        _run_args(out, "rl.updates=2", *ASYNC, f"tracking=[{','.join(TRACKERS)}]"),
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=stderr_file,
    )
    scale_out = None
    assert job.stdout is not None
    for line in job.stdout:
        m = re.search(r"veriray scale N --address (\S+)", line)
        if m:
            scale_out = subprocess.run(
                [sys.executable, "-m", "cluster.cli", "scale", "2", "--address", m.group(1)],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=120,
            )
            break
    rest, _ = job.communicate(timeout=JOB_TIMEOUT_S)
    stderr_file.seek(0)
    err = stderr_file.read()
    stderr_file.close()
    assert job.returncode == 0, err[-4000:]
    return out / "quick", scale_out, rest


def test_pipeline_writes_points_for_every_stage(first_run) -> None:
    run_dir, _, stdout = first_run
    assert "report:" in stdout
    points = [json.loads(line) for line in (run_dir / "eval_points.jsonl").read_text().splitlines()]
    assert [p["stage"] for p in points] == ["base", "init", "rl", "sft"]
    base, init, rl, sft = points
    assert base["train_gflops"] == 0 < init["train_gflops"] < rl["train_gflops"]
    # The SFT arm stops at the first step that reaches the RL arm's compute: equal FLOPs up
    # to less than one SFT step (each of its `step` steps adds about the same compute).
    per_step = (sft["train_gflops"] - init["train_gflops"]) / sft["step"]
    assert rl["train_gflops"] <= sft["train_gflops"] < rl["train_gflops"] + 1.5 * per_step
    assert sft["compute"]["rollout_tokens"] == init["compute"]["rollout_tokens"]  # SFT: no RL
    report = json.loads((run_dir / "report.json").read_text())
    assert {"in_distribution", "ood_rule"} <= set(report["suites"])
    for name in ("report.png", "curves.png"):
        with Image.open(run_dir / name) as img:
            assert img.format == "PNG"
    assert (run_dir / "sft" / "hf" / "config.json").is_file()
    assert (run_dir / "sft" / "sft_data.parquet").is_file()
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [
        "update-000001",
        "update-000002",
    ]
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))


def test_rl_metrics_are_logged_per_update(first_run) -> None:
    run_dir, _, _ = first_run
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    rl = [r for r in rows if "learner/policy_loss" in r]
    assert [r["step"] for r in rl] == [1, 2]
    for r in rl:  # each update trains exactly its own batch, while the next one streams in
        assert r["buffer/total_consumed"] == 8 * r["step"]
        assert r["rollout/episodes_delta"] == 8
        assert r["timing/weight_sync"] > 0 and r["timing/rollout_play"] > 0
    # Async: update 1 waits for its whole batch; update 2's batch played while update 1
    # trained, so waiting for it took less than playing it (0.0 when it was all there).
    assert rl[0]["timing/rollout"] > 0
    assert 0 <= rl[1]["timing/rollout"] < rl[1]["timing/rollout_play"]


def test_every_tracker_gets_the_metrics_and_the_samples_tables(first_run, monkeypatch) -> None:
    from mlflow.tracking import MlflowClient

    from evaluation.samples import load_samples
    from tests.unit.cluster.test_tracking import wandb_history

    run_dir, _, _ = first_run
    rows = load_samples(run_dir).to_pylist()
    train = [r for r in rows if r["suite"] == "train"]
    assert sorted({r["step"] for r in train}) == [1, 2]
    assert all(sum(r["step"] == u for r in train) <= 8 for u in (1, 2))  # samples_per_step
    assert all(r["prompt"] and r["reward"] is not None and r["verdict"] for r in train)
    (wandb_run,) = (run_dir / "wandb").glob("offline-run-*")
    (run_file,) = wandb_run.glob("run-*.wandb")
    history = wandb_history(run_file)  # every row kept, though the step restarts per stage
    assert [r["step"] for r in history if "learner/policy_loss" in r] == ["1", "2"]
    assert [r["step"] for r in history if "samples/rl/train/nrows" in r] == ["1", "2"]
    assert [r["step"] for r in history if "samples/rl/in_distribution/nrows" in r] == ["2"]
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 reads a file store so
    client = MlflowClient(tracking_uri=(run_dir / "mlruns").resolve().as_uri())
    (run,) = client.search_runs([client.get_experiment_by_name("quick").experiment_id])
    history = client.get_metric_history(run.info.run_id, "learner/policy_loss")
    assert [m.step for m in history] == [1, 2]
    artifacts = {p.parts[-2:] for p in (run_dir / "mlruns").rglob("step-*.json")}
    assert {("train", "step-000001.json"), ("in_distribution", "step-000002.json")} <= artifacts


def test_scale_reached_the_running_job(first_run) -> None:
    run_dir, scale_out, _ = first_run
    assert scale_out is not None and scale_out.returncode == 0, scale_out and scale_out.stderr
    assert "'desired_workers': 2" in scale_out.stdout
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert any(r.get("rollout/workers") == 2.0 for r in rows)


def test_resume_continues_from_the_last_checkpoint(first_run) -> None:
    run_dir, _, _ = first_run
    out = run_dir.parent
    result = subprocess.run(
        _run_args(out, "rl.updates=3", *ASYNC, "--resume"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=JOB_TIMEOUT_S,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert (run_dir / "checkpoints" / "update-000003").is_dir()
    points = [json.loads(line) for line in (run_dir / "eval_points.jsonl").read_text().splitlines()]
    assert [p["stage"] for p in points] == ["base", "init", "rl", "rl", "sft", "sft"]
    assert [p["step"] for p in points if p["stage"] == "rl"] == [2, 3]
    # The SFT arm was replayed from the warm start, matching both RL points' compute.
    rl_flops = [p["train_gflops"] for p in points if p["stage"] == "rl"]
    sft_flops = [p["train_gflops"] for p in points if p["stage"] == "sft"]
    assert all(s >= r for s, r in zip(sft_flops, rl_flops, strict=True))
    state = json.loads(
        (run_dir / "checkpoints" / "update-000003" / "trainer_state.json").read_text()
    )
    assert state["policy_version"] == 3


def test_seeds_share_one_warm_start_and_report_the_primary_endpoint(tmp_path: Path) -> None:
    args = _run_args(tmp_path, "rl.updates=1", "sft.examples=16", "--seeds", "2")
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=JOB_TIMEOUT_S)
    assert result.returncode == 0, result.stderr[-4000:]
    run = tmp_path / "quick"
    points = [json.loads(line) for line in (run / "eval_points.jsonl").read_text().splitlines()]
    # One base and one init evaluation; then each seed's RL and SFT arms from that init.
    assert [(p["stage"], p["seed"]) for p in points] == [
        ("base", None),
        ("init", None),
        ("rl", 0),
        ("sft", 0),
        ("rl", 1),
        ("sft", 1),
    ]
    init = points[1]
    for p in points[2:]:  # every arm starts from the warm start's compute
        assert p["compute"]["train_tokens"] > init["compute"]["train_tokens"]
    assert sorted(d.name for d in (run / "seed-0" / "checkpoints").iterdir()) == ["update-000001"]
    assert (run / "seed-1" / "checkpoints" / "update-000001").is_dir()
    assert not (run / "seed-0" / "sft").exists()  # one warm start, in the run folder
    # The same prompts at every point (paired comparisons), each seed scored on them.
    ids = {tuple(p["suites"]["ood_rule"]["outcomes"]["ids"]) for p in points}
    assert len(ids) == 1
    report = json.loads((run / "report.json").read_text())
    endpoint = report["primary_endpoint"]
    assert endpoint["suite"] == "ood_rule" and endpoint["seeds"] == 2
    assert [s["seed"] for s in endpoint["per_seed"]] == [0, 1]
    assert len(endpoint["ci95"]) == 2
    mean = sum(s["difference"] for s in endpoint["per_seed"]) / 2
    assert endpoint["difference"] == pytest.approx(mean)
    assert report["suites"]["ood_rule"]["distinct_prompts"] == len(next(iter(ids)))
    assert "Primary endpoint" in (run / "report.md").read_text().split("##")[1]
    with Image.open(run / "arms.png") as img:
        assert img.format == "PNG"


def test_vl_variant_runs_the_image_path_through_every_stage(tmp_path: Path) -> None:
    args = [
        sys.executable,
        "-m",
        "cluster.cli",
        "demo",
        "--vl",
        "episodes=4",
        "sft.examples=16",
        f"output_dir={tmp_path}",
        f"ray.dashboard_port={free_port()}",
    ]
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=JOB_TIMEOUT_S)
    assert result.returncode == 0, result.stderr[-4000:]
    run_dir = tmp_path / "demo-vl"
    points = [json.loads(line) for line in (run_dir / "eval_points.jsonl").read_text().splitlines()]
    assert [p["stage"] for p in points] == ["base", "init", "rl", "sft"]
    for p in points:  # black suits in training; the visual shift is red suits
        assert set(p["suites"]) == {"in_distribution", "ood_rule", "ood_visual"}
    assert list((run_dir / "images").rglob("*.png"))  # rendered cards went through the store
    report = json.loads((run_dir / "report.json").read_text())
    assert "ood_visual" in report["gains"]["rl"] and "ood_visual" in report["gains"]["sft"]


def test_bad_config_fails_fast_with_the_field() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cluster.cli",
            "run",
            str(ROOT / "configs/cpu/quick.yaml"),
            "rollout.temperature=-1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert "config error: rollout.temperature: must be >= 0" in result.stderr


def test_checkpoint_evaluates_on_its_runs_task_without_config(first_run, tmp_path: Path) -> None:
    """`veriray eval CHECKPOINT` with no --config plays the task the run trained on (quick.yaml:
    2 cards, one_op target), read from the config.yaml saved in the checkpoint."""
    run_dir, _, _ = first_run
    ckpt = run_dir / "checkpoints" / "update-000002"
    assert (run_dir / "config.yaml").is_file() and (ckpt / "config.yaml").is_file()
    out = tmp_path / "eval"
    args = ["eval", str(ckpt), f"ray.dashboard_port={free_port()}", "--suite", "ood_rule"]
    result = subprocess.run(
        [sys.executable, "-m", "cluster.cli", *args, "--episodes", "2", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=JOB_TIMEOUT_S,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "task generalpoints (num_cards=2, target_mode='one_op'" in result.stdout
    assert f"config: {ckpt.resolve() / 'config.yaml'}" in result.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["task_config"]["num_cards"] == 2
    assert report["task_config"]["target_mode"] == "one_op"
    cmp_args = ["compare", str(run_dir), str(out), "--out", str(tmp_path / "cmp")]
    compared = subprocess.run(
        [sys.executable, "-m", "cluster.cli", *cmp_args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert compared.returncode == 0, compared.stderr[-4000:]
    assert compared.stdout.count("task generalpoints (num_cards=2") == 2


def test_library_output_goes_to_the_run_logs(first_run) -> None:
    """The console shows stage names, progress bars and the report path; what Ray, vLLM and
    DeepSpeed print goes to <run>/logs (driver log, every actor's output)."""
    run_dir, _, stdout = first_run
    stderr = (run_dir.parent / "stderr.log").read_text()
    for actor in ("(RolloutWorker", "(LearnerRank", "(EnvActor"):
        assert actor not in stderr + stdout  # no actor output streamed to the console
    assert "WARNING" not in stderr + stdout
    assert "== sft warm start" in stdout and "== rl arm seed0" in stdout
    assert "eval base0" in stderr and "rl (seed 0)" in stderr  # the progress bars
    assert (run_dir / "logs" / "veriray.log").is_file()
    worker_logs = list((run_dir / "logs" / "workers").iterdir())
    assert any("RolloutWorker" in p.read_text(errors="replace") for p in worker_logs)
