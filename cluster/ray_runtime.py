"""Start or join the Ray cluster, with token auth on and the dashboard on localhost."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import ray

from cluster.ray_auth import enable_token_auth
from cluster.ray_config import RayConfig
from cluster.run_logs import quiet_worker_env, verbose
from common.paths import PROJECT_ROOT, set_build_env
from common.ports import free_port, port_is_free

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RayHandle:
    """What the driver needs to know about the cluster it is connected to."""

    dashboard_url: str | None
    """http://host:port of the dashboard, or None when it is not running."""
    embedded: bool
    """True when this process started the cluster (and should shut it down)."""
    gcs_address: str = ""
    """host:port of the cluster's GCS (what `veriray scale --address` connects to)."""


def init_ray(cfg: RayConfig, runtime_env: dict | None = None) -> RayHandle:
    """Connect to (or start) the cluster described by ``cfg``.

    Token auth stays on: an embedded cluster gets the project-local token (created on first
    use); joining an existing cluster needs its token (file or ``$RAY_AUTH_TOKEN``).
    """
    set_build_env()
    embedded = cfg.address is None
    enable_token_auth(cfg.auth_token_path, create=embedded)
    if ray.is_initialized():
        ray.shutdown()
    env = {"env_vars": _worker_env() | quiet_worker_env()} | (runtime_env or {})
    # Actors' output stays in Ray's log files (collected into the run folder) unless --verbose;
    # the driver's Ray logger then reports to the run's log file (cluster/run_logs.py).
    quiet = {"log_to_driver": verbose(), "configure_logging": verbose()}
    if embedded:
        with loopback_node(cfg.loopback_only):
            ctx = _init_embedded(cfg, env, quiet)
    elif os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR"):
        # A driver started by `ray job submit` (veriray submit) already runs in the job's
        # runtime env (working dir, env vars); Ray refuses a second one with the same keys.
        ctx = ray.init(address=cfg.address, namespace=cfg.namespace, **quiet)
    else:
        with loopback_node(is_loopback_address(cfg.address)):  # joining an embedded cluster
            ctx = ray.init(address=cfg.address, namespace=cfg.namespace, runtime_env=env, **quiet)
    url = ctx.dashboard_url
    if url and not url.startswith("http"):
        url = f"http://{url}"
    return RayHandle(
        dashboard_url=url or None,
        embedded=embedded,
        gcs_address=str(ctx.address_info.get("gcs_address", "")),
    )


def dashboard_port(cfg: RayConfig) -> int:
    """The configured dashboard port, or a free one when another cluster on this machine (a
    second run, an evaluation) holds it: the embedded cluster then still starts."""
    port = cfg.dashboard_port
    if not cfg.include_dashboard or port_is_free(cfg.dashboard_host, port):
        return port
    new = free_port(cfg.dashboard_host)
    log.warning(
        "ray.dashboard_port %d is in use (another Ray cluster on this machine?); this run's "
        "dashboard is on port %d",
        port,
        new,
    )
    return new


def _init_embedded(cfg: RayConfig, env: dict, quiet: dict[str, bool]) -> Any:
    return ray.init(
        # "local" always starts a new cluster; a bare ray.init() would join any cluster
        # that `ray start` left running on this machine.
        address="local",
        num_cpus=cfg.num_cpus,
        num_gpus=cfg.num_gpus,
        include_dashboard=cfg.include_dashboard,
        dashboard_host=cfg.dashboard_host,
        dashboard_port=dashboard_port(cfg),
        namespace=cfg.namespace,
        object_store_memory=(
            cfg.object_store_memory_mb * 2**20 if cfg.object_store_memory_mb else None
        ),
        runtime_env=env,
        logging_level=logging.WARNING,
        **quiet,
    )


def is_loopback_address(address: str | None) -> bool:
    """Whether a cluster address ("host:port") is on loopback: the embedded cluster of a run
    on this machine, which a second driver (``veriray scale``) must join as a loopback node
    too, or Ray looks for its local raylet on the LAN address and waits forever."""
    host = (address or "").rpartition(":")[0] or (address or "")
    return host in ("127.0.0.1", "localhost", "::1", "[::1]")


@contextlib.contextmanager
def loopback_node(on: bool) -> Iterator[None]:
    """Start the embedded cluster on 127.0.0.1. Ray turns a loopback node address into the
    LAN address unless clusters are off (its own switch for single-machine use); the switch
    is read by the driver here and, through the environment, by the processes ray.init
    starts. Both are restored afterwards: the running node keeps its address."""
    if not on:
        yield
        return
    from ray._private import ray_constants

    key = ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR
    saved_flag, saved_env = ray_constants.ENABLE_RAY_CLUSTER, os.environ.get(key)
    ray_constants.ENABLE_RAY_CLUSTER = False
    os.environ[key] = "0"
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved_flag
        if saved_env is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = saved_env


def _worker_env() -> dict[str, str]:
    """Environment every actor gets: the project on the path, caches local, hub offline."""
    keys = (
        "TORCH_EXTENSIONS_DIR",
        "HF_HOME",
        "HF_HUB_OFFLINE",
        "TRANSFORMERS_OFFLINE",
        "VERIRAY_CACHE",
    )
    env = {k: os.environ[k] for k in keys if k in os.environ}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    return env
