"""The controller's transport comes from rollout.weight_sync (the NCCL one needs GPUs and is
covered by the gpu-marked integration test). The shared-memory hand-off is private: a folder
per run that no one can guess, claim first or enter, and files that are 0600 and never written
through a symlink."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch

from learner.engine_weights import write_private_text, write_safetensors_in_place
from learner.weight_sync import SharedMemoryTransport, make_transport, private_weights_dir
from rollout.config import RolloutConfig


def test_shm_config_builds_the_shared_memory_transport() -> None:
    transport = make_transport(RolloutConfig(weight_sync="shm"), None, None, "unit-run")
    assert isinstance(transport, SharedMemoryTransport)
    assert transport.root.name.startswith("veriray-unit-run-")
    assert transport.root.is_dir()
    transport.close()
    assert not transport.root.exists()


def test_the_folder_is_private_and_unique_per_run(tmp_path: Path) -> None:
    a = private_weights_dir("same-name", base=tmp_path)
    b = private_weights_dir("same-name", base=tmp_path)
    assert a != b  # two runs with one name on one machine do not collide
    for folder in (a, b):
        info = os.lstat(folder)
        assert stat.S_ISDIR(info.st_mode)
        assert stat.S_IMODE(info.st_mode) == 0o700
        assert info.st_uid == os.getuid()


@pytest.mark.parametrize("name", ["..", ".", "", "a/b", "../x", ".hidden", "x" * 101, "a b"])
def test_run_names_that_are_not_plain_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="not a plain name"):
        private_weights_dir(name, base=tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing made, nothing deleted


def test_closing_one_run_leaves_the_other_runs_files(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("learner.weight_sync.SHM_ROOT", tmp_path)
    keep = tmp_path / "someone-elses-file"
    keep.write_text("x")
    first = SharedMemoryTransport(None, None, "run")
    second = SharedMemoryTransport(None, None, "run")
    first.close()
    assert second.root.is_dir() and keep.read_text() == "x"
    second.close()


def test_weight_files_are_0600_and_a_planted_symlink_is_not_followed(tmp_path: Path) -> None:
    tensors = {"w": torch.ones(4)}
    path = tmp_path / "model.safetensors"
    write_safetensors_in_place(tensors, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    write_private_text(tmp_path / "config.json", "{}")
    assert stat.S_IMODE((tmp_path / "config.json").stat().st_mode) == 0o600

    victim = tmp_path / "victim"
    victim.write_text("precious")
    planted = tmp_path / "planted.json"
    planted.symlink_to(victim)
    with pytest.raises(OSError):
        write_private_text(planted, "{}")
    assert victim.read_text() == "precious"
