"""What the model wrote, at every evaluation point and RL update: ``<run_dir>/samples.parquet``.

One row per turn of every evaluation episode: where it was played (stage, step, training seed,
suite), which prompt (its stable id, the task state and the first user turn's text), the
response, the parsed answer, the reward, the verdict and whether the episode succeeded. A
reader can see exactly what a curve point is made of; the per-prompt outcomes in the points
come from the same episodes. Each RL update adds the first few turns of its training batch
(suite ``train``, at most ``samples_per_step`` rows), so a reader sees what was trained on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

SAMPLES_FILE = "samples.parquet"
TRAIN_SUITE = "train"  # the suite column of an RL update's training rows
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
        ("reward", pa.float64()),  # the turn's reward as the verifier gave it
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
                    "reward": float(t.reward),
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
        table = pa.concat_tables([_read(path), table])
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
        for r in _read(path).to_pylist()
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
    return _read(Path(run_dir) / SAMPLES_FILE)


def _read(path: Path) -> pa.Table:
    """The file in today's schema: a column an older run's file lacks (reward) comes back
    null, so a resumed run appends to it."""
    table = pq.read_table(path)
    columns = [
        table.column(f.name).cast(f.type)
        if f.name in table.column_names
        else pa.nulls(len(table), f.type)
        for f in SCHEMA
    ]
    return pa.Table.from_arrays(columns, schema=SCHEMA)


def first_rows(rows: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """At most ``limit`` rows per suite, in order: the trackers' bounded samples table. The
    evaluation suites play the same prompts at every point, so the same prompts head each
    point's table and a reader compares one prompt's answers across the run."""
    taken: dict[str, int] = {}
    out = []
    for r in rows:
        if taken.get(r["suite"], 0) < limit:
            taken[r["suite"]] = taken.get(r["suite"], 0) + 1
            out.append(r)
    return out


def train_rows(
    point: dict[str, Any],
    family_name: str,
    specs: list[Any],
    episodes: list[Any],
    limit: int,
) -> list[dict[str, Any]]:
    """The first ``limit`` turns of an RL update's batch as samples rows (suite ``train``).

    ``specs`` are the update's episode specs (EpisodeSpec): an episode's prompt is its env's
    first user turn, rebuilt from the spec's reset options as the evaluation builds its own
    (episodes a refill round added have no spec here and are skipped)."""
    from envs.families import family

    by_id = {s.episode_id: s for s in specs}
    picked = [e for e in episodes if e.episode_id in by_id]
    rows: list[dict[str, Any]] = []
    envs: dict[str, Any] = {}
    for ep in picked:
        if len(rows) >= limit:
            break
        spec = by_id[ep.episode_id]
        key = json.dumps(spec.config, sort_keys=True, default=str)
        if key not in envs:
            envs[key] = family(family_name).make_env(spec.config)
        options = dict(spec.reset_options)
        seed = options.pop("seed", None)  # as the env actors reset: a seed deals a fresh task
        obs, _ = envs[key].reset(seed=seed, options=options or None)
        prompt = str(obs.get("text", ""))
        pid = spec.group_id or spec.episode_id
        rows += sample_rows(point, TRAIN_SUITE, [pid], [prompt], [ep])[: limit - len(rows)]
    return rows
