"""The example daemon runs for real, as `make demo` runs it, on every backend."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("backend", ["asyncio", "uvloop", "trio"])
def test_small_daemon_runs_and_reports(backend: str, tmp_path: Path) -> None:
    """examples/small_daemon.py starts three tiers, prints its report, writes an SVG."""
    svg = tmp_path / "timeline.svg"
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "small_daemon.py"),
            "--backend",
            backend,
            "--svg",
            str(svg),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "blame:" in out.stdout
    assert "critical chain:" in out.stdout
    assert "tier 2 up @" in out.stdout
    root = ET.fromstring(svg.read_text())
    assert root.tag.endswith("svg")
    for name in ("secrets", "network", "storage", "qemu"):
        assert name in svg.read_text()
