"""V-IRL navigation as a gymnasium environment (multi-turn, text or image observations).

An episode walks one route. Each step the agent answers with a JSON object (observation,
instruction, action); the verifier scores it. A correct answer advances to the next oracle
step; a wrong one gets feedback and another try, up to ``tries_per_point`` tries per step,
after which the route fails. The episode terminates when the agent stops at the destination
or the route fails.

Observation: {"text": the next user turn} plus {"image": (2S, 2S, 3) uint8 grid of street views
[front, right / back, left]} in image mode. Action: the response text.

info: "task_state" (JSON-able, what the verifier scores against; also accepted back by
``reset(options={"task_state": ...})``), "route_id", and after each step "verdict" (the
Verdict as a dict) and "metrics" (per-step accuracy and route success as the study counts
them):
- step_correct: this turn was correct
- steps_correct / steps_total: turns that were correct / steps the study counts: every turn,
  plus one for a route that the spent budget ends (the study scores that ending as one more
  wrong step)
- step_accuracy: steps_correct / steps_total (the study's per-step accuracy; pooled over routes
  by the evaluation)
- attempt_accuracy: correct turns / turns taken
- oracle_steps_solved / oracle_steps, route_progress: how far along the route the agent got
- landmarks_correct / landmarks_checked (image mode): turns whose observation named exactly
  the landmarks in view (landmark recognition, V-IRL-VL)
- route_done, route_success: the agent stopped at the destination before a budget ran out
"""

from __future__ import annotations

import string
from collections import OrderedDict
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.virl.config import VirlConfig
from envs.virl.oracle import OracleStep, expert_answer, oracle_steps
from envs.virl.pools import ViewSource, route_pool
from envs.virl.prompts import failure_turn, final_turn, first_prompt, success_turn
from envs.virl.render import compose_grid, grid_headings
from envs.virl.routes import Route
from verifier.base import Verdict, verify_total
from verifier.virl import VirlVerifier

MAX_TEXT_CHARS = 32_768
"""Room for the longest prompt (~3k chars) and any model response we would score."""
CHARSET = (
    string.printable
    + "".join(chr(c) for c in range(0xA0, 0x180))
    + "\u2018\u2019\u201c\u201d\u2013\u2014\u2026"
)
"""Printable ASCII plus Latin-1/Latin Extended-A and typographic punctuation (the gymnasium
default is alphanumeric only, which would reject JSON and newlines)."""
_CHARSET_SET = frozenset(CHARSET)
GRID_CACHE_SIZE = 128


def _fit_charset(text: str) -> str:
    """Replace characters outside the space's charset (e.g. from a released data file)."""
    if all(c in _CHARSET_SET for c in text):
        return text
    return "".join(c if c in _CHARSET_SET else "?" for c in text)


class VirlEnv(gym.Env):
    """Follow turn-by-turn instructions to a destination; one route per episode."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 1}

    def __init__(
        self, config: VirlConfig | dict[str, Any] | None = None, render_mode: str | None = None
    ) -> None:
        self.config = VirlConfig.from_any(config)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode: {render_mode!r} is not one of ['rgb_array', None]")
        self.render_mode = render_mode
        self.routes = route_pool(self.config)
        self._index = {r.route_id: i for i, r in enumerate(self.routes)}
        self.verifier = VirlVerifier(self.config)
        self.views = ViewSource(self.config)
        side = 2 * self.config.view_size
        obs: dict[str, spaces.Space] = {
            "text": spaces.Text(MAX_TEXT_CHARS, min_length=0, charset=CHARSET)
        }
        if self.config.observation_mode == "image":
            obs["image"] = spaces.Box(0, 255, (side, side, 3), np.uint8)
        self.observation_space = spaces.Dict(obs)
        self.action_space = spaces.Text(MAX_TEXT_CHARS, min_length=0, charset=CHARSET)
        self._grids: OrderedDict[tuple[str, int, int], np.ndarray] = OrderedDict()
        self._route: Route | None = None
        self._steps: tuple[OracleStep, ...] = ()
        self._k = 0
        self._tries = 0
        self._done = False
        self._success = False
        self._turns = 0
        self._turns_correct = 0
        self._landmarks_correct = 0
        self._budget_failed = False

    # ------------------------------------------------------------ gymnasium API

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """options: {"route_index": i} | {"route_id": id} | {"task_state": state}; else seeded."""
        super().reset(seed=seed)
        options = options or {}
        state = options.get("task_state")
        if state is not None:
            index = self._route_index(str(state["route_id"]))
        elif "route_id" in options:
            index = self._route_index(str(options["route_id"]))
        elif "route_index" in options:
            index = int(options["route_index"])
            if not 0 <= index < len(self.routes):
                raise ValueError(f"route_index: {index} is not in [0, {len(self.routes)})")
        else:
            index = int(self.np_random.integers(len(self.routes)))
        self._route = self.routes[index]
        self._steps = oracle_steps(self._route)
        self._k = int(state["step_index"]) if state is not None else 0
        self._tries = int(state["tries_used"]) if state is not None else 0
        if not 0 <= self._k < len(self._steps):
            raise ValueError(f"task_state: step_index {self._k} outside the route's steps")
        self._done = self._success = self._budget_failed = False
        self._turns = self._turns_correct = self._landmarks_correct = 0
        text = first_prompt(
            self._route,
            self._steps[self._k],
            self.config.action_space,
            self.config.observation_mode,
            self.config.tries_per_point,
        )
        return self._obs(text), {"task_state": self.task_state(), "route_id": self._route.route_id}

    def step(self, action: str) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        if self._route is None or self._done:
            raise RuntimeError("step() called before reset() or after the episode ended")
        return self.apply_verdict(verify_total(self.verifier, self.task_state(), action))

    def apply_verdict(
        self, verdict: Verdict | dict[str, Any]
    ) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        """Advance the route with a verdict computed elsewhere (a verifier actor).

        ``step(text)`` is ``apply_verdict(verify(task_state(), text))``; splitting the two lets
        verification run in its own actor pool while the env keeps the route's state.
        """
        if self._route is None or self._done:
            raise RuntimeError("apply_verdict() needs a running route; call reset()")
        if isinstance(verdict, dict):
            verdict = Verdict(**verdict)
        route = self._route
        self._turns += 1
        self._landmarks_correct += int(verdict.fields.get("landmarks_ok") is True)
        mode = self.config.observation_mode
        if verdict.success:
            self._turns_correct += 1
            finished = self._steps[self._k].kind == "stop"
            self._k += 1
            self._tries = 0
            if finished:
                self._done = self._success = True
                text = final_turn(True, "")
            else:
                text = success_turn(route, self._steps[self._k], mode)
        else:
            self._tries += 1
            if verdict.fields["budget_exceeded"]:
                self._done = self._budget_failed = True
                text = final_turn(False, verdict.feedback)
            else:
                text = failure_turn(verdict.feedback, route, self._steps[self._k], mode)
        info = {
            "task_state": self.task_state(),
            "route_id": route.route_id,
            "verdict": verdict.to_dict(),
            "metrics": self.metrics(verdict.success),
        }
        return self._obs(text), float(verdict.reward), self._done, False, info

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array" or self._route is None:
            return None
        return self._grid()

    # ------------------------------------------------------------ state and metrics

    def task_state(self) -> dict[str, Any]:
        """What the verifier needs to score the next answer (JSON-able)."""
        assert self._route is not None
        route = self._route
        k = min(self._k, len(self._steps) - 1)  # after the final stop, the last step
        step = self._steps[k]
        return {
            "route_id": route.route_id,
            "city": route.city,
            "split": self.config.split,
            "step_index": k,
            "num_steps": len(self._steps),
            "point_index": step.point_index,
            "num_points": route.num_points,
            "heading": round(step.heading, 3),
            "action_space": self.config.action_space,
            "observation_mode": self.config.observation_mode,
            "expected_action": step.action(self.config.action_space),
            "visible_landmarks": [lm.name for lm in route.visible_landmarks(step.point_index)],
            "route_landmarks": [lm.name for lm in route.landmarks],
            "tries_used": self._tries,
            "tries_per_point": self.config.tries_per_point,
        }

    def metrics(self, step_correct: bool = False) -> dict[str, Any]:
        """Per-route navigation metrics so far (see the module docstring)."""
        total = len(self._steps)
        solved = min(self._k, total)
        counted = self._turns + int(self._budget_failed)
        out = {
            "step_correct": bool(step_correct),
            "steps_correct": self._turns_correct,
            "steps_total": counted,
            "step_accuracy": self._turns_correct / counted if counted else 0.0,
            "attempt_accuracy": self._turns_correct / self._turns if self._turns else 0.0,
            "oracle_steps_solved": solved,
            "oracle_steps": total,
            "route_progress": solved / total if total else 0.0,
            "route_done": self._done,
            "route_success": self._success,
        }
        if self.config.observation_mode == "image":
            out["landmarks_correct"] = self._landmarks_correct
            out["landmarks_checked"] = self._turns
        return out

    def expert_answer(self) -> str:
        """The oracle's JSON answer for the current step (SFT targets, smoke tests)."""
        assert self._route is not None
        step = self._steps[min(self._k, len(self._steps) - 1)]
        return expert_answer(self._route, step, self.config.action_space)

    @property
    def route(self) -> Route | None:
        return self._route

    @property
    def oracle(self) -> tuple[OracleStep, ...]:
        """The expert steps of the current route."""
        return self._steps

    # ------------------------------------------------------------ helpers

    def _route_index(self, route_id: str) -> int:
        if route_id not in self._index:
            raise ValueError(f"route_id: {route_id!r} is not in the {self.config.split} pool")
        return self._index[route_id]

    def _obs(self, text: str) -> dict[str, Any]:
        obs: dict[str, Any] = {"text": _fit_charset(text)[:MAX_TEXT_CHARS]}
        if self.config.observation_mode == "image":
            obs["image"] = self._grid()
        return obs

    def _grid(self) -> np.ndarray:
        """The 2x2 view grid at the current step (cached: retries reuse it)."""
        assert self._route is not None
        step = self._steps[min(self._k, len(self._steps) - 1)]
        key = (self._route.route_id, step.point_index, round(step.heading * 1000))
        if key in self._grids:
            self._grids.move_to_end(key)
            return self._grids[key].copy()
        views = [
            self.views.view(self._route, step.point_index, h)
            for _, h in grid_headings(step.heading)
        ]
        grid = compose_grid(views)
        self._grids[key] = grid
        if len(self._grids) > GRID_CACHE_SIZE:
            self._grids.popitem(last=False)
        return grid.copy()
