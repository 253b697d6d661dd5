"""The tree stays ruff clean (the style the project agreed on)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_ruff_check_passes() -> None:
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed (make setup installs it)")
    result = subprocess.run([ruff, "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:]


def test_imports_run_along_the_data_flow() -> None:
    # The contracts are in pyproject.toml ([tool.importlinter]); docs/architecture.md says why.
    # No skip when the tool is missing: the lock installs it, and a skipped check enforces nothing.
    lint_imports = Path(sys.executable).parent / "lint-imports"
    assert lint_imports.exists(), f"{lint_imports} is missing: run `make setup` (cpu.lock has it)"
    # --no-cache: the import graph takes well under a second to build, and grimp's cache can
    # hand back a file's old imports (seen after a file changed back within a run of configs).
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
