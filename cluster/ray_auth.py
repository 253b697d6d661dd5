"""Ray token authentication, kept on, with the token in the project cache (not in ``~``).

Ray 2.60 enables token auth for local clusters and, left alone, writes the token to
``~/.ray/auth_token``. veriray instead creates its own token file (mode 0600) under the project
cache and points Ray at it through ``RAY_AUTH_TOKEN_PATH``, so every process that veriray
starts (drivers, workers, ``ray job submit``) finds the same token and tests never depend on
files left in the home directory. The token is never logged.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from common.paths import cache_dir

TOKEN_PATH_ENV = "RAY_AUTH_TOKEN_PATH"
TOKEN_ENV = "RAY_AUTH_TOKEN"
MODE_ENV = "RAY_AUTH_MODE"


def default_token_path() -> Path:
    return cache_dir() / "ray" / "auth_token"


def ensure_token_file(path: str | Path | None = None) -> Path:
    """Return the token file, creating a fresh random token (0600) if it does not exist."""
    token_path = Path(path) if path else default_token_path()
    if not token_path.exists():
        token_path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: two processes racing to create it cannot both write a token.
        try:
            fd = os.open(token_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return token_path
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return token_path


def read_token(path: str | Path | None = None) -> str:
    """The token text: ``$RAY_AUTH_TOKEN`` if set, else the token file's contents."""
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV].strip()
    token_path = Path(path or os.environ.get(TOKEN_PATH_ENV) or default_token_path())
    if not token_path.is_file():
        raise FileNotFoundError(
            f"Ray auth token file {token_path} does not exist: start the cluster with "
            f"`veriray` (it creates one), or pass --token-file / set {TOKEN_ENV}"
        )
    return token_path.read_text().strip()


def enable_token_auth(path: str | Path | None = None, create: bool = True) -> Path | None:
    """Turn token auth on for this process and its children; return the token file used.

    ``create=False`` (joining an existing cluster) never invents a token: it uses
    ``$RAY_AUTH_TOKEN`` or the given/default file, and fails clearly if neither exists.
    """
    os.environ[MODE_ENV] = "token"
    if os.environ.get(TOKEN_ENV) and not path:
        _refresh_ray_auth_state()
        return None
    # A process started by the cluster (a job's driver) already has the cluster's token path.
    path = path or os.environ.get(TOKEN_PATH_ENV) or None
    token_path = ensure_token_file(path) if create else Path(path or default_token_path())
    if not token_path.is_file():
        raise FileNotFoundError(
            f"Ray auth token file {token_path} does not exist: pass the cluster's token with "
            f"--token-file PATH or set {TOKEN_ENV}"
        )
    os.environ[TOKEN_PATH_ENV] = str(token_path)
    _refresh_ray_auth_state()
    return token_path


def _refresh_ray_auth_state() -> None:
    """Make an already imported ``ray`` see the new auth settings.

    Ray reads RAY_AUTH_MODE into its C++ config at import and caches the token it loaded;
    Ray's own ``_enable_token_auth`` refreshes both the same way.
    """
    import sys

    if "ray" not in sys.modules:
        return  # ray reads the environment when it is imported
    from ray._raylet import AuthenticationTokenLoader, Config

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def auth_headers(path: str | Path | None = None) -> dict[str, str]:
    """HTTP headers for the dashboard / job API of a token-auth cluster."""
    return {"Authorization": f"Bearer {read_token(path)}"}
