"""What the model wrote at every evaluation point: ``<run_dir>/samples.parquet``.

One row per turn of every evaluation episode: where it was played (stage, step, training seed,
suite), which prompt (its stable id, the task state and the first user turn's text), the
response, the parsed answer, the verdict and whether the episode succeeded. A reader can see
exactly what a curve point is made of; the per-prompt outcomes in the points come from the
same episodes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

SAMPLES_FILE = "samples.parquet"
SCHEMA = pa.schema(
    [
        ("stage", pa.string()),
        ("step", pa.int64()),
        ("seed", pa.int64()),  # null for the points every seed shares (base, init)
        ("suite", pa.string()),
        ("prompt_id", pa.string()),
        ("task_state", pa.string()),
        ("prompt", pa.string()),  # the first user turn
        ("turn", pa.int64()),
        ("response", pa.string()),
        ("parsed_answer", pa.string()),  # GP: the formula as scored; V-IRL: the action
        ("verdict", pa.string()),  # JSON: every field the verifier checked
        ("turn_success", pa.bool_()),
        ("episode_success", pa.bool_()),
    ]
)


def _parsed(verdict: dict[str, Any]) -> str:
    value = verdict.get("formula", verdict.get("got_action"))
    return "" if value is None else str(value)


def sample_rows(
    point: dict[str, Any], suite: str, ids: list[str], prompts: list[str], episodes: list[Any]
) -> list[dict[str, Any]]:
    """The rows of one suite at one point (episodes in the order of ``ids``)."""
    rows = []
    for pid, prompt, ep in zip(ids, prompts, episodes, strict=True):
        for t in ep.turns:
            verdict = json.loads(t.verdict) if t.verdict else {}
            rows.append(
                {
                    "stage": point["stage"],
                    "step": point["step"],
                    "seed": point.get("seed"),
                    "suite": suite,
                    "prompt_id": pid,
                    "task_state": t.task_state,
                    "prompt": prompt,
                    "turn": t.turn_index,
                    "response": t.response_text,
                    "parsed_answer": _parsed(verdict),
                    "verdict": t.verdict,
                    "turn_success": bool(t.success),
                    "episode_success": bool(ep.success),
                }
            )
    return rows


def append_samples(run_dir: str | Path, rows: list[dict[str, Any]]) -> Path:
    """Add rows to the run's samples.parquet (rewritten whole: it stays one file)."""
    path = Path(run_dir) / SAMPLES_FILE
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    if path.is_file():
        table = pa.concat_tables([pq.read_table(path, schema=SCHEMA), table])
    _write(table, path)
    return path


def drop_samples(run_dir: str | Path, stage: str, seed: int | None, after_step: int = -1) -> None:
    """Forget a stage's rows (of one seed, when given; past ``after_step``) before the stage
    is replayed."""
    path = Path(run_dir) / SAMPLES_FILE
    if not path.is_file():
        return
    rows = [
        r
        for r in pq.read_table(path, schema=SCHEMA).to_pylist()
        if not (
            r["stage"] == stage and (seed is None or r["seed"] == seed) and r["step"] > after_step
        )
    ]
    _write(pa.Table.from_pylist(rows, schema=SCHEMA), path)


def _write(table: pa.Table, path: Path) -> None:
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)  # a crash mid-write never leaves half a file


def load_samples(run_dir: str | Path) -> pa.Table:
    """Every row the run's evaluation points wrote so far."""
    return pq.read_table(Path(run_dir) / SAMPLES_FILE, schema=SCHEMA)
