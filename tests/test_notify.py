"""``Notifier`` and ``watchdog_interval``, in process, against real sockets.

sd_notify(3): newline-separated ``KEY=VALUE`` lines in one datagram to the
``AF_UNIX`` socket named by ``$NOTIFY_SOCKET`` (a path, or ``@`` for the
abstract namespace).  Sending never raises and never blocks.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import sys
import tempfile
import time
from typing import TYPE_CHECKING

import pytest

from support.systemd import NotifyListener, fields
from tiered._notify import Notifier, watchdog_interval

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from support.systemd import Kind

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="needs POSIX AF_UNIX datagram sockets"
)


@pytest.fixture(params=["path", "abstract"])
def systemd(request: pytest.FixtureRequest) -> Iterator[NotifyListener]:
    """A listening notify socket, a file or an abstract name."""
    kind: Kind = request.param
    with NotifyListener(kind) as listener:
        yield listener


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The messages tiered logged at WARNING."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "tiered" and r.levelno == logging.WARNING
    ]


# -- no socket -----------------------------------------------------------------


def test_unset_does_nothing(caplog: pytest.LogCaptureFixture) -> None:
    """Without an address every call is a silent no-op."""
    notifier = Notifier()
    notifier.ready()
    notifier.status("up")
    notifier.watchdog()
    notifier.close()
    assert not notifier.enabled
    assert notifier.sent == []
    assert warnings_of(caplog) == []


@pytest.mark.parametrize("environ", [{}, {"NOTIFY_SOCKET": ""}])
def test_from_environ_unset_or_empty(environ: dict[str, str]) -> None:
    """An unset or empty NOTIFY_SOCKET means: not under systemd."""
    notifier = Notifier.from_environ(environ)
    assert notifier.address is None
    assert not notifier.enabled


def test_from_environ_reads_the_address(systemd: NotifyListener) -> None:
    """from_environ() takes NOTIFY_SOCKET from the mapping given."""
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": systemd.address})
    try:
        assert notifier.address == systemd.address
        assert notifier.enabled
        notifier.ready()
        assert systemd.wait_for("READY=1") == "READY=1"
    finally:
        notifier.close()


def test_from_environ_defaults_to_os_environ(
    systemd: NotifyListener, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a mapping it reads os.environ."""
    monkeypatch.setenv("NOTIFY_SOCKET", systemd.address)
    notifier = Notifier.from_environ()
    try:
        assert notifier.address == systemd.address
    finally:
        notifier.close()


# -- the messages ----------------------------------------------------------------


def test_each_message(systemd: NotifyListener) -> None:
    """Every helper sends one datagram of KEY=VALUE lines, in call order."""
    notifier = Notifier(systemd.address)
    try:
        notifier.status("tier 0 up")
        notifier.ready()
        notifier.ready(status="3 driver(s) running")
        notifier.extend_timeout(2.5)
        notifier.watchdog()
        notifier.stopping()
        notifier.send(STATUS="a", ERRNO=5)
    finally:
        notifier.close()
    expected = [
        "STATUS=tier 0 up",
        "READY=1",
        "READY=1\nSTATUS=3 driver(s) running",
        "EXTEND_TIMEOUT_USEC=2500000",
        "WATCHDOG=1",
        "STOPPING=1",
        "STATUS=a\nERRNO=5",
    ]
    assert systemd.sync() == expected
    assert notifier.sent == expected


def test_reloading_carries_monotonic_usec(systemd: NotifyListener) -> None:
    """RELOADING=1 comes with MONOTONIC_USEC=, CLOCK_MONOTONIC in microseconds."""
    notifier = Notifier(systemd.address)
    try:
        before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        notifier.reloading()
        after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    finally:
        notifier.close()
    [message] = systemd.sync()
    sent = fields(message)
    assert list(sent) == ["RELOADING", "MONOTONIC_USEC"]
    assert sent["RELOADING"] == "1"
    assert before <= int(sent["MONOTONIC_USEC"]) <= after


def test_a_newline_in_a_value_cannot_forge_a_field(systemd: NotifyListener) -> None:
    """A status with a newline stays one STATUS= line (no READY=1 smuggled in)."""
    notifier = Notifier(systemd.address)
    try:
        notifier.status("pool 'x'\nREADY=1")
    finally:
        notifier.close()
    assert systemd.sync() == ["STATUS=pool 'x' READY=1"]


def test_close_is_idempotent(systemd: NotifyListener) -> None:
    """close() twice is fine; after it nothing is sent."""
    notifier = Notifier(systemd.address)
    notifier.close()
    notifier.close()
    assert not notifier.enabled
    notifier.ready()
    assert systemd.sync() == []


# -- a bad or vanished socket ------------------------------------------------------


@pytest.mark.parametrize("address", ["run/notify.sock", "notify", "vsock:2:1234"])
def test_neither_path_nor_abstract_is_one_warning(
    address: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An address that is neither /path nor @name: one warning, then silence."""
    notifier = Notifier(address)
    notifier.ready()
    notifier.stopping()
    notifier.close()
    assert not notifier.enabled
    assert notifier.sent == []
    [warning] = warnings_of(caplog)
    assert f"NOTIFY_SOCKET={address!r}" in warning


@pytest.mark.parametrize("case", ["missing", "stale", "abstract"])
def test_nobody_listening_is_one_warning(
    case: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing listens at the address: the first send warns, never raises."""
    if case == "missing":
        address = str(tmp_path / "nothing.sock")
    elif case == "stale":
        address = str(tmp_path / "stale.sock")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as gone:
            gone.bind(address)
    else:
        address = f"@tiered-test-nobody-{os.getpid()}"
    notifier = Notifier(address)
    notifier.ready()
    notifier.watchdog()
    notifier.stopping()
    notifier.close()
    assert notifier.sent == []
    assert not notifier.enabled
    [warning] = warnings_of(caplog)
    assert warning.startswith(f"cannot notify systemd at NOTIFY_SOCKET={address!r}")


def test_listener_going_away_is_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    """systemd's socket vanishing mid-run: one warning, the daemon is unharmed."""
    with NotifyListener() as listener:
        notifier = Notifier(listener.address)
        try:
            notifier.ready()
            assert listener.sync() == ["READY=1"]
            listener.close()  # the socket file is gone now
            notifier.watchdog()
            notifier.stopping()
        finally:
            notifier.close()
    assert notifier.sent == ["READY=1"]
    assert len(warnings_of(caplog)) == 1


def test_a_full_queue_drops_a_message_not_the_notifier() -> None:
    """A momentarily full socket queue costs one message; later ones still go."""
    # systemd reads its socket in its own time; meanwhile the queue is short
    directory = tempfile.mkdtemp(prefix="tiered-notify-")  # sun_path is short
    path = os.path.join(directory, "notify.sock")
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(path)
    notifier = Notifier(path)
    try:
        for _ in range(100_000):  # net.unix.max_dgram_qlen is 10 to 512
            before = len(notifier.sent)
            notifier.watchdog()
            if len(notifier.sent) == before:
                break  # the queue is full: this ping was dropped
        else:
            pytest.fail("the socket queue never filled")
        receiver.setblocking(False)
        drained = 0
        while True:
            try:
                receiver.recv(4096)
            except BlockingIOError:
                break
            drained += 1
        assert drained == len(notifier.sent)
        notifier.watchdog()  # systemd reads again: pings must go on, or it kills us
        receiver.settimeout(5)
        assert receiver.recv(4096) == b"WATCHDOG=1"
        assert notifier.enabled
    finally:
        notifier.close()
        receiver.close()
        shutil.rmtree(directory)


# -- watchdog_interval ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": ""}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "200000"}, 0.1),
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "200000", "WATCHDOG_PID": str(os.getpid())}, 0.1),
        ({"WATCHDOG_USEC": "200000", "WATCHDOG_PID": ""}, 0.1),
        ({"WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"}, None),
    ],
    ids=["unset", "empty", "zero", "0.2s", "30s", "own-pid", "empty-pid", "other-pid"],
)
def test_watchdog_interval(environ: dict[str, str], expected: float | None) -> None:
    """Half of WATCHDOG_USEC, when the watchdog is meant for this process."""
    assert watchdog_interval(environ) == expected


def test_watchdog_interval_not_a_number(caplog: pytest.LogCaptureFixture) -> None:
    """A WATCHDOG_USEC that is not a number is ignored with a warning."""
    assert watchdog_interval({"WATCHDOG_USEC": "20s"}) is None
    [warning] = warnings_of(caplog)
    assert "WATCHDOG_USEC='20s'" in warning


def test_watchdog_interval_defaults_to_os_environ(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a mapping it reads os.environ."""
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert watchdog_interval() == 0.5
