"""The embedded single-machine cluster listens on loopback only: Ray's GCS, raylet, agents and
metrics endpoint, and the learner ranks' rendezvous (a private file store instead of a TCP
store on every interface) and gloo pairs. Listening sockets are read with psutil."""

from __future__ import annotations

import ipaddress

import psutil

from learner.assets import prepare
from learner.config import LearnerConfig
from learner.group import LearnerGroup

RAY_NAMES = ("gcs_server", "raylet")


def _listening(pids: set[int]) -> set[tuple[str, str]]:
    out = set()
    for conn in psutil.net_connections(kind="inet"):
        if conn.status == psutil.CONN_LISTEN and conn.pid in pids:
            try:
                name = psutil.Process(conn.pid).name()
            except psutil.Error:
                continue
            out.add((conn.laddr.ip, name))
    return out


def _is_loopback(ip: str) -> bool:
    addr = ipaddress.ip_address(ip)
    mapped = getattr(addr, "ipv4_mapped", None)
    return (mapped or addr).is_loopback


def test_the_embedded_cluster_and_the_learner_listen_on_loopback_only(ray_cluster) -> None:
    group = LearnerGroup(LearnerConfig(num_ranks=2, cpus_per_rank=0.5), str(prepare("tiny-lm")))
    try:
        me = psutil.Process()
        ray_procs = {
            p.pid
            for p in me.children(recursive=True)
            if p.name() in RAY_NAMES or p.name().startswith("ray::")
        }
        sockets = _listening(ray_procs)
        names = {name for _, name in sockets}
        assert {"gcs_server", "raylet", "ray::LearnerRank"} <= names  # the probe sees them
        exposed = sorted(s for s in sockets if not _is_loopback(s[0]))
        assert exposed == [], f"listening beyond loopback: {exposed}"
    finally:
        group.shutdown()
