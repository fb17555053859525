"""The demo host's state directory and its guests: real, detached processes.

A guest ("domain" in libvirt's words) is ``python -c <sleep loop>`` with an
argv that names it: ``tiered-demo-domain <name> host=<pid> disk=<pool>/<vol>``.
It runs in its own session, so it outlives a daemon restart, as a QEMU process
outlives libvirtd.  Its pid file is ``<state>/run/<name>.pid``.

The demo process (the "host") is the guests' parent.  It starts them, reaps
and restarts the ones a hypervisor driver killed, and kills every one of them
when it ends (:meth:`Guests.kill_all`), whatever the reason it ends.  As a last
resort a guest also exits by itself within a few seconds of its host
disappearing (a ``kill -9`` of the demo leaves nothing behind for long).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = [
    "DOMAINS",
    "MARKER",
    "POOLS",
    "Domain",
    "Guests",
    "Pool",
    "guest_pids",
    "guest_process",
    "prepare_state",
]

#: In the command line of every guest: how tests (and you) find them.
MARKER = "tiered-demo-domain"

#: Seconds between two checks, in a guest, that its host is still there.
HOST_WATCH = 5.0

# The guest: sleep until killed; exit if the host (the demo) went away.
GUEST_CODE = f"""\
import os, sys, time
host = int(sys.argv[3].partition("=")[2])
while True:
    time.sleep({HOST_WATCH})
    if os.getppid() != host:
        sys.exit(0)
"""


@dataclass(frozen=True, slots=True)
class Pool:
    """A storage pool definition (``<state>/pools/<name>.json``)."""

    name: str
    type: str  # "dir" or "rbd"
    secret: str | None = None  # usage of the CephX key an rbd pool needs


@dataclass(frozen=True, slots=True)
class Domain:
    """A guest definition (``<state>/domains/<name>.json``)."""

    name: str
    driver: str  # "qemu" or "lxc"
    pool: str
    volume: str


#: Activated by the storage driver's autostart, in this order.
POOLS = (
    Pool("default", "dir"),
    Pool("images", "dir"),
    Pool("ceph", "rbd", secret="client.libvirt"),
)

#: The guests created before the daemon first starts.
DOMAINS = (
    Domain("web", "qemu", "default", "web.qcow2"),
    Domain("db", "qemu", "ceph", "db-data"),
    Domain("ci", "qemu", "images", "ci.qcow2"),
    Domain("proxy", "lxc", "default", "proxy-rootfs"),
    Domain("build", "lxc", "images", "build-rootfs"),
)


def prepare_state(state: Path) -> None:
    """Write the host's persistent configuration into the state directory.

    Secrets, networks, filters, pools (with their volumes) and domains, as
    ``/etc/libvirt`` and ``/var/lib/libvirt`` hold them.  Runtime state
    (``run/``, ``pools/*.active``) from an earlier demo is removed.
    """
    for sub in ("secrets", "networks", "nwfilter", "pools", "domains", "run"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    for stale in [*(state / "run").rglob("*"), *(state / "pools").glob("*.active")]:
        if stale.is_file():
            stale.unlink()
    secret = state / "secrets" / "client.libvirt.json"
    if not secret.exists():
        value = {
            "usage": "client.libvirt",
            "type": "ceph",
            "value": os.urandom(16).hex(),
        }
        secret.write_text(json.dumps(value))
    (state / "networks" / "default.json").write_text(
        json.dumps({"name": "default", "bridge": "virbr0", "autostart": True})
    )
    for rule in ("clean-traffic", "no-mac-spoofing", "no-ip-spoofing"):
        (state / "nwfilter" / f"{rule}.json").write_text(json.dumps({"name": rule}))
    for pool in POOLS:
        (state / "pools" / f"{pool.name}.json").write_text(json.dumps(asdict(pool)))
        (state / "volumes" / pool.name).mkdir(parents=True, exist_ok=True)
    for domain in DOMAINS:
        (state / "domains" / f"{domain.name}.json").write_text(
            json.dumps(asdict(domain))
        )
        volume = state / "volumes" / domain.pool / domain.volume
        if not volume.exists():
            volume.write_bytes(b"\0" * 4096)


def _cmdline(pid: int) -> list[str] | None:
    """The argv of process ``pid``, None if it is gone (or a zombie)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    if not raw:  # a zombie, or a kernel thread
        return None
    return raw.decode(errors="replace").rstrip("\0").split("\0")


def guest_process(argv: list[str] | None, name: str | None = None) -> bool:
    """Whether ``argv`` is a demo guest's (the one called ``name``, if given)."""
    if argv is None or MARKER not in argv:
        return False
    index = argv.index(MARKER)
    return name is None or argv[index + 1 : index + 2] == [name]


def guest_pids(host: int | None = None) -> list[int]:
    """Pids of the running demo guests (of the demo process ``host``, if given).

    Scans ``/proc``: Linux only; elsewhere it returns an empty list.
    """
    found: list[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        argv = _cmdline(int(entry))
        if not guest_process(argv):
            continue
        assert argv is not None
        if host is None or f"host={host}" in argv:
            found.append(int(entry))
    return sorted(found)


class Guests:
    """The guests of one demo: starts, restarts and finally kills them."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.run_dir = state / "run"
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()

    def pid_file(self, name: str) -> Path:
        """Where the pid of guest ``name`` is kept."""
        return self.run_dir / f"{name}.pid"

    def _spawn(self, domain: Domain) -> None:
        argv = [
            sys.executable,
            "-c",
            GUEST_CODE,
            MARKER,
            domain.name,
            f"host={os.getpid()}",
            f"disk={domain.pool}/{domain.volume}",
            f"driver={domain.driver}",
        ]
        with self._lock:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # survives the daemon, and Ctrl-C's group
                close_fds=True,
            )
            self._procs[domain.name] = proc
        self.pid_file(domain.name).write_text(f"{proc.pid}\n")

    def ensure_running(self) -> int:
        """Start every guest that is not running (reaping dead ones); return how many.

        Returns once the new guests show their command line in /proc (for a
        moment after exec it can read empty), as guests that were running
        long before the daemon restarted would.
        """
        started: list[str] = []
        for domain in DOMAINS:
            proc = self._procs.get(domain.name)
            if proc is not None and proc.poll() is None:
                continue
            self._spawn(domain)
            started.append(domain.name)
        if Path("/proc/self/cmdline").exists():
            deadline = time.monotonic() + 5.0
            for name in started:
                pid = self._procs[name].pid
                while not guest_process(_cmdline(pid), name):
                    if (
                        time.monotonic() > deadline
                        or self._procs[name].poll() is not None
                    ):
                        break
                    time.sleep(0.001)
        return len(started)

    def running(self) -> dict[str, int]:
        """Name to pid of the guests alive now."""
        return {
            name: proc.pid for name, proc in self._procs.items() if proc.poll() is None
        }

    def kill_all(self) -> int:
        """SIGKILL every guest of this demo and reap it; return how many were alive.

        Also kills any guest of this process that /proc shows and the
        bookkeeping missed (one started just as an interrupt arrived).
        """
        killed = 0
        with self._lock:
            procs = list(self._procs.values())
        for proc in procs:
            if proc.poll() is None:
                try:
                    proc.kill()
                except ProcessLookupError:
                    pass
                killed += 1
        for proc in procs:
            proc.wait()
        for pid in guest_pids(os.getpid()):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            killed += 1
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        for domain in DOMAINS:
            self.pid_file(domain.name).unlink(missing_ok=True)
        return killed
