"""Atomic training checkpoints: a checkpoint is either complete or ignored.

A checkpoint is written into a hidden sibling folder (``.update-000006.partial-<random>``),
every file is fsynced, a completion marker listing every file's size and BLAKE2b hash is
written (and fsynced) last, and only then is the folder renamed to ``update-000006``. A crash at
any moment leaves either the previous checkpoints untouched plus a partial folder that resume
skips, or a complete new one. ``--resume`` takes the newest folder whose marker matches its
files and says which ones it skipped and why.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

CHECKPOINTS_DIR = "checkpoints"
MARKER_FILE = "COMPLETE.json"
"""Written last: {"files": {relative path: {"bytes": n, "blake2b": hex}}}."""
PREFIX = "update-"
_HASH_CHUNK = 8 << 20


def checkpoint_name(update: int) -> str:
    return f"{PREFIX}{update:06d}"


def checkpoint_update(folder: Path) -> int:
    """The update count a checkpoint folder holds (``update-000006`` -> 6)."""
    return int(folder.name.removeprefix(PREFIX))


def _digest(path: Path) -> str:
    h = hashlib.blake2b(digest_size=32)
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MARKER_FILE)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def seal(folder: Path) -> dict[str, dict[str, int | str]]:
    """fsync every file of ``folder``, then write and fsync the completion marker."""
    files: dict[str, dict[str, int | str]] = {}
    for path in _files(folder):
        _fsync(path)
        files[str(path.relative_to(folder))] = {
            "bytes": path.stat().st_size,
            "blake2b": _digest(path),
        }
    marker = folder / MARKER_FILE
    marker.write_text(json.dumps({"files": files}, indent=1, sort_keys=True))
    _fsync(marker)
    for sub in {p.parent for p in _files(folder)} | {folder}:
        _fsync(sub)  # the directory entries too
    return files


def incomplete_reason(folder: Path, check_hashes: bool = True) -> str | None:
    """None when ``folder`` is a complete checkpoint, else why it is not."""
    marker = folder / MARKER_FILE
    if not marker.is_file():
        return "no completion marker (a save that did not finish, or an older veriray)"
    try:
        files = json.loads(marker.read_text())["files"]
    except (ValueError, KeyError, TypeError):
        return f"unreadable {MARKER_FILE}"
    for rel, meta in files.items():
        path = folder / rel
        if not path.is_file():
            return f"{rel} is missing"
        if path.stat().st_size != meta.get("bytes"):
            return f"{rel} has {path.stat().st_size} bytes, the marker says {meta.get('bytes')}"
        if check_hashes and _digest(path) != meta.get("blake2b"):
            return f"{rel} does not match its hash"
    return None


def save_atomically(parent: Path, update: int, write: Callable[[Path], None]) -> Path:
    """Run ``write(tmp)`` into a partial folder under ``parent``, seal it, rename it into place.

    A complete checkpoint of the same update already there (a replay after resume) is moved
    aside first and removed after the rename, so some complete copy exists at every moment.
    """
    parent.mkdir(parents=True, exist_ok=True)
    final = parent / checkpoint_name(update)
    tmp = parent / f".{final.name}.partial-{uuid.uuid4().hex[:12]}"
    write(tmp)
    seal(tmp)
    old = None
    if final.exists():
        old = parent / f".{final.name}.replaced-{uuid.uuid4().hex[:12]}"
        final.rename(old)
    tmp.rename(final)
    _fsync(parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    # Left by saves that a crash cut short (resume reported them): a newer complete save
    # makes them worthless, and one writer per checkpoint folder means none is in flight.
    for leftover in [*parent.glob(f".{PREFIX}*.partial-*"), *parent.glob(f".{PREFIX}*.replaced-*")]:
        shutil.rmtree(leftover, ignore_errors=True)
    return final


def newest_complete(parent: Path, check_hashes: bool = True) -> tuple[Path | None, list[str]]:
    """(the newest complete checkpoint under ``parent`` or None, a line per folder skipped)."""
    if not parent.is_dir():
        return None, []
    skipped = [
        f"{p.name}: a save that did not finish"
        for p in sorted(parent.glob(f".{PREFIX}*.partial-*"))
    ]
    for folder in sorted(parent.glob(f"{PREFIX}*"), reverse=True):
        reason = incomplete_reason(folder, check_hashes)
        if reason is None:
            return folder, skipped
        skipped.append(f"{folder.name}: {reason}")
    return None, skipped
