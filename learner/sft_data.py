"""Expert conversations for the SFT stage, written as Parquet.

The rows come from the task family (``TaskFamily.sft_examples``, in the format of
envs/sft_rows.py); this module only stores and reads them. One Parquet row = one training
conversation ending in an expert assistant turn (messages, image_ref, task_family,
task_config, task_state: see envs/sft_rows.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

SFT_SCHEMA = pa.schema(
    [
        pa.field("messages", pa.string(), nullable=False),
        pa.field("image_ref", pa.string()),
        pa.field("task_family", pa.string(), nullable=False),
        pa.field("task_config", pa.string(), nullable=False),
        pa.field("task_state", pa.string(), nullable=False),
    ]
)


def write_sft_parquet(rows: Iterable[dict[str, Any]], path: str | Path) -> int:
    """Write rows with SFT_SCHEMA; returns the row count."""
    table = pa.Table.from_pylist(list(rows), schema=SFT_SCHEMA)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, str(path))
    return table.num_rows


def read_sft_parquet(path: str | Path) -> list[dict[str, Any]]:
    """Rows with ``messages`` decoded to a list."""
    rows = pq.read_table(str(path)).to_pylist()
    for r in rows:
        r["messages"] = json.loads(r["messages"])
    return rows
