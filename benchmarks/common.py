"""What every benchmark writes: the machine it ran on and its numbers, as JSON."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any


def write_results(
    out: Path, name: str, results: dict[str, float], digits: int, **extra: Any
) -> dict[str, Any]:
    """Write ``results`` (rounded) with the machine's description to ``out``; print them."""
    report = {
        "benchmark": name,
        **extra,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "results": {k: round(v, digits) for k, v in results.items()},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    for key, value in report["results"].items():
        print(f"{key:28s} {value:>12,.{digits}f}")
    print(f"wrote {out}")
    return report
