"""Library chatter goes to the run folder's logs; --verbose brings it back to the console."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pytest

from cluster.run_logs import (
    DRIVER_LOG,
    VERBOSE_ENV,
    collect_worker_logs,
    driver_logs,
    quiet_worker_env,
    verbose,
)


def test_driver_warnings_and_logs_go_to_the_run_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(VERBOSE_ENV, raising=False)
    ray_logger = logging.getLogger("ray")
    before = (ray_logger.propagate, logging.getLogger().level)
    # As vLLM leaves its logger once an engine has run in this process: its own console
    # handler, no propagation.
    vllm_logger = logging.getLogger("vllm")
    vllm_console = logging.StreamHandler()
    monkeypatch.setattr(vllm_logger, "handlers", [vllm_console])
    monkeypatch.setattr(vllm_logger, "propagate", False)
    with driver_logs(tmp_path) as folder:
        warnings.warn("a library's deprecation notice", FutureWarning, stacklevel=1)
        logging.getLogger("vllm.engine").warning("engine chatter")
        ray_logger.info("Started a local Ray instance.")
    text = (folder / DRIVER_LOG).read_text()
    assert folder == tmp_path / "logs"
    for line in ("a library's deprecation notice", "engine chatter", "Started a local Ray"):
        assert line in text
    captured = capsys.readouterr()
    assert "chatter" not in captured.err + captured.out
    assert "deprecation" not in captured.err + captured.out
    assert (ray_logger.propagate, logging.getLogger().level) == before  # put back
    assert vllm_logger.handlers == [vllm_console] and not vllm_logger.propagate


def test_verbose_shows_warnings_on_the_console_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(VERBOSE_ENV, "1")
    assert verbose() and quiet_worker_env() == {}
    with driver_logs(tmp_path) as folder:
        logging.getLogger("deepspeed").warning("zero stage note")
    assert "zero stage note" in capsys.readouterr().err
    assert "zero stage note" in (folder / DRIVER_LOG).read_text()


def test_actors_log_quietly_unless_verbose(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VERBOSE_ENV, "0")
    monkeypatch.delenv("VLLM_LOGGING_LEVEL", raising=False)
    env = quiet_worker_env()
    assert env["VLLM_LOGGING_LEVEL"] == "WARNING" and env["TQDM_DISABLE"] == "1"
    monkeypatch.setenv("VLLM_LOGGING_LEVEL", "DEBUG")  # the user's own setting is kept
    assert "VLLM_LOGGING_LEVEL" not in quiet_worker_env()


def test_worker_logs_are_copied_into_the_run_folder(tmp_path: Path) -> None:
    session = tmp_path / "session" / "logs"  # laid out as Ray's session logs folder
    session.mkdir(parents=True)
    (session / "worker-abc-01000000-123.out").write_text(":actor_name:RolloutWorker\nWARNING x\n")
    (session / "worker-abc-01000000-123.err").write_text("")  # empty: skipped
    (session / "raylet.out").write_text("not an actor's")
    target = collect_worker_logs(tmp_path / "run", session)
    assert target == tmp_path / "run" / "logs" / "workers"
    assert [p.name for p in target.iterdir()] == ["worker-abc-01000000-123.out"]
    assert collect_worker_logs(tmp_path / "run", tmp_path / "missing") is None
