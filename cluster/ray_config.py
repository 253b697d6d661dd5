"""Config of the Ray cluster veriray runs on (embedded by default). Imports nothing heavy."""

from __future__ import annotations

from dataclasses import dataclass

from common.typed_config import check


@dataclass
class RayConfig:
    """Where the actors run: an embedded local cluster, or an existing one."""

    address: str | None = None
    """None starts an embedded local cluster (ray.init); "auto" or "host:port" joins one."""
    num_cpus: int | None = None
    """CPUs of the embedded cluster (None = all of this machine's)."""
    num_gpus: int | None = None
    """GPUs of the embedded cluster (None = detected)."""
    include_dashboard: bool = True
    """Start the Ray dashboard with the embedded cluster."""
    dashboard_host: str = "127.0.0.1"
    """Interface the dashboard binds to. Localhost unless you mean to expose it."""
    dashboard_port: int = 8265
    """Dashboard / job API port of the embedded cluster."""
    namespace: str = "veriray"
    """Ray namespace of veriray's named actors."""
    auth_token_path: str | None = None
    """Token file for Ray's token auth (None = <cache>/ray/auth_token, created if missing)."""
    object_store_memory_mb: int | None = None
    """Object store size of the embedded cluster in MiB (None = Ray's default)."""
    loopback_only: bool = True
    """Embedded cluster: run it on 127.0.0.1, so its GCS, raylet, agents and metrics endpoint
    listen on loopback only (Ray's default is the machine's LAN address, where the metrics
    port has no auth). Turn off only to let other machines join the embedded cluster."""

    def __post_init__(self) -> None:
        check(self.num_cpus is None or self.num_cpus > 0, "num_cpus", "must be > 0 or null")
        check(self.num_gpus is None or self.num_gpus >= 0, "num_gpus", "must be >= 0 or null")
        check(0 < self.dashboard_port < 65536, "dashboard_port", "must be in 1..65535")
        check(bool(self.namespace), "namespace", "must not be empty")
        check(
            self.object_store_memory_mb is None or self.object_store_memory_mb >= 64,
            "object_store_memory_mb",
            "must be >= 64 or null",
        )
