"""An embedded cluster whose dashboard port is taken (a second run or an evaluation on the same
machine) starts on a free port instead of failing."""

from __future__ import annotations

import socket

from cluster.ray_config import RayConfig
from cluster.ray_runtime import dashboard_port
from common.ports import free_port, port_is_free


def test_a_free_configured_port_is_kept() -> None:
    port = free_port()
    assert dashboard_port(RayConfig(dashboard_port=port)) == port


def test_a_taken_port_is_replaced_by_a_free_one() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        assert not port_is_free("127.0.0.1", taken)
        chosen = dashboard_port(RayConfig(dashboard_port=taken))
        assert chosen != taken and port_is_free("127.0.0.1", chosen)
        # Without a dashboard the port is not used at all: nothing to replace.
        assert dashboard_port(RayConfig(dashboard_port=taken, include_dashboard=False)) == taken
