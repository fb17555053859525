"""The examples run for real, as the docs tell readers to run them, on every backend."""

from __future__ import annotations

import os
import re
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


def run_example(
    name: str, backend: str, tmp: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``examples/NAME.py --backend BACKEND``, warnings as errors.

    With ``tmp``, the example's temporary files go there (``TMPDIR``).
    """
    env = dict(os.environ)
    if tmp is not None:
        env["TMPDIR"] = str(tmp)
    return subprocess.run(
        [
            sys.executable,
            "-W",
            "error",
            str(ROOT / "examples" / f"{name}.py"),
            "--backend",
            backend,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("backend", ["asyncio", "uvloop", "trio"])
def test_schedules_example_starts_one_runtime_both_ways(backend: str) -> None:
    """examples/schedules.py prints each schedule's start-up time and critical chain."""
    out = run_example("schedules", backend)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    tiers = lines.index(next(x for x in lines if x.startswith("schedule 'tiers'")))
    deps = lines.index(
        next(x for x in lines if x.startswith("schedule 'dependencies'"))
    )
    assert tiers < deps
    assert re.fullmatch(r"schedule 'tiers': up in \d+\.\d{3}s", lines[tiers])
    assert re.fullmatch(r"schedule 'dependencies': up in \d+\.\d{3}s", lines[deps])
    # the tiers' chain follows the barriers, one block per tier; the
    # dependencies' chain the requirements: the driver that came up last,
    # then its links from the first driver that began to it
    tier_chain = "\n".join(lines[tiers:deps])
    for tier in (0, 1, 2):
        assert f"tier {tier} up @" in tier_chain
    dep_chain = lines[deps:]
    links = [x.split()[1] for x in dep_chain if "└─" in x]
    assert links, out.stdout
    assert links[0] in {"database", "metrics"}
    assert any(
        re.fullmatch(r"\s+\w+ \(tier \d\) up @\d+\.\d{3}s", x) for x in dep_chain
    )
    assert re.search(r"dependencies took \d+% of the time of tiers", out.stdout)
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("backend", ["asyncio", "uvloop", "trio"])
def test_supervised_example_restarts_then_gives_up(backend: str) -> None:
    """examples/supervised.py restarts storage and qemu twice, then gives up."""
    out = run_example("supervised", backend)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    # while restarting: not ready, still live, and qemu's value is not there
    assert text.count("state restarting, ready False, live True") == 2
    assert text.count("run.get(qemu): DependencyError") == 2
    # each restart is a new life: a new connection
    assert "run.get(qemu): 'guests on connection 3'" in text
    assert "restart 1 of 2 in 0.05s, with 1 driver(s) that require it" in text
    assert "restart 2 of 2 in 0.1s" in text
    assert (
        "ShutdownError: runtime 'supervised' stopped: it gave up restarting "
        "storage (tier 1) after 2 restart(s) within 60s" in text
    )
    assert "after the run: state stopped, live False" in text
    assert "storage: failed, 2 restart(s)" in text
    assert "qemu: stopped, 2 restart(s)" in text
    assert "secrets: stopped, 0 restart(s)" in text
    events = text.split("report.events")[1].splitlines()[1:]
    kinds = [line.split()[1] for line in events]
    assert kinds == ["failure", "restart", "failure", "restart", "failure", "gave-up"]
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("backend", ["asyncio", "uvloop", "trio"])
def test_cleanup_example_leaves_nothing_behind(backend: str, tmp_path: Path) -> None:
    """examples/cleanup.py: the careful drivers release everything, the careless leak."""
    out = run_example("cleanup", backend, tmp_path)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    # 1. a stop cut short: the shielded finally still removed its token
    assert "runtime 'tokens' stopped with errors (careless, careful)" in text
    assert "careful   removed its token file" in text
    assert "careless  left its token file" in text  # the check can fail
    # 2. cancelled during initialize, hence never stopped: only the drivers
    # that clean up in initialize (class) or around the yield (generator)
    # closed their real sockets
    assert "runtime 'connections' failed to start: broken (tier 1)" in text
    assert "careful   cancelled, closed it" in text
    assert "pooled    cancelled, closed it" in text
    assert "careless  cancelled, left it open" in text  # the check can fail
    # and the example's own clean-up left no file, socket or warning behind
    assert "ResourceWarning" not in out.stderr
    assert "Traceback" not in out.stderr
    assert not list(tmp_path.iterdir())
