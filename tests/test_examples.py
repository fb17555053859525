"""The example daemon runs for real, as `make demo` runs it, on every backend."""

from __future__ import annotations

import os
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


@pytest.mark.skipif(sys.platform == "win32", reason="systemd and SIGTERM are POSIX")
@pytest.mark.parametrize("backend", ["asyncio", "uvloop", "trio"])
def test_serve_daemon_speaks_to_systemd(backend: str, tmp_path: Path) -> None:
    """examples/serve_daemon.py sends READY=1 once up and exits 0 on SIGTERM."""
    import signal
    import socket

    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(30)
        proc = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "examples" / "serve_daemon.py"),
                "--backend",
                backend,
            ],
            env={**os.environ, "NOTIFY_SOCKET": str(path)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            messages: list[str] = []
            while not messages or not messages[-1].startswith("READY=1"):
                messages.append(sock.recv(4096).decode())
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.returncode is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, err
    assert "STATUS=tier 2 up" in messages
    assert "qemu (tier 2) stopped" in err
