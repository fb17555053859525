"""``tiered run`` under a stand-in for systemd: what reaches ``NOTIFY_SOCKET``.

Each test binds a real ``AF_UNIX`` datagram socket (a file, or an abstract
``@name``), starts ``python -m tiered run tests.daemons.serve_probe:runtime``
with ``NOTIFY_SOCKET`` pointing at it, drives the daemon with real signals and
checks the datagrams it sent, in order (sd_notify(3)).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from typing import TYPE_CHECKING

import pytest

from support.daemon import Daemon, tiered_command
from support.systemd import NotifyListener, fields

if TYPE_CHECKING:
    from pathlib import Path

    from support.systemd import Kind

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="needs POSIX AF_UNIX sockets and signals"
)

PROBE = "tests.daemons.serve_probe:runtime"
UP = "runtime 'probe' is up"

backends = pytest.mark.parametrize("backend", ["asyncio", "uvloop", "trio"])


def run(backend: str) -> list[str]:
    """The command line serving the probe on ``backend``."""
    return tiered_command("run", PROBE, "--backend", backend)


def keys(messages: list[str]) -> list[str]:
    """The first line of each message (``READY=1``, ``STATUS=...``)."""
    return [m.split("\n")[0] for m in messages]


def monotonic_usec() -> int:
    """``CLOCK_MONOTONIC`` in microseconds, as ``MONOTONIC_USEC=`` counts it."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


@backends
@pytest.mark.parametrize("kind", ["path", "abstract"])
def test_status_ready_reloading_stopping(backend: str, kind: Kind) -> None:
    """STATUS as tiers come up, READY=1, RELOADING=1 then READY=1, STOPPING=1."""
    with (
        NotifyListener(kind) as systemd,
        Daemon(run(backend), env={"NOTIFY_SOCKET": systemd.address}) as d,
    ):
        systemd.wait_for("READY=1")
        before = monotonic_usec()
        d.signal(signal.SIGHUP)
        reloading = systemd.wait_for("RELOADING=1")
        after = monotonic_usec()
        systemd.wait_for("READY=1", count=2)
        d.signal(signal.SIGTERM)
        assert d.wait() == 0, d.output()
        messages = systemd.sync()
    assert keys(messages) == [
        "STATUS=a: a autostarted",
        "STATUS=tier 0 up",
        "STATUS=b: b autostarted",
        "STATUS=tier 1 up",
        "STATUS=c: c autostarted",
        "STATUS=tier 2 up",
        "READY=1",
        "RELOADING=1",
        "READY=1",
        "STOPPING=1",
    ], messages
    ready = fields(messages[6])
    assert ready["STATUS"].startswith("3 driver(s) running in ")
    reload = fields(reloading)
    assert set(reload) == {"RELOADING", "MONOTONIC_USEC"}
    assert before <= int(reload["MONOTONIC_USEC"]) <= after
    assert fields(messages[8]) == {"READY": "1", "STATUS": "reloaded"}


@backends
def test_signal_during_startup_sends_stopping_and_never_ready(
    backend: str, tmp_path: Path
) -> None:
    """SIGTERM during start-up: STOPPING=1, and READY=1 is never sent."""
    env = {"PROBE_GATE": "init.c", "PROBE_GATE_DIR": str(tmp_path)}
    with NotifyListener() as systemd:
        env["NOTIFY_SOCKET"] = systemd.address
        with Daemon(run(backend), env=env) as d:
            d.wait_for("stdout", "init c")
            d.signal(signal.SIGTERM)
            assert d.wait() == 0, d.output()
        messages = systemd.sync()
    assert keys(messages) == [
        "STATUS=a: a autostarted",
        "STATUS=tier 0 up",
        "STATUS=b: b autostarted",
        "STATUS=tier 1 up",
        "STOPPING=1",
    ]


@backends
def test_no_ready_after_stopping(backend: str, tmp_path: Path) -> None:
    """SIGTERM during a reload cancels it (no wait), and READY=1 never follows STOPPING=1."""
    env = {"PROBE_GATE": "reload.b", "PROBE_GATE_DIR": str(tmp_path)}
    with NotifyListener() as systemd:
        env["NOTIFY_SOCKET"] = systemd.address
        with Daemon(run(backend), env=env) as d:
            d.wait_for("stderr", UP)
            d.signal(signal.SIGHUP)
            d.wait_for("stdout", "reload b")
            d.signal(signal.SIGTERM)
            systemd.wait_for("STOPPING=1")
            assert d.wait() == 0, d.output()  # without the gate ever opening
        messages = systemd.sync()
    assert "reload b interrupted" in d.stdout
    assert "reload c" not in d.stdout
    assert keys(messages)[-3:] == ["READY=1", "RELOADING=1", "STOPPING=1"], messages


@backends
def test_extend_timeout_during_startup(backend: str) -> None:
    """ctx.extend_timeout(7.5) in tier 1 sends EXTEND_TIMEOUT_USEC=7500000 first."""
    with NotifyListener() as systemd:
        env = {"NOTIFY_SOCKET": systemd.address, "PROBE_EXTEND": "init.b=7.5"}
        with Daemon(run(backend), env=env) as d:
            systemd.wait_for("READY=1")
            d.signal(signal.SIGTERM)
            assert d.wait() == 0, d.output()
        messages = keys(systemd.sync())
    assert messages.count("EXTEND_TIMEOUT_USEC=7500000") == 1, messages
    extend = messages.index("EXTEND_TIMEOUT_USEC=7500000")
    assert messages.index("STATUS=tier 0 up") < extend < messages.index("READY=1")


@backends
@pytest.mark.parametrize("watchdog_pid", ["unset", "own"])
def test_watchdog_pings(backend: str, watchdog_pid: str) -> None:
    """WATCHDOG_USEC=200000: WATCHDOG=1 about every 0.1 s once the daemon is up."""
    command = run(backend)
    if watchdog_pid == "own":
        # as systemd does: WATCHDOG_PID is the pid of the daemon itself
        command = ["/bin/sh", "-c", 'WATCHDOG_PID=$$ exec "$@"', "sh", *command]
    with NotifyListener() as systemd:
        env = {"NOTIFY_SOCKET": systemd.address, "WATCHDOG_USEC": "200000"}
        with Daemon(command, env=env) as d:
            systemd.wait_for("WATCHDOG=1", count=4)
            d.signal(signal.SIGTERM)
            assert d.wait() == 0, d.output()
        messages = keys(systemd.sync())
        times = [t for m, t in systemd.timed() if m == "WATCHDOG=1"]
    assert messages.index("READY=1") < messages.index("WATCHDOG=1")
    # half of WATCHDOG_USEC between pings: never faster (0.05 s of slack for
    # the reader thread), and the daemon is not hammering the socket
    assert times[3] - times[0] >= 3 * 0.1 - 0.05, times


@backends
def test_no_watchdog_for_another_pid(backend: str) -> None:
    """WATCHDOG_PID naming another process: no WATCHDOG=1 at all."""
    with NotifyListener() as systemd:
        env = {
            "NOTIFY_SOCKET": systemd.address,
            "WATCHDOG_USEC": "200000",
            "WATCHDOG_PID": "1",
        }
        with Daemon(run(backend), env=env) as d:
            systemd.wait_for("READY=1")
            time.sleep(0.5)  # five ping intervals: a ping would have come
            d.signal(signal.SIGTERM)
            assert d.wait() == 0, d.output()
        messages = keys(systemd.sync())
    assert "STOPPING=1" in messages
    assert "WATCHDOG=1" not in messages


@backends
@pytest.mark.parametrize("case", ["relative", "missing", "stale"])
def test_bad_notify_socket_is_a_warning(
    backend: str, case: str, tmp_path: Path
) -> None:
    """A NOTIFY_SOCKET nobody listens on is one warning; the daemon runs, exits 0."""
    if case == "relative":
        address = "run/notify.sock"
    elif case == "missing":
        address = str(tmp_path / "nothing.sock")
    else:  # a socket file whose listener is gone: ECONNREFUSED
        address = str(tmp_path / "stale.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(address)
        sock.close()
    with Daemon(run(backend), env={"NOTIFY_SOCKET": address}) as d:
        d.wait_for("stderr", UP)
        d.signal(signal.SIGHUP)
        d.wait_for("stderr", "tiered: reloaded")
        d.signal(signal.SIGTERM)
        assert d.wait() == 0, d.output()
    warnings = [x for x in d.stderr if "WARNING" in x]
    assert len(warnings) == 1, d.output()
    assert f"NOTIFY_SOCKET={address!r}" in warnings[0]
    assert "Traceback" not in "\n".join(d.stderr)
    assert os.path.exists(address) == (case == "stale")
