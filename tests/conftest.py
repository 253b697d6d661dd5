"""Shared test setup: offline hub, project-local cache, one real Ray cluster per session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("VERIRAY_CACHE", str(ROOT / ".cache"))
os.environ.setdefault(
    "TORCH_EXTENSIONS_DIR", str(Path(os.environ["VERIRAY_CACHE"]) / "torch_extensions")
)


@pytest.fixture(scope="session")
def ray_cluster():
    """A real embedded Ray cluster (token auth on, dashboard on 127.0.0.1) for the session."""
    import ray

    from cluster.ray_config import RayConfig
    from cluster.ray_runtime import init_ray
    from common.ports import free_port

    handle = init_ray(RayConfig(num_cpus=2, dashboard_port=free_port()))
    yield handle
    ray.shutdown()


@pytest.fixture(scope="session")
def python() -> str:
    return sys.executable
