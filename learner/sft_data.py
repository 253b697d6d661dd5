"""Expert conversations for the SFT stage, written as Parquet, from the env oracles.

One Parquet row = one training conversation ending in an expert assistant turn:
  messages     JSON list of chat messages, rendered exactly as the rollout runner renders them
               (rollout/runner.py: user content is a string, or [image part, text part] for
               the newest observation; only that one keeps its image)
  image_ref    the newest observation's image in the image store (None for text tasks)
  task_family  "generalpoints" | "virl"
  task_config  JSON of the env config the conversation was played under
  task_state   JSON of the env's hidden state at the start of the episode

GeneralPoints: single-turn, as in the study (the dealt hand -> the solver's answer; no
revisions). V-IRL: one row per expert step, holding the conversation so far (earlier expert
answers and the env's replies), so every decision along the route is a training target.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from envs.families import family

SFT_SCHEMA = pa.schema(
    [
        pa.field("messages", pa.string(), nullable=False),
        pa.field("image_ref", pa.string()),
        pa.field("task_family", pa.string(), nullable=False),
        pa.field("task_config", pa.string(), nullable=False),
        pa.field("task_state", pa.string(), nullable=False),
    ]
)
VIRL_MAX_STEPS = 200  # an expert walk longer than this means a broken route: fail loudly


def _user(text: str, with_image: bool) -> dict[str, Any]:
    if with_image:
        return {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}
    return {"role": "user", "content": text}


def _text_only(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Earlier observations lose their image (one image per prompt, the newest)."""
    out = []
    for m in messages:
        content = m["content"]
        if not isinstance(content, str):
            content = next(p["text"] for p in content if p["type"] == "text")
        out.append({"role": m["role"], "content": content})
    return out


def generalpoints_examples(
    config: dict[str, Any], n: int, seed: int, image_store: Any = None, thought: bool = False
) -> Iterator[dict[str, Any]]:
    """n single-turn expert answers on hands dealt from the config's split."""
    from envs.generalpoints.oracle import oracle_answer

    env = family("generalpoints").make_env(config)
    for i in range(n):
        obs, info = env.reset(seed=seed + i)
        ref = image_store.put(obs["image"]) if image_store is not None and "image" in obs else None
        messages = [
            _user(obs["text"], ref is not None),
            {"role": "assistant", "content": oracle_answer(env.task, thought=thought)},
        ]
        yield _row(messages, ref, "generalpoints", config, info["task_state"])


def virl_examples(
    config: dict[str, Any], n_routes: int, seed: int, image_store: Any = None
) -> Iterator[dict[str, Any]]:
    """One row per expert step of n routes; each holds the conversation so far."""
    env = family("virl").make_env(config)
    for i in range(n_routes):
        obs, info = env.reset(seed=seed + i)
        state = info["task_state"]
        history: list[dict[str, Any]] = []
        for _ in range(VIRL_MAX_STEPS):
            ref = None
            if image_store is not None and obs.get("image") is not None:
                ref = image_store.put(obs["image"])
            expert = {"role": "assistant", "content": env.expert_answer()}
            messages = [*_text_only(history), _user(obs["text"], ref is not None), expert]
            yield _row(messages, ref, "virl", config, state)
            history = messages
            obs, _, terminated, truncated, _ = env.step(expert["content"])
            if terminated or truncated:
                break
        else:
            raise RuntimeError(f"expert walk of route {i} exceeded {VIRL_MAX_STEPS} steps")


def _row(
    messages: list[dict[str, Any]],
    image_ref: str | None,
    task_family: str,
    config: dict[str, Any],
    state: Any,
) -> dict[str, Any]:
    return {
        "messages": json.dumps(messages),
        "image_ref": image_ref,
        "task_family": task_family,
        "task_config": json.dumps(config, sort_keys=True, default=str),
        "task_state": json.dumps(state, sort_keys=True, default=str),
    }


def write_sft_parquet(
    rows: Iterator[dict[str, Any]] | list[dict[str, Any]], path: str | Path
) -> int:
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
