"""The child process that runs a dataset task's reward function (see envs/dataset/reward.py).

Protocol: one JSON object per line on stdin ({"response": str, "example": dict}), one per
line back on the original stdout ({"result": ...} or {"error": str}). The user's own prints
go to stderr, so they cannot corrupt the protocol.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any


def load_function(ref: str) -> Callable[..., Any]:
    """``module:function`` or ``/abs/path/file.py:function`` -> the function."""
    target, _, name = ref.rpartition(":")
    if target.endswith(".py"):
        spec = importlib.util.spec_from_file_location(f"veriray_reward_{abs(hash(target))}", target)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {target}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    fn = getattr(module, name)
    if not callable(fn):
        raise TypeError(f"{ref} is not callable")
    return fn


def main() -> None:
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout = sys.stderr  # the user's prints must not reach the protocol stream
    try:
        fn = load_function(sys.argv[1])
    except BaseException as err:  # reported to the parent, which raises it per call
        out.write(json.dumps({"fatal": f"{type(err).__name__}: {err}"}) + "\n")
        out.flush()
        return
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        call = json.loads(line)
        try:
            reply = {"result": fn(call["response"], call["example"])}
            text = json.dumps(reply, default=str)
        except BaseException as err:
            tb = traceback.format_exc(limit=3)
            text = json.dumps({"error": f"{type(err).__name__}: {str(err)[:300]}", "tb": tb})
        out.write(text + "\n")
        out.flush()


if __name__ == "__main__":
    main()
