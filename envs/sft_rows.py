"""The row format of SFT examples, shared by every family that supplies them.

One row = one training conversation ending in an expert assistant turn:
  messages     JSON list of chat messages, rendered exactly as the rollout runner renders them
               (rollout/runner.py: user content is a string, or [image part, text part] for
               the newest observation; only that one keeps its image)
  image_ref    the newest observation's image in the image store (None for text tasks)
  task_family  the family's name
  task_config  JSON of the env config the conversation was played under
  task_state   JSON of the env's hidden state at the start of the episode
"""

from __future__ import annotations

import json
from typing import Any


def user_message(text: str, with_image: bool) -> dict[str, Any]:
    """A user turn, with an image part first when the observation has one."""
    if with_image:
        return {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}
    return {"role": "user", "content": text}


def text_only(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Earlier observations lose their image (one image per prompt, the newest)."""
    out = []
    for m in messages:
        content = m["content"]
        if not isinstance(content, str):
            content = next(p["text"] for p in content if p["type"] == "text")
        out.append({"role": m["role"], "content": content})
    return out


def sft_row(
    messages: list[dict[str, Any]],
    image_ref: str | None,
    task_family: str,
    config: dict[str, Any],
    state: Any,
) -> dict[str, Any]:
    """One SFT row (see the module docstring)."""
    return {
        "messages": json.dumps(messages),
        "image_ref": image_ref,
        "task_family": task_family,
        "task_config": json.dumps(config, sort_keys=True, default=str),
        "task_state": json.dumps(state, sort_keys=True, default=str),
    }
