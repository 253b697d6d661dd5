"""Calling a user's reward function with a bound: a child process, a time limit per call.

The function is user code scoring hostile model output, so the verifier gives it the same
guarantees as the study's verifiers: it runs in a child process (envs/dataset/reward_child.py),
a call that runs past ``timeout_s`` kills the child (the next call starts a fresh one), and
anything but a documented result (an exception, a crash, an exit, a bad value) raises
RewardError here, which ``verify_total`` turns into a failed verdict.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import select
import subprocess
import sys
import threading
import time
from typing import Any

START_TIMEOUT_S = 60.0  # importing the user's module (it may import torch) is not a call


class RewardError(RuntimeError):
    """The reward function did not give a usable result for one answer."""


def normalize(result: Any) -> tuple[float, bool, str | None]:
    """A documented result -> (reward, success, feedback or None); anything else raises."""
    if isinstance(result, bool):
        return (1.0 if result else 0.0), result, None
    if isinstance(result, (int, float)):
        reward = float(result)
        if not math.isfinite(reward):
            raise RewardError(f"reward is not finite: {result!r}")
        return reward, reward > 0, None
    if isinstance(result, dict):
        if "reward" not in result or "success" not in result:
            raise RewardError(f"a dict result needs reward and success, got {sorted(result)}")
        reward, success, feedback = result["reward"], result["success"], result.get("feedback")
        if isinstance(reward, bool) or not isinstance(reward, (int, float)):
            raise RewardError(f"reward: expected a number, got {reward!r}")
        if not math.isfinite(float(reward)):
            raise RewardError(f"reward is not finite: {reward!r}")
        if not isinstance(success, bool):
            raise RewardError(f"success: expected true or false, got {success!r}")
        if feedback is not None and not isinstance(feedback, str):
            raise RewardError(f"feedback: expected a string or nothing, got {feedback!r}")
        return float(reward), success, feedback
    raise RewardError(f"expected a dict, a bool or a number, got {type(result).__name__}")


_SHARED: dict[tuple[str, float], RewardRunner] = {}
_SHARED_LOCK = threading.Lock()


def shared_runner(ref: str, timeout_s: float) -> RewardRunner:
    """One child per reward function per process: the training config and every suite's
    config (separate verifiers) share it."""
    with _SHARED_LOCK:
        key = (ref, timeout_s)
        if key not in _SHARED:
            _SHARED[key] = RewardRunner(ref, timeout_s)
        return _SHARED[key]


class RewardRunner:
    """One child process running ``ref`` (``module:function`` or ``file.py:function``)."""

    def __init__(self, ref: str, timeout_s: float) -> None:
        self.ref = ref
        self.timeout_s = timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._buffer = b""
        # One call at a time over the pipe (a runner may be shared by threads of an actor).
        self._lock = threading.Lock()

    def __call__(self, response: str, example: dict[str, Any]) -> tuple[float, bool, str | None]:
        with self._lock:
            return self._call(response, example)

    def _call(self, response: str, example: dict[str, Any]) -> tuple[float, bool, str | None]:
        proc = self._ensure_started()
        assert proc.stdin is not None
        line = json.dumps({"response": response, "example": example}, default=str) + "\n"
        try:
            proc.stdin.write(line.encode())
            proc.stdin.flush()
        except (BrokenPipeError, OSError) as err:
            self.close()
            raise RewardError(f"the reward function's process ended ({err})") from err
        reply = self._read_reply(self.timeout_s, "call")
        if "error" in reply:
            raise RewardError(f"the reward function raised {reply['error']}")
        return normalize(reply.get("result"))

    def _ensure_started(self) -> subprocess.Popen[bytes]:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        self.close()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "envs.dataset.reward_child", self.ref],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,  # the user's prints and tracebacks land in the worker's log
            env=os.environ.copy(),
        )
        ready = self._read_reply(START_TIMEOUT_S, "start")
        if "fatal" in ready:
            self.close()
            raise RewardError(f"cannot load reward_fn {self.ref}: {ready['fatal']}")
        return self._proc

    def _read_reply(self, timeout_s: float, what: str) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                self.close()  # a call that runs over is killed; the next starts a fresh child
                raise RewardError(f"the reward function's {what} exceeded {timeout_s:g} s")
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                code = self._proc.poll()
                self.close()
                raise RewardError(f"the reward function's process exited (code {code})")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        try:
            reply = json.loads(line)
        except json.JSONDecodeError as err:
            self.close()
            raise RewardError("the reward function's process sent garbage") from err
        if not isinstance(reply, dict):
            raise RewardError("the reward function's process sent garbage")
        return reply

    def close(self) -> None:
        """Stop the child (the verifier's owner going away also ends it: stdin closes)."""
        proc, self._proc, self._buffer = self._proc, None, b""
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown: nothing left to clean
            self.close()
