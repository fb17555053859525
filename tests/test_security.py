"""Security: tiered opens no listening socket, and never writes a secret out.

**No listening socket.**  A real ``tiered run`` daemon, under a stand-in for
systemd (``NOTIFY_SOCKET`` and ``WATCHDOG_USEC`` set), starts, reloads on
SIGHUP and stops on SIGTERM, on each backend.  It is started through
tests/daemons/audited.py, which records every socket the Python ``socket``
module makes, binds, connects, sends with or listens on (audit hooks, PEP
578).  While it runs, the test also reads the kernel's view in ``/proc``: the
daemon's sockets (``/proc/PID/fd``) looked up in ``/proc/PID/net/*``, which
sees uvloop's sockets too.  No socket may be bound or listening, no network
socket may exist at all; the only datagrams go to ``NOTIFY_SOCKET`` (a client
sends those, it does not listen).  The same check, run against a daemon whose
drivers do listen (tests/daemons/listener.py), must find them.

**No secret written out.**  A key handed from one driver to others
(tests/daemons/secret_daemon.py, whose values even ``repr()`` as the key)
never appears in what the daemon writes: its logs at debug level, the
failure lines, the JSON and SVG reports, the systemd notifications; nor in a
failed start-up.  The demo's CephX key (``tiered demo``) never appears in its
output, its report or its SVG timeline.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from support.daemon import ROOT, Daemon, tiered_command
from support.systemd import NotifyListener

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc; needs POSIX signals"
)

BACKENDS = ["asyncio", "uvloop", "trio"]
AUDITED = str(ROOT / "tests" / "daemons" / "audited.py")
PROBE = "tests.daemons.serve_probe:runtime"
SECRET_DAEMON = "tests.daemons.secret_daemon:runtime"
#: Flags of a listening AF_UNIX socket in /proc/net/unix (__SO_ACCEPTCON)
ACCEPTING = 0x10000
TCP_LISTEN = "0A"


# -- what the kernel says ----------------------------------------------------------


@dataclass
class Sockets:
    """The sockets a process holds, as /proc describes them."""

    count: int
    #: every AF_INET/AF_INET6 socket: "tcp 0100007F:1F90 state 0A"
    network: list[str]
    #: the sockets that listen or are bound to an address others can reach
    listening: list[str]


def sockets_of(pid: int) -> Sockets:
    """Look up the sockets of ``pid`` in ``/proc/PID/net``."""
    inodes: set[str] = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:  # closed meanwhile
            continue
        m = re.fullmatch(r"socket:\[(\d+)\]", target)
        if m:
            inodes.add(m[1])
    network: list[str] = []
    listening: list[str] = []
    for proto in ("tcp", "tcp6", "udp", "udp6", "raw", "raw6"):
        try:
            with open(f"/proc/{pid}/net/{proto}", encoding="ascii") as f:
                rows = f.read().splitlines()[1:]
        except FileNotFoundError:  # no IPv6 in this kernel
            continue
        for line in rows:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if inode not in inodes:
                continue
            entry = f"{proto} {local} state {state}"
            network.append(entry)
            port = int(local.rpartition(":")[2], 16)
            if (proto.startswith("tcp") and state == TCP_LISTEN) or (
                not proto.startswith("tcp") and port
            ):
                listening.append(entry)
    with open(f"/proc/{pid}/net/unix", encoding="utf-8") as f:
        for line in f.read().splitlines()[1:]:
            fields = line.split()
            flags, inode = int(fields[3], 16), fields[6]
            path = fields[7] if len(fields) > 7 else ""
            if inode in inodes and (flags & ACCEPTING or path):
                listening.append(f"unix {path or '(unnamed)'} flags {flags:#x}")
    return Sockets(len(inodes), network, listening)


def audit_events(path: Path) -> list[tuple[str, Any]]:
    """The ``[event, details]`` lines tests/daemons/audited.py wrote."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [(event, details) for event, details in map(json.loads, lines)]


@dataclass
class Served:
    """What a daemon did with sockets while it served."""

    status: int
    live: Sockets
    events: list[tuple[str, Any]]
    notified: list[str]
    notify_address: str
    output: str


def serve_audited(
    target: str, backend: str, tmp_path: Path, env: dict[str, str] | None = None
) -> Served:
    """Serve ``target`` under audit and a fake systemd: up, SIGHUP, look, SIGTERM."""
    log = tmp_path / f"audit-{backend}.jsonl"
    command = [sys.executable, AUDITED, "run", target, "--backend", backend]
    with NotifyListener() as systemd:
        full_env = {
            "AUDIT_LOG": str(log),
            "NOTIFY_SOCKET": systemd.address,
            "WATCHDOG_USEC": "200000",  # a WATCHDOG=1 every 0.1 s
            **(env or {}),
        }
        with Daemon(command, env=full_env) as d:
            d.wait_for(
                "stderr", lambda line: bool(re.search(r"runtime '\w+' is up", line))
            )
            d.signal(signal.SIGHUP)
            d.wait_for("stderr", "tiered: reloaded")
            systemd.wait_for("WATCHDOG=1")
            live = sockets_of(d.pid)
            d.signal(signal.SIGTERM)
            status = d.wait()
        notified = systemd.sync()
        return Served(
            status, live, audit_events(log), notified, systemd.address, d.output()
        )


# -- no listening socket -----------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_serving_opens_no_listening_socket(backend: str, tmp_path: Path) -> None:
    """tiered run (and serve()) binds nothing and listens on nothing."""
    served = serve_audited(PROBE, backend, tmp_path)
    what = f"{served.live}\n{served.events}\n{served.output}"
    assert served.status == 0, what
    assert served.live.count > 0, f"no socket at all seen in /proc: {what}"
    assert served.live.listening == [], what
    assert served.live.network == [], what
    kinds = {event for event, _ in served.events}
    assert "socket.bind" not in kinds, what
    assert "socket.listen" not in kinds, what
    assert "socket.connect" not in kinds, what
    # the only datagrams are notifications, sent to NOTIFY_SOCKET
    sent_to = [
        details[0] for event, details in served.events if event == "socket.sendto"
    ]
    assert sent_to, f"the audit saw no notification sent: {what}"
    assert set(sent_to) == {served.notify_address}, sent_to
    assert any(m.startswith("READY=1") for m in served.notified), served.notified
    assert "WATCHDOG=1" in served.notified


def test_the_check_sees_a_daemon_that_listens(tmp_path: Path) -> None:
    """The same check on a daemon whose drivers listen finds both sockets."""
    served = serve_audited(
        "tests.daemons.listener:runtime",
        "asyncio",
        tmp_path,
        env={"LISTENER_DIR": str(tmp_path)},
    )
    what = f"{served.live}\n{served.events}\n{served.output}"
    assert served.status == 0, what
    assert any(entry.startswith("tcp") for entry in served.live.listening), what
    assert any(str(tmp_path / "bound.sock") in e for e in served.live.listening), what
    kinds = [event for event, _ in served.events]
    assert "socket.bind" in kinds, what
    assert "socket.listen" in kinds, what


# -- no secret written out -----------------------------------------------------------


def _secret() -> str:
    """A fresh CephX-like key, so that no text can contain it by chance."""
    return "AQB" + secrets.token_urlsafe(24) + "=="


def _leaks(key: str, texts: dict[str, str]) -> list[str]:
    """The names of the texts that contain ``key``, whole or in part."""
    middle = key[3:19]  # also a piece of it, as a truncated repr would show
    return [name for name, text in texts.items() if key in text or middle in text]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_secret_handed_between_drivers_is_never_written_out(
    backend: str, tmp_path: Path
) -> None:
    """Logs (debug), notifications, the JSON and SVG reports hold no driver value."""
    key = _secret()
    texts: dict[str, str] = {}
    for suffix in ("json", "svg"):
        report = tmp_path / f"report.{suffix}"
        command = tiered_command(
            "run",
            SECRET_DAEMON,
            "--backend",
            backend,
            "--report",
            str(report),
            "--log-level",
            "debug",
        )
        with NotifyListener() as systemd:
            env = {"SECRET_DAEMON_KEY": key, "NOTIFY_SOCKET": systemd.address}
            with Daemon(command, env=env) as d:
                d.wait_for("stderr", "runtime 'vault' is up")
                d.signal(signal.SIGHUP)
                d.wait_for("stderr", "tiered: reloaded")
                d.signal(signal.SIGTERM)
                assert d.wait() == 0, d.output()
            texts[f"notifications ({suffix} run)"] = "\n".join(systemd.sync())
        texts[f"output ({suffix} run)"] = d.output()
        texts[f"report.{suffix}"] = report.read_text(encoding="utf-8")
        # the key did go from secrets through storage to qemu
        assert "qemu got the key: yes" in d.stdout, d.output()
        # and the texts are the real ones: statuses, drivers, the failure are in
        assert "pool 'ceph' active" in texts[f"output ({suffix} run)"]
        assert "storage" in texts[f"report.{suffix}"]
        assert "gpu: no device" in texts[f"output ({suffix} run)"]
    assert not _leaks(key, texts), f"the key leaked into {_leaks(key, texts)}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_failed_start_up_does_not_write_the_secret_out(
    backend: str, tmp_path: Path
) -> None:
    """A start-up that fails and rolls back describes the failure, not the values."""
    key = _secret()
    report = tmp_path / "report.json"
    command = tiered_command(
        "run", SECRET_DAEMON, "--backend", backend, "--report", str(report)
    )
    env = {"SECRET_DAEMON_KEY": key, "SECRET_DAEMON_FAIL": "1"}
    with Daemon(command, env=env) as d:
        assert d.wait() == 1, d.output()
    assert "qemu got the key: yes" in d.stdout, d.output()
    failure = [line for line in d.stderr if line.startswith("tiered: ")]
    assert any("guests: the monitor socket is gone" in line for line in failure)
    texts = {"output": d.output(), "report.json": report.read_text(encoding="utf-8")}
    assert not _leaks(key, texts), f"the key leaked into {_leaks(key, texts)}"


def test_the_demo_keeps_its_ceph_key_to_itself(tmp_path: Path) -> None:
    """tiered demo: the CephX key reaches storage, and none of what it prints."""
    key = _secret()
    state = tmp_path / "state"
    (state / "secrets").mkdir(parents=True)
    (state / "secrets" / "client.libvirt.json").write_text(
        json.dumps({"usage": "client.libvirt", "type": "ceph", "value": key})
    )
    svg = tmp_path / "start-up.svg"
    command = tiered_command(
        "demo", "--restarts", "2", "--state-dir", str(state), "--svg", str(svg)
    )
    with Daemon(command) as d:
        assert d.wait(timeout=60) == 0, d.output()
    # the key was used: in tiered mode storage always had it for the rbd pool
    assert any(
        re.match(r"rbd pool without its key\s+0\s", line) for line in d.stdout
    ), d.output()
    with Daemon(
        tiered_command("demo", "--restarts", "1", "--state-dir", str(state), "--json")
    ) as j:
        assert j.wait(timeout=60) == 0, j.output()
    texts = {
        "output": d.output(),
        "json output": j.output(),
        "svg": svg.read_text(encoding="utf-8"),
    }
    assert not _leaks(key, texts), f"the key leaked into {_leaks(key, texts)}"
