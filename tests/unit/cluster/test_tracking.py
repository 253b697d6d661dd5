"""The trackers for real: TensorBoard event files, metrics.jsonl, a wandb offline run and an
MLflow local file store, each with metrics and a samples table, read back from disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cluster.config import ExperimentConfig, load_experiment
from cluster.tracking import make_trackers
from common.typed_config import ConfigError

ROWS = [
    {"prompt": "cards 1 2 3 4", "response": '{"formula": "1*2*3*4"}', "reward": 5.0,
     "verdict": '{"success": true}', "suite": "train", "turn": 0},
    {"prompt": "cards 5 5 5 1", "response": '{"formula": "5*5-1"}', "reward": 5.0,
     "verdict": '{"success": true}', "suite": "train", "turn": 0},
]  # fmt: skip


def _log_two_steps(names: list[str], run_dir: Path) -> None:
    trackers = make_trackers(names, run_dir, "track-test", {"learner": {"lr": 1e-5}})
    for t in trackers:  # an earlier stage's steps first: the step goes back after it
        t.log(5, {"sft_warm/learner/loss": 2.0})
    for step in (1, 2):
        for t in trackers:
            t.log(step, {"learner/loss": 0.5 / step, "note": "text is skipped by scalars"})
    for t in trackers:
        t.log_samples(2, "samples/rl/train", ROWS)
        t.close()


def wandb_history(run_file: Path) -> list[dict[str, str]]:
    """The history rows of an offline wandb run file (its record log: a 7-byte file header,
    then 32 KiB blocks of records with a 7-byte header each, as LevelDB's log)."""
    import struct

    from wandb.proto import wandb_internal_pb2 as pb

    data, block, pos = run_file.read_bytes(), 32768, 7
    records, part = [], b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if length == 0 and kind == 0:
            pos += block - pos % block
            continue
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        part = chunk if kind in (1, 2) else part + chunk  # full / first, middle / last
        if kind in (1, 4):
            records.append(part)
    rows = []
    for raw in records:
        record = pb.Record()
        record.ParseFromString(raw)
        if record.WhichOneof("record_type") == "history":
            rows.append(
                {i.key or "/".join(i.nested_key): i.value_json for i in record.history.item}
            )
    return rows


def test_wandb_runs_offline_in_the_run_folder_without_a_key(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "online")  # overridden: the tracker is offline always
    _log_two_steps(["wandb"], tmp_path)
    (run,) = (tmp_path / "wandb").glob("offline-run-*")
    assert list((tmp_path / "wandb" / "data" / "artifacts").rglob("*"))  # staged tables here
    (run_file,) = run.glob("run-*.wandb")
    history = wandb_history(run_file)
    losses = [(r["step"], r["learner/loss"]) for r in history if "learner/loss" in r]
    assert losses == [("1", "0.5"), ("2", "0.25")]  # none dropped when the step went back
    assert any(r.get("samples/rl/train/nrows") == "2" and r["step"] == "2" for r in history)
    (table,) = (run / "files" / "media" / "table").rglob("*.table.json")
    data = json.loads(table.read_text())
    assert data["columns"][:4] == ["prompt", "response", "reward", "verdict"]
    assert [row[:3] for row in data["data"]] == [[r["prompt"], r["response"], 5.0] for r in ROWS]
    import os

    assert os.environ["WANDB_MODE"] == "offline"


def test_mlflow_writes_a_local_file_store(tmp_path) -> None:
    _log_two_steps(["mlflow"], tmp_path)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())
    (run,) = client.search_runs([client.get_experiment_by_name("track-test").experiment_id])
    history = client.get_metric_history(run.info.run_id, "learner/loss")
    assert [(m.step, m.value) for m in history] == [(1, 0.5), (2, 0.25)]
    assert run.data.metrics["sft_warm/learner/loss"] == 2.0
    assert run.data.params["learner.lr"] == "1e-05"
    assert run.info.status == "FINISHED"
    (table,) = (tmp_path / "mlruns").rglob("step-000002.json")
    data = json.loads(table.read_text())
    assert data["columns"][:4] == ["prompt", "response", "reward", "verdict"]
    assert [row[0] for row in data["data"]] == [r["prompt"] for r in ROWS]
    assert table.parent.name == "train" and "artifacts" in table.parts


def test_tensorboard_and_jsonl(tmp_path) -> None:
    _log_two_steps(["tensorboard", "jsonl"], tmp_path)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"tensors": 0})
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("learner/loss")] == [(1, 0.5), (2, 0.25)]
    (text,) = acc.Tensors("samples/rl/train/text_summary")
    assert "cards 5 5 5 1" in text.tensor_proto.string_val[0].decode()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r.get("learner/loss")) for r in rows] == [(5, None), (1, 0.5), (2, 0.25)]


def test_the_default_keeps_tensorboard_and_jsonl() -> None:
    cfg = ExperimentConfig()
    assert cfg.tracking == ["tensorboard", "jsonl"] and cfg.samples_per_step == 8
    assert load_experiment(None, ["tracking=[]"]).tracking == []


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("tracking=[wandb,neptune]", "tracking: ['neptune'] unknown"),
        ("tracking=[jsonl,jsonl]", "tracking: names a tracker twice"),
        ("samples_per_step=-1", "samples_per_step: must be >= 0"),
    ],
)
def test_bad_tracking_names_the_field(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_experiment(None, [override])
