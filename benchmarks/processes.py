"""Daemons as real processes, for workload 6 (exec to READY).

A run spawns ``python -m NAME`` (``subprocess.Popen``) in ``exec_daemons/``,
with ``NOTIFY_SOCKET`` naming a real ``AF_UNIX`` datagram socket bound for
that run alone, and reads datagrams until one holds a ``READY=1`` line sent
by that process.  The clock runs from just before the spawn to the moment the
datagram is there to read.  Then SIGTERM, and a second clock from READY=1
until the process has exited.  A process that sends no READY=1 in time, exits
before it, does not exit in time, or exits with a status other than 0 is a
failed run: it is killed if it still runs, and gives no figure.
"""

from __future__ import annotations

import math
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

DAEMONS_DIR = Path(__file__).resolve().parent / "exec_daemons"
ALL = frozenset({"asyncio", "uvloop", "trio"})
# what would change how a fresh interpreter starts (byte code not written,
# profiling, debug modes, the working directory left off sys.path), or would
# tell a daemon of a supervisor other than the benchmark
UNSET = frozenset(
    {
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONPROFILEIMPORTTIME",
        "PYTHONDEVMODE",
        "PYTHONSAFEPATH",
        "PYTHONASYNCIODEBUG",
        "PYTHONTRACEMALLOC",
        "NOTIFY_SOCKET",
        "WATCHDOG_USEC",
        "WATCHDOG_PID",
    }
)
# SO_PASSCRED makes the kernel attach the sender's (pid, uid, gid) to each
# datagram, as systemd reads them to accept only the service's main process
CREDENTIALS = struct.Struct("3i")
PASSCRED = hasattr(socket, "SO_PASSCRED")


def child_environment(**extra: str) -> dict[str, str]:
    """The benchmark's environment for a child interpreter, less ``UNSET``."""
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    env.update(extra)
    return env


@contextmanager
def scratch_dir() -> Iterator[Path]:
    """A fresh temporary directory for the runs' sockets and logs, then gone.

    In the system's temporary directory, whatever the caller's: a socket's
    path must fit in ``sun_path`` (107 bytes).
    """
    with tempfile.TemporaryDirectory(prefix="tiered-exec-") as tmp:
        yield Path(tmp)


@dataclass(frozen=True)
class Daemon:
    """One way of serving the workload's drivers, as a command.

    Args:
        key: short identifier used in the JSON.
        label: what the Markdown tables call it.
        args: the interpreter's arguments (after ``python``).
        backends: the event loops it runs on; None for one that runs none.
        how: what it does, for the results.
        backend_flag: what precedes the backend's name on its command line
            (nothing: the name is its last argument).
    """

    key: str
    label: str
    args: tuple[str, ...]
    backends: frozenset[str] | None
    how: str
    backend_flag: tuple[str, ...] = ()

    def arguments(self, backend: str | None) -> list[str]:
        """The interpreter's arguments for one run on ``backend``."""
        if backend is None:
            return list(self.args)
        return [*self.args, *self.backend_flag, backend]

    def command(self, backend: str | None) -> str:
        """The command line as the results show it."""
        return " ".join(["python", *self.arguments(backend)])


TIERED_CLI = Daemon(
    "tiered_cli",
    "`tiered run` (the CLI)",
    ("-m", "tiered", "run", "exec_runtime:runtime"),
    ALL,
    "The command as a unit file would run it, with the runtime in a module "
    "of its own; logging at INFO (its default) to stderr.",
    ("--backend",),
)
TIERED_SERVE = Daemon(
    "tiered_serve",
    "`tiered.serve(runtime)` in a script",
    ("-m", "exec_serve"),
    ALL,
    "`logging.basicConfig` at INFO as the CLI does, then "
    "`tiered.serve(runtime, backend=B)`: the CLI less its command line.",
)
ANYIO_DAEMON = Daemon(
    "anyio_daemon",
    "anyio daemon by hand",
    ("-m", "exec_anyio"),
    ALL,
    "By hand: one anyio task group per tier to start, `READY=1` with "
    "`socket.sendto`, wait for SIGTERM (`anyio.open_signal_receiver`), one task "
    "group per tier in reverse to stop; logging at INFO.",
)
ASYNCIO_DAEMON = Daemon(
    "asyncio_daemon",
    "asyncio daemon by hand",
    ("-m", "exec_asyncio"),
    frozenset({"asyncio", "uvloop"}),
    "As the anyio daemon, without anyio: `asyncio.TaskGroup` per tier, "
    "`loop.add_signal_handler`; on uvloop through `asyncio.Runner`.",
)
FLOOR = Daemon(
    "floor",
    "interpreter floor",
    ("-m", "exec_floor"),
    None,
    "An interpreter that sends `READY=1` and waits for SIGTERM: no event "
    "loop, no logging, no drivers.",
)


@dataclass(frozen=True)
class Outcome:
    """One run of a daemon.

    ``ready``: seconds from just before the spawn to READY=1 received;
    ``exit``: seconds from READY=1 received to the process reaped (SIGTERM
    is sent at once); both None when the run failed, and ``failure`` says
    why.  ``message`` is the READY=1 datagram; ``before_ready`` counts the
    datagrams the daemon sent before it (tiered's ``STATUS=tier N up``).
    """

    ready: float | None
    exit: float | None
    message: str = ""
    before_ready: int = 0
    failure: str | None = None


class NotifyReceiver:
    """A bound ``AF_UNIX`` datagram socket: the notify socket of one run."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(
            socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
        )
        if PASSCRED:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.setblocking(False)
        path.unlink(missing_ok=True)
        self.sock.bind(str(path))

    def close(self) -> None:
        """Close the socket and remove its file."""
        self.sock.close()
        self.path.unlink(missing_ok=True)

    def receive(self) -> list[tuple[str, int | None]]:
        """Every datagram queued now, with its sender's pid (None if unknown)."""
        space = socket.CMSG_SPACE(CREDENTIALS.size) if PASSCRED else 0
        received: list[tuple[str, int | None]] = []
        while True:
            try:
                data, ancillary, _, _ = self.sock.recvmsg(4096, space)
            except BlockingIOError:
                return received
            sender = None
            for level, kind, payload in ancillary:
                if PASSCRED and (level, kind) == (
                    socket.SOL_SOCKET,
                    socket.SCM_CREDENTIALS,
                ):
                    sender = CREDENTIALS.unpack(payload[: CREDENTIALS.size])[0]
            received.append((data.decode(errors="replace"), sender))


def _pidfd(pid: int) -> int | None:
    """A pidfd for ``pid`` (Linux 5.3+): readable once the process exited."""
    if not hasattr(os, "pidfd_open"):
        return None
    try:
        return os.pidfd_open(pid)
    except OSError:  # an older kernel
        return None


def _wait_ready(
    proc: subprocess.Popen[bytes],
    receiver: NotifyReceiver,
    pidfd: int | None,
    deadline: float,
) -> tuple[float, str, int] | str:
    """(when READY=1 was there, the datagram, datagrams before it), or why not."""
    poller = select.poll()
    poller.register(receiver.sock, select.POLLIN)
    if pidfd is not None:
        poller.register(pidfd, select.POLLIN)
    before = 0
    while True:
        left = deadline - perf_counter()
        if left <= 0:
            return "no READY=1 in time"
        # without a pidfd, look at the process now and then: a daemon that
        # died before READY=1 must not cost the whole timeout
        wait = left if pidfd is not None else min(left, 0.05)
        events = dict(poller.poll(math.ceil(wait * 1000)))
        now = perf_counter()
        if receiver.sock.fileno() in events:
            for text, sender in receiver.receive():
                if sender is not None and sender != proc.pid:
                    continue  # as systemd's NotifyAccess=main: the main process only
                if "READY=1" in text.split("\n"):
                    return now, text, before
                before += 1
        # checked after the socket: a READY=1 sent just before exiting counts
        if (pidfd is not None and pidfd in events) or (
            pidfd is None and proc.poll() is not None
        ):
            return f"exited with status {proc.wait()} before READY=1"


def _wait_exit(
    proc: subprocess.Popen[bytes], pidfd: int | None, deadline: float
) -> tuple[float, int] | None:
    """(when the process had exited, its status), or None if it still runs."""
    left = max(0.0, deadline - perf_counter())
    if pidfd is not None:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if not poller.poll(math.ceil(left * 1000)):
            return None
        exited = perf_counter()
        return exited, proc.wait()
    # Popen.wait polls in steps of up to 50 ms: exit times are coarse here
    try:
        status = proc.wait(timeout=left)
    except subprocess.TimeoutExpired:
        return None
    return perf_counter(), status


def _supervise(
    proc: subprocess.Popen[bytes],
    receiver: NotifyReceiver,
    spawned: float,
    timeout: float,
) -> Outcome:
    pidfd = _pidfd(proc.pid)
    try:
        got = _wait_ready(proc, receiver, pidfd, spawned + timeout)
        if isinstance(got, str):
            return Outcome(None, None, failure=got)
        ready, message, before = got
        proc.send_signal(signal.SIGTERM)
        exited = _wait_exit(proc, pidfd, ready + timeout)
        if exited is None:
            return Outcome(None, None, message, before, "did not exit after SIGTERM")
        at, status = exited
        if status != 0:
            return Outcome(
                None, None, message, before, f"exit status {status} after SIGTERM"
            )
        return Outcome(ready - spawned, at - ready, message, before)
    finally:
        if pidfd is not None:
            os.close(pidfd)


def run_daemon(
    daemon: Daemon,
    backend: str | None,
    workdir: Path,
    timeout: float,
    drivers: int,
    tiers: int,
) -> Outcome:
    """Spawn ``daemon`` on ``backend``, time it to READY=1 and to its exit.

    ``drivers`` no-op drivers in ``tiers`` tiers (``exec_common`` reads
    them from the environment).  Its stdout and stderr go to a file in
    ``workdir`` (its log, at INFO), whose last lines a failure quotes.
    ``timeout`` bounds each of the two waits; a process still running after
    a failure is killed.
    """
    receiver = NotifyReceiver(workdir / "notify.sock")
    log_path = workdir / f"{daemon.key}-{backend or 'none'}.log"
    try:
        env = child_environment(
            NOTIFY_SOCKET=str(receiver.path),
            TIERED_BENCH_DRIVERS=str(drivers),
            TIERED_BENCH_TIERS=str(tiers),
        )
        argv = [sys.executable, *daemon.arguments(backend)]
        with log_path.open("wb") as log:
            spawned = perf_counter()
            proc = subprocess.Popen(
                argv,
                cwd=DAEMONS_DIR,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            outcome = _supervise(proc, receiver, spawned, timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    finally:
        receiver.close()
    if outcome.failure is not None:
        tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
        why = f"{outcome.failure} (timeout {timeout:g} s)"
        if tail:
            why += "; its log ends: " + " | ".join(tail)
        outcome = Outcome(None, None, outcome.message, outcome.before_ready, why)
    return outcome
