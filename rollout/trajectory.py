"""The trajectory record: one row per turn, the one schema shared by rollout, replay buffer,
learner and evaluation.

An episode is a conversation: observation -> response -> verdict -> feedback -> revised
response ... Every turn is a training sample, so a row is a turn; the turns of an episode share
``episode_id`` and are ordered by ``turn_index``. Batches cross actor boundaries as Arrow
record batches and are spilled / saved as Parquet with this schema.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import pyarrow as pa

SCHEMA_VERSION = 3  # 2: cached_prompt_tokens; 3: finish_reason


@dataclass
class TurnRecord:
    """One turn of one episode."""

    episode_id: str
    """Unique id of the episode (dedupe key with turn_index)."""
    turn_index: int
    """0-based position of this turn in its episode."""
    task_family: str
    """The task family's registered name (envs/families.py)."""
    task_state: str
    """JSON of the env's hidden task state (hand and target, or route and position)."""
    prompt_token_ids: list[int]
    """(P,) the whole conversation up to this turn, as the engine tokenised it."""
    response_token_ids: list[int]
    """(T,) the sampled response tokens."""
    behaviour_logprobs: list[float]
    """(T,) log-probs of the response tokens under the weights that sampled them."""
    response_text: str
    """The decoded response."""
    reward: float
    """This turn's reward from the verifier (plus episode-level penalties on the last turn)."""
    success: bool
    """The verifier accepted this response."""
    done: bool
    """Last turn of the episode (success, budget spent or route over)."""
    truncated: bool
    """The episode ended because the verification budget ran out."""
    verdict: str
    """JSON of the verdict fields (parse_ok, numbers_ok, action_ok, ...)."""
    policy_version: int
    """Version of the weights that generated the response (staleness = learner - this)."""
    group_id: str = ""
    """Episodes on the same task share it (group baselines such as GRPO)."""
    image_ref: str | None = None
    """Reference to the observation image in the image store (never pixels), or None."""
    worker_id: str = ""
    """Rollout worker that played the episode."""
    episode_success: bool = False
    """The whole episode succeeded (copied onto every turn for easy filtering)."""
    created_at: float = 0.0
    """Unix time the turn was generated."""
    cached_prompt_tokens: int = 0
    """Prompt tokens the engine's prefix cache served (not computed); prefill computed =
    len(prompt_token_ids) - this. 0 for engines without a prefix cache."""
    finish_reason: str = ""
    """Why the engine stopped: "stop" (end of turn or a stop token), "length" (cut at the
    token limit: a truncated response), "" when unknown."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Anything task-specific (stored as JSON)."""


_ARROW_TYPES: dict[str, pa.DataType] = {
    "episode_id": pa.string(),
    "turn_index": pa.int32(),
    "task_family": pa.string(),
    "task_state": pa.string(),
    "prompt_token_ids": pa.list_(pa.int32()),
    "response_token_ids": pa.list_(pa.int32()),
    "behaviour_logprobs": pa.list_(pa.float32()),
    "response_text": pa.string(),
    "reward": pa.float32(),
    "success": pa.bool_(),
    "done": pa.bool_(),
    "truncated": pa.bool_(),
    "verdict": pa.string(),
    "policy_version": pa.int64(),
    "group_id": pa.string(),
    "image_ref": pa.string(),
    "worker_id": pa.string(),
    "episode_success": pa.bool_(),
    "created_at": pa.float64(),
    "cached_prompt_tokens": pa.int32(),
    "finish_reason": pa.string(),
    "extra": pa.string(),
}
assert list(_ARROW_TYPES) == [f.name for f in fields(TurnRecord)], "schema and record drifted"

TRAJECTORY_SCHEMA = pa.schema(
    [pa.field(name, tp, nullable=(name == "image_ref")) for name, tp in _ARROW_TYPES.items()],
    metadata={"veriray.trajectory.version": str(SCHEMA_VERSION)},
)


def to_record_batch(turns: list[TurnRecord]) -> pa.RecordBatch:
    """Turns -> one Arrow record batch with TRAJECTORY_SCHEMA."""
    columns: dict[str, list[Any]] = {name: [] for name in _ARROW_TYPES}
    for turn in turns:
        row = asdict(turn)
        row["extra"] = json.dumps(row["extra"], sort_keys=True)
        for name in columns:
            columns[name].append(row[name])
    return pa.RecordBatch.from_pydict(columns, schema=TRAJECTORY_SCHEMA)


def from_table(table: pa.Table | pa.RecordBatch) -> list[TurnRecord]:
    """Arrow rows -> turns (the inverse of to_record_batch)."""
    turns = []
    for row in table.to_pylist():
        row["extra"] = json.loads(row["extra"]) if row["extra"] else {}
        turns.append(TurnRecord(**row))
    return turns
