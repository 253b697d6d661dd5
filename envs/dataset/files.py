"""Rows from a Parquet file, a JSON Lines file, or a folder a Hugging Face dataset was saved to.

A saved dataset (``Dataset.save_to_disk``) is a folder of Arrow stream files listed in its
``state.json``; it is read with pyarrow, so the ``datasets`` library is not needed.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

FORMATS = "a .parquet file, a .jsonl file, or a folder saved by datasets' save_to_disk"


class DataFileError(ValueError):
    """A data file is missing, unreadable or lacks a column; the message says which."""


def _arrow_files(folder: Path) -> list[Path]:
    if (folder / "dataset_dict.json").is_file():
        splits = json.loads((folder / "dataset_dict.json").read_text()).get("splits", [])
        raise DataFileError(
            f"{folder} holds several splits {splits}: name one split's folder, e.g. "
            f"{folder / (splits[0] if splits else 'train')}"
        )
    state = folder / "state.json"
    if not state.is_file():
        raise DataFileError(f"{folder} is a folder but not a saved dataset (no state.json)")
    files = [folder / f["filename"] for f in json.loads(state.read_text()).get("_data_files", [])]
    if not files:
        raise DataFileError(f"{folder}/state.json lists no data files")
    return files


def _read_arrow(path: Path) -> pa.Table:
    with pa.memory_map(str(path)) as source:
        try:
            return pa.ipc.open_stream(source).read_all()
        except pa.ArrowInvalid:
            source.seek(0)
            return pa.ipc.open_file(source).read_all()


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open() as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataFileError(f"{path}: line {i} is not JSON ({err})") from err
            if not isinstance(row, dict):
                raise DataFileError(f"{path}: line {i} is not a JSON object")
            rows.append(row)
    return rows


def _check_path(path: Path) -> None:
    if not path.exists():
        raise DataFileError(f"{path}: not found ({FORMATS})")
    if path.is_file() and path.suffix not in (".parquet", ".jsonl"):
        raise DataFileError(f"{path}: unknown format {path.suffix!r}; use {FORMATS}")


def columns(path: str | Path) -> list[str]:
    """The file's column names, read cheaply (a Parquet schema, a JSONL file's first row);
    cached per file version (every env built from a config checks them)."""
    p = Path(path)
    _check_path(p)
    stat = p.stat()
    return list(_columns(str(p.resolve()), stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=64)
def _columns(name: str, mtime_ns: int, size: int) -> tuple[str, ...]:
    del mtime_ns, size  # cache key only
    return tuple(_read_columns(Path(name)))


def _read_columns(path: Path) -> list[str]:
    if path.suffix == ".parquet":
        return list(pq.read_schema(str(path)).names)
    if path.suffix == ".jsonl":
        with path.open() as f:
            first = next((line for line in f if line.strip()), None)
        if first is None:
            raise DataFileError(f"{path}: no rows")
        try:
            return list(json.loads(first))
        except (json.JSONDecodeError, TypeError) as err:
            raise DataFileError(f"{path}: line 1 is not a JSON object") from err
    return list(_read_arrow(_arrow_files(path)[0]).schema.names)


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """Every row as a plain dict (JSON-able Python values), cached per file version."""
    p = Path(path)
    _check_path(p)
    stat = p.stat()
    return _read_rows(str(p.resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=16)
def _read_rows(path: str, mtime_ns: int, size: int) -> list[dict[str, Any]]:
    del mtime_ns, size  # part of the cache key only: an edited file is read again
    p = Path(path)
    if p.suffix == ".jsonl":
        rows = _read_jsonl(p)
    elif p.suffix == ".parquet":
        rows = pq.read_table(path).to_pylist()
    else:
        rows = pa.concat_tables([_read_arrow(f) for f in _arrow_files(p)]).to_pylist()
    if not rows:
        raise DataFileError(f"{path}: no rows")
    return rows
