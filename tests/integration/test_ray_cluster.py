"""A real embedded Ray cluster: token auth on, dashboard on localhost, actors round-trip."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest
import ray

from cluster.ray_auth import auth_headers


@ray.remote
class Echo:
    def add(self, x: int) -> int:
        return x + 1


def test_actor_round_trip(ray_cluster) -> None:
    actor = Echo.remote()
    assert ray.get([actor.add.remote(i) for i in range(5)]) == [1, 2, 3, 4, 5]
    ray.kill(actor)


def test_dashboard_is_on_localhost_and_needs_the_token(ray_cluster) -> None:
    url = ray_cluster.dashboard_url
    assert url.startswith("http://127.0.0.1:")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{url}/api/version", timeout=10)
    assert err.value.code == 401
    req = urllib.request.Request(f"{url}/api/version", headers=auth_headers())
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200


def test_token_is_not_left_in_home() -> None:
    # Our token file is in the project cache; Ray's default ~/.ray/auth_token is not used.
    import os

    assert os.environ["RAY_AUTH_MODE"] == "token"
    token_path = Path(os.environ["RAY_AUTH_TOKEN_PATH"])
    assert token_path.is_file()
    assert Path(os.environ["VERIRAY_CACHE"]) in token_path.parents
