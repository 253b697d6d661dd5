"""The Ray auth token lives in the project cache, is private, and is found by our tools."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cluster import ray_auth


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for var in (ray_auth.TOKEN_ENV, ray_auth.TOKEN_PATH_ENV, ray_auth.MODE_ENV):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("VERIRAY_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


def test_token_file_is_created_once_private_and_random(clean_env: Path) -> None:
    path = ray_auth.ensure_token_file()
    assert path == clean_env / "cache" / "ray" / "auth_token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = path.read_text()
    assert len(token) == 64 and int(token, 16) >= 0
    assert ray_auth.ensure_token_file() == path and path.read_text() == token
    other = ray_auth.ensure_token_file(clean_env / "other")
    assert other.read_text() != token


def test_enable_sets_mode_and_path_and_never_uses_home(clean_env: Path) -> None:
    path = ray_auth.enable_token_auth()
    assert os.environ[ray_auth.MODE_ENV] == "token"
    assert os.environ[ray_auth.TOKEN_PATH_ENV] == str(path)
    assert ray_auth.auth_headers() == {"Authorization": f"Bearer {path.read_text()}"}
    assert not (clean_env / "home" / ".ray").exists()


def test_joining_needs_an_existing_token(clean_env: Path) -> None:
    with pytest.raises(FileNotFoundError, match="--token-file PATH or set RAY_AUTH_TOKEN"):
        ray_auth.enable_token_auth(clean_env / "nope", create=False)


def test_env_token_wins(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ray_auth.TOKEN_ENV, "abc\n")
    assert ray_auth.read_token() == "abc"
    assert ray_auth.enable_token_auth(create=False) is None
