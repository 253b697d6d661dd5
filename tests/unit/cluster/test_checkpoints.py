"""Atomic checkpoints: complete under the final name or skipped, with the reason said."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cluster.checkpoints import (
    MARKER_FILE,
    checkpoint_update,
    incomplete_reason,
    newest_complete,
    save_atomically,
)
from evaluation.evaluator import load_records


def _write(files: dict[str, bytes]):
    def write(folder: Path) -> None:
        for rel, data in files.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(data)

    return write


def test_a_saved_checkpoint_is_complete_and_named_by_its_update(tmp_path: Path) -> None:
    folder = save_atomically(tmp_path, 3, _write({"a.bin": b"x" * 100, "ds/b.pt": b"y"}))
    assert folder.name == "update-000003" and checkpoint_update(folder) == 3
    assert incomplete_reason(folder) is None
    marker = json.loads((folder / MARKER_FILE).read_text())
    assert set(marker["files"]) == {"a.bin", "ds/b.pt"}
    assert [p.name for p in tmp_path.iterdir()] == ["update-000003"]  # no temp left


def test_a_crash_inside_the_save_leaves_only_a_partial_folder(tmp_path: Path) -> None:
    save_atomically(tmp_path, 1, _write({"a.bin": b"1"}))

    def crash(folder: Path) -> None:
        _write({"a.bin": b"2"})(folder)
        raise KeyboardInterrupt  # stands for the process dying mid-write

    with pytest.raises(KeyboardInterrupt):
        save_atomically(tmp_path, 2, crash)
    found, skipped = newest_complete(tmp_path)
    assert found is not None and found.name == "update-000001"
    assert len(skipped) == 1 and "did not finish" in skipped[0]


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda f: (f / MARKER_FILE).unlink(), "no completion marker"),
        (lambda f: (f / "a.bin").write_bytes(b"z" * 3), "a.bin does not match its hash"),
        (lambda f: (f / "a.bin").write_bytes(b"z"), "a.bin has 1 bytes"),
        (lambda f: (f / "a.bin").unlink(), "a.bin is missing"),
        (lambda f: (f / MARKER_FILE).write_text("{"), "unreadable"),
    ],
)
def test_resume_skips_damaged_checkpoints_and_says_why(tmp_path: Path, damage, reason) -> None:
    save_atomically(tmp_path, 1, _write({"a.bin": b"old"}))
    newer = save_atomically(tmp_path, 2, _write({"a.bin": b"new"}))
    damage(newer)
    found, skipped = newest_complete(tmp_path)
    assert found is not None and found.name == "update-000001"
    assert skipped == [f"update-000002: {incomplete_reason(newer)}"]
    assert reason in skipped[0]


def test_saving_an_update_again_replaces_it_whole(tmp_path: Path) -> None:
    save_atomically(tmp_path, 2, _write({"a.bin": b"first", "gone.bin": b"x"}))
    folder = save_atomically(tmp_path, 2, _write({"a.bin": b"second"}))
    assert (folder / "a.bin").read_bytes() == b"second"
    assert not (folder / "gone.bin").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["update-000002"]


def test_no_checkpoints_is_none(tmp_path: Path) -> None:
    assert newest_complete(tmp_path / "missing") == (None, [])
    assert newest_complete(tmp_path) == (None, [])


def test_a_torn_last_line_of_the_points_is_dropped(tmp_path: Path) -> None:
    (tmp_path / "p.jsonl").write_text('{"step": 1}\n{"step": 2}\n{"ste')
    assert load_records(tmp_path, "p.jsonl") == [{"step": 1}, {"step": 2}]


def test_a_bad_line_in_the_middle_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "p.jsonl").write_text('{"step": 1}\nnot json\n{"step": 2}\n')
    with pytest.raises(ValueError, match="line 2 is not JSON"):
        load_records(tmp_path, "p.jsonl")
