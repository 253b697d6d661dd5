"""Where the libraries' chatter goes: into the run folder, not onto the user's screen.

A run prints its stage names, progress bars, the dashboard URL and the report path. What Ray,
vLLM, DeepSpeed, transformers and torch log or warn goes to ``<run>/logs/``:

- ``logs/veriray.log``: the driver's log records and Python warnings (``driver_logs``);
- ``logs/workers/``: every actor's stdout and stderr, copied from Ray's session folder when the
  run ends (``collect_worker_logs``): actors do not stream to the driver (``log_to_driver``).

``--verbose`` (the ``VERIRAY_VERBOSE=1`` environment variable) brings it all back to the
console as well, as Ray prints it by default.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path

VERBOSE_ENV = "VERIRAY_VERBOSE"
LOGS_DIR = "logs"
DRIVER_LOG = "veriray.log"
WORKER_LOGS = "workers"
# Loggers that do not propagate to the root logger (Ray sets up its own console handler).
OWN_HANDLER_LOGGERS = ("ray", "vllm", "deepspeed", "transformers")
"""Library loggers that may carry a console handler of their own and stop propagating (vLLM
configures its logger so once an engine has run in this process): while a run is quiet their
records go to the root logger, hence the file, and their console handlers are set aside."""


def verbose() -> bool:
    """Whether library output should reach the console (``--verbose``)."""
    return os.environ.get(VERBOSE_ENV, "") == "1"


def set_verbose(on: bool) -> None:
    """Set ``--verbose`` for this process and the processes it starts."""
    os.environ[VERBOSE_ENV] = "1" if on else "0"


def quiet_worker_env() -> dict[str, str]:
    """Environment for actors: the libraries' own log levels, unless ``--verbose`` or set by
    the user. Their output lands in files either way; these keep the files to warnings and
    errors (vLLM logs every engine start at INFO)."""
    if verbose():
        return {}
    quiet = {
        "VLLM_LOGGING_LEVEL": "WARNING",
        "TRANSFORMERS_VERBOSITY": "warning",
        "TQDM_DISABLE": "1",  # weight-loading bars of actors: nobody sees them in a file
    }
    return {k: v for k, v in quiet.items() if k not in os.environ}  # the user's own win


@contextlib.contextmanager
def driver_logs(run_dir: Path) -> Iterator[Path]:
    """While a run is on, the driver's log records (INFO and up) and Python warnings go to
    ``<run_dir>/logs/veriray.log``; the console gets them too only with ``--verbose``.
    Yields the logs folder. Logging is put back as it was afterwards."""
    folder = run_dir / LOGS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(folder / DRIVER_LOG, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    saved_level = root.level
    console = None
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    if verbose():
        console = logging.StreamHandler()
        console.setLevel(logging.WARNING)
        root.addHandler(console)
    # Quiet: Ray's driver logger loses its console handler at ray.init (init_ray passes
    # configure_logging=False) and hands its records to the root logger, hence the file.
    own = {
        name: (logging.getLogger(name).propagate, list(logging.getLogger(name).handlers))
        for name in OWN_HANDLER_LOGGERS
    }
    for name in own if not verbose() else ():
        lib = logging.getLogger(name)
        lib.propagate = True
        for h in lib.handlers:
            if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler):
                lib.removeHandler(h)  # its console output; the file gets the records
    logging.captureWarnings(True)  # warnings.warn -> the "py.warnings" logger -> the file
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")  # each distinct warning once, into the file
            yield folder
    finally:
        logging.captureWarnings(False)
        for name, (propagate, handlers) in own.items():
            lib = logging.getLogger(name)
            lib.propagate = propagate
            lib.handlers = handlers
        root.removeHandler(handler)
        if console is not None:
            root.removeHandler(console)
        root.setLevel(saved_level)
        handler.close()


def ray_logs_dir() -> Path | None:
    """This machine's Ray session logs folder, while connected (None otherwise)."""
    try:
        from ray._private import worker
    except ImportError:
        return None
    node = getattr(worker, "_global_node", None)
    if node is None:
        return None
    return Path(node.get_logs_dir_path())


def collect_worker_logs(run_dir: Path, source: Path | None = None) -> Path | None:
    """Copy the actors' stdout/stderr files (``worker-*.out``/``.err`` of this machine's Ray
    session, the ones not empty) into ``<run_dir>/logs/workers``; returns that folder. Actors on
    other nodes keep theirs there (the dashboard's Logs page shows them)."""
    source = source or ray_logs_dir()
    if source is None or not source.is_dir():
        return None
    target = run_dir / LOGS_DIR / WORKER_LOGS
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.glob("worker-*")):
        if path.suffix in (".out", ".err") and path.is_file() and path.stat().st_size > 0:
            shutil.copyfile(path, target / path.name)
    return target
