"""The benchmarks run at tiny size, so they cannot rot (no timing is asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_overhead_benchmark_runs_at_tiny_size() -> None:
    """benchmarks/run.py completes and prints a ratio per backend."""
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "run.py"),
            "--drivers",
            "40",
            "--tiers",
            "4",
            "--rounds",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    for backend in ("asyncio", "uvloop", "trio"):
        assert backend in out.stdout
