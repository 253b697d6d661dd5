"""Hand-built episodes and a model-free fleet for the evaluation unit tests."""

from __future__ import annotations

import json
from typing import Any

from rollout.runner import EpisodeResult, EpisodeSpec
from rollout.trajectory import TurnRecord


def turn(
    success: bool,
    verdict: dict[str, Any] | None = None,
    task_state: dict[str, Any] | None = None,
    prompt_len: int = 10,
    response_len: int = 4,
) -> TurnRecord:
    return TurnRecord(
        episode_id="e",
        turn_index=0,
        task_family="generalpoints",
        task_state=json.dumps(task_state or {}),
        prompt_token_ids=[1] * prompt_len,
        response_token_ids=[2] * response_len,
        behaviour_logprobs=[-0.5] * response_len,
        response_text='{"formula": "1+1"}',
        reward=5.0 if success else -1.0,
        success=success,
        done=success,
        truncated=False,
        verdict=json.dumps(verdict or {}),
        policy_version=0,
    )


def gp_episode(ranks: list[str], turn_success: list[bool], cards_ok: bool | None = None):
    """A GP episode: one turn per attempt; the first verdict carries cards_ok."""
    state = {"cards": [{"rank": r, "suit": "S"} for r in ranks], "target": 3}
    turns = [
        turn(ok, {"cards_ok": cards_ok if i == 0 else None, "success": ok}, state)
        for i, ok in enumerate(turn_success)
    ]
    success = any(turn_success)
    return EpisodeResult("gp", success, turns, {"verdict": {"success": success}})


def virl_episode(steps_correct: int, steps_total: int, n_turns: int = 1) -> EpisodeResult:
    metrics = {
        "steps_correct": steps_correct,
        "steps_total": steps_total,
        "step_accuracy": steps_correct / steps_total,
        "route_success": steps_correct == steps_total,
    }
    turns = [turn(True, {"action_ok": True}, {"route_id": "r"}) for _ in range(n_turns)]
    return EpisodeResult("v", metrics["route_success"], turns, {"metrics": metrics})


class FakeFleet:
    """Plays GP specs without a model: episode i succeeds on its first try when i % 2 == 0,
    otherwise fails every attempt of its budget (so the budget shows in mean_turns)."""

    def __init__(self) -> None:
        self.calls: list[list[EpisodeSpec]] = []

    def play(self, specs: list[EpisodeSpec], progress: Any = None) -> list[EpisodeResult]:
        self.calls.append(specs)
        if progress is not None:
            progress(len(specs))
        out = []
        for spec in specs:
            i = int(spec.episode_id.rsplit("-", 1)[1])
            ranks = [c["rank"] for c in spec.reset_options["task_state"]["cards"]]
            attempts = [True] if i % 2 == 0 else [False] * spec.config["viter"]
            out.append(gp_episode(ranks, attempts))
        return out


class NavFleet:
    """Plays V-IRL specs without a model: every route solves 1 of its 2 steps."""

    def __init__(self) -> None:
        self.calls: list[list[EpisodeSpec]] = []

    def play(self, specs: list[EpisodeSpec], progress: Any = None) -> list[EpisodeResult]:
        self.calls.append(specs)
        if progress is not None:
            progress(len(specs))
        return [virl_episode(1, 2) for _ in specs]
