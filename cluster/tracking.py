"""Where a run's metrics and samples tables go besides the Ray dashboard: the trackers.

``tracking: [tensorboard, jsonl, wandb, mlflow]`` in the experiment config names them; each is a
small class with ``log(step, values)``, ``log_samples(step, key, rows)`` and ``close()``, and
every one writes inside the run folder only:

- tensorboard: event files under ``<run_dir>/tensorboard`` (scalars; samples as a text table).
- jsonl: ``<run_dir>/metrics.jsonl``, one line per step (the samples live in samples.parquet).
- wandb: always offline (``WANDB_MODE=offline``): the run under ``<run_dir>/wandb``, samples
  as ``wandb.Table``. No account or API key is needed or read; ``wandb sync`` uploads it later.
- mlflow: a local file store at ``<run_dir>/mlruns`` (experiment = the run name), samples as
  JSON table artifacts in log_table's format (``{"columns": [...], "data": [[...]]}``).

The trackers import their libraries only when chosen, so a run that uses neither wandb nor
mlflow never loads them.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Protocol

TRACKER_NAMES = ("tensorboard", "jsonl", "wandb", "mlflow")
DEFAULT_TRACKING = ["tensorboard", "jsonl"]
SAMPLE_COLUMNS = ("prompt", "response", "reward", "verdict")


class Tracker(Protocol):
    def log(self, step: int, values: dict[str, float]) -> None: ...

    def log_samples(self, step: int, key: str, rows: list[dict[str, Any]]) -> None: ...

    def close(self) -> None: ...


def _numbers(values: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items() if isinstance(v, int | float)}


def _table(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """The samples table's columns (the four a reader looks at first, then the rest) and rows."""
    extra = [c for c in (rows[0] if rows else {}) if c not in SAMPLE_COLUMNS]
    columns = [*SAMPLE_COLUMNS, *extra]
    return columns, [[r.get(c) for c in columns] for r in rows]


class TensorBoardTracker:
    def __init__(self, run_dir: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(run_dir / "tensorboard"))

    def log(self, step: int, values: dict[str, float]) -> None:
        for key, value in _numbers(values).items():
            self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def log_samples(self, step: int, key: str, rows: list[dict[str, Any]]) -> None:
        columns, data = _table(rows)
        head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
        cells = lambda v: str(v).replace("|", "\\|").replace("\n", " ")  # noqa: E731
        body = "".join("| " + " | ".join(cells(v) for v in row) + " |\n" for row in data)
        self.writer.add_text(key, head + body, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class JsonlTracker:
    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / "metrics.jsonl"

    def log(self, step: int, values: dict[str, float]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps({"step": step, "time": time.time(), **values}) + "\n")

    def log_samples(self, step: int, key: str, rows: list[dict[str, Any]]) -> None:
        pass  # samples.parquet holds them; metrics.jsonl stays one flat row per step

    def close(self) -> None:
        pass


class WandbTracker:
    def __init__(self, run_dir: Path, run_name: str, config: dict[str, Any] | None) -> None:
        # Offline whatever the environment says: no network here, and never an API key.
        os.environ["WANDB_MODE"] = "offline"
        os.environ.setdefault("WANDB_SILENT", "true")
        folder = run_dir / "wandb"
        folder.mkdir(parents=True, exist_ok=True)
        # Its logs, staged tables and settings in this run's folder too, not in the home
        # folder: everything the run wrote stays together.
        for var, sub in (("CACHE", "cache"), ("DATA", "data"), ("CONFIG", "config")):
            os.environ[f"WANDB_{var}_DIR"] = str(folder / sub)
        import wandb

        self.wandb = wandb
        self.run = wandb.init(
            project="veriray",
            name=run_name,
            dir=str(run_dir),
            mode="offline",
            config=config or {},
            # No console capture (the CLI's progress bars) and no system-stats sampler thread.
            settings=wandb.Settings(console="off", x_disable_stats=True),
        )
        # The run's step goes back to 0 between stages (SFT warm start, RL updates, SFT arm),
        # and wandb drops a row whose own step goes back: rows take wandb's running step, and
        # every chart's x-axis is ours, logged as "step".
        self.run.define_metric("step")
        self.run.define_metric("*", step_metric="step")

    def log(self, step: int, values: dict[str, float]) -> None:
        self.run.log({**_numbers(values), "step": step})

    def log_samples(self, step: int, key: str, rows: list[dict[str, Any]]) -> None:
        columns, data = _table(rows)
        self.run.log({key: self.wandb.Table(columns=columns, data=data), "step": step})

    def close(self) -> None:
        self.run.finish()
        # finish() returns before wandb's service has written the run file out; teardown
        # waits for the service to end, so the offline run is whole when close returns.
        self.wandb.teardown()


class MlflowTracker:
    def __init__(self, run_dir: Path, run_name: str, config: dict[str, Any] | None) -> None:
        # MLflow 3 refuses a file store unless asked: it is what keeps this local (no server).
        os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
        from mlflow.tracking import MlflowClient

        self.uri = (run_dir / "mlruns").resolve().as_uri()
        self.client = MlflowClient(tracking_uri=self.uri)
        experiment = self.client.get_experiment_by_name(run_name)
        experiment_id = (
            experiment.experiment_id
            if experiment is not None
            else self.client.create_experiment(run_name)
        )
        self.run_id = self.client.create_run(experiment_id, run_name=run_name).info.run_id
        from mlflow.entities import Param

        params = [Param(k, v) for k, v in _flat(config or {}).items()]
        for start in range(0, len(params), 100):  # MLflow takes at most 100 params a batch
            self.client.log_batch(self.run_id, params=params[start : start + 100])

    def log(self, step: int, values: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, step) for k, v in _numbers(values).items()]
        if metrics:
            self.client.log_batch(self.run_id, metrics=metrics)

    def log_samples(self, step: int, key: str, rows: list[dict[str, Any]]) -> None:
        # log_table's own JSON layout, written with log_dict: log_table needs pandas.
        columns, data = _table(rows)
        name = f"{key}/step-{step:06d}.json"
        self.client.log_dict(self.run_id, {"columns": columns, "data": data}, name)

    def close(self) -> None:
        self.client.set_terminated(self.run_id)


def _flat(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """A nested config as MLflow params: dotted keys, values as text (MLflow caps them)."""
    out: dict[str, str] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out |= _flat(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = json.dumps(value, default=str)[:500]
    return out


def _need(name: str) -> None:
    """A tracker whose library is missing fails before the run starts, saying how to fix it."""
    import importlib.util

    module = {"wandb": "wandb", "mlflow": "mlflow"}.get(name)
    if module is not None and importlib.util.find_spec(module) is None:
        raise ImportError(
            f"tracking: {name} needs the {module} package, which is not installed "
            "(`make setup` installs it; elsewhere `pip install -e '.[tracking]'`), or drop "
            f"{name} from tracking"
        )


def make_trackers(
    names: list[str] | tuple[str, ...],
    run_dir: str | Path,
    run_name: str,
    config: dict[str, Any] | None = None,
) -> list[Tracker]:
    """One tracker per name, in order (names are checked by the experiment config)."""
    folder = Path(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    trackers: list[Tracker] = []
    for name in names:
        _need(name)
        if name == "tensorboard":
            trackers.append(TensorBoardTracker(folder))
        elif name == "jsonl":
            trackers.append(JsonlTracker(folder))
        elif name == "wandb":
            trackers.append(WandbTracker(folder, run_name, config))
        elif name == "mlflow":
            trackers.append(MlflowTracker(folder, run_name, config))
        else:
            raise ValueError(f"tracking: unknown tracker {name!r}; choose from {TRACKER_NAMES}")
    return trackers
