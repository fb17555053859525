"""``tiered demo --chaos``: the Ceph monitors drop the storage driver while guests run.

The demo host runs the "Ceph monitors": a real TCP server on the loopback
interface, outside the daemon.  In the chaos run the storage driver connects
to it when it activates the rbd pool and watches that connection in a
background task (``ctx.start_soon``).  The demo then closes the connection,
as a monitor that restarts or a network partition would: the watch raises,
and the storage driver has failed after start-up.

With supervision (``restart=tiered.Restart(...)`` on the storage driver),
tiered stops the drivers that require storage (qemu and lxc, which leaves
their guests running), then storage; after the backoff it starts storage
again, which reconnects to the monitors and activates its pools, then qemu
and lxc, which reconnect to the guests that kept running.  Without it, the
run stops: every driver stops, and the guests keep running unmanaged.

The figures come from the run itself: ``DriverRecord.restarts``,
``Report.events``, the guests' pids before and after.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import anyio
from anyio.abc import SocketAttribute

import tiered

from ._drivers import build_runtime
from ._guests import DOMAINS
from ._host import Host

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from anyio.abc import SocketStream, TaskStatus

    from ._guests import Guests
    from ._host import Mode

__all__ = ["POLICY", "ChaosStats", "Monitor", "format_chaos", "run_chaos"]

#: The storage driver's supervision in the supervised run: tiered's defaults.
POLICY: Final = tiered.Restart(max_restarts=3, window=60.0, delay=0.1)

#: Seconds the guests run between the daemon being up and the next failure.
CALM: Final = 0.1

#: Seconds within which the daemon must be running again after a failure
#: (about 0.7 s at most when measured; a daemon that never notices is a bug).
REACTION: Final = 10.0

#: The drivers whose restarts the summary shows: storage and its dependents.
SUBTREE: Final = ("storage", "qemu", "lxc")


class Monitor:
    """The Ceph monitors: a loopback server that keeps one session per client.

    Each session says ``HEALTH_OK`` and then stays open until :meth:`fail`
    closes every session: the client reads the end of the stream.
    """

    def __init__(self) -> None:
        self.sessions = 0  # sessions opened so far
        self._drop = anyio.Event()

    async def serve(self, *, task_status: TaskStatus[int]) -> None:
        """Listen on a free loopback port; report it; serve until cancelled."""
        async with await anyio.create_tcp_listener(
            local_host="127.0.0.1", local_port=0
        ) as listener:
            port: int = listener.extra(SocketAttribute.local_port)
            task_status.started(port)
            await listener.serve(self._session)

    async def _session(self, stream: SocketStream) -> None:
        async with stream:
            self.sessions += 1
            drop = self._drop
            await stream.send(b"HEALTH_OK\n")
            await drop.wait()

    def fail(self) -> None:
        """Close every open session (new ones stay up until the next call)."""
        self._drop.set()
        self._drop = anyio.Event()


@dataclass
class ChaosStats:
    """What one chaos run did, from its report and the guests' processes."""

    mode: Mode
    supervised: bool
    guests: int = len(DOMAINS)
    failures_injected: int = 0
    #: driver name to DriverRecord.restarts
    restarts: dict[str, int] = field(default_factory=dict)
    #: Report.events counted by kind: failure, restart, gave-up
    events: Counter[str] = field(default_factory=Counter)
    guests_killed: int = 0
    #: guests alive afterwards with the pid they had before the run
    guests_kept: int = 0
    #: guests reconnected by the hypervisors, one entry per start or restart
    reconnects: list[int] = field(default_factory=list)
    #: seconds from each failure to the daemon running again
    recoveries: list[float] = field(default_factory=list)
    #: sessions the storage driver opened with the Ceph monitors
    monitor_sessions: int = 0
    #: every ``run.state`` the run went through, from "starting" on
    states: list[str] = field(default_factory=list)
    #: every driver's status once the run is over
    statuses: dict[str, str] = field(default_factory=dict)
    #: "running", or the message of the ShutdownError that stopped it
    outcome: str = "running"
    #: "restart N: message" for each warning or error the daemon logged
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """The column's name."""
        return "supervised" if self.supervised else "unsupervised"

    def to_json(self) -> dict[str, Any]:
        """The chaos run's JSON line of ``--json``."""
        return {
            "chaos": self.label,
            "mode": self.mode,
            "failures_injected": self.failures_injected,
            "driver_restarts": dict(self.restarts),
            "events": dict(sorted(self.events.items())),
            "guests_killed": self.guests_killed,
            "guests_kept": self.guests_kept,
            "guests": self.guests,
            "daemon": "running" if self.outcome == "running" else "stopped",
            "recovery_max_s": (
                round(max(self.recoveries), 4) if self.recoveries else None
            ),
        }


class _States:
    """Wakes whoever waits on the run's state, at each of its changes."""

    def __init__(self, run: tiered.Run) -> None:
        self.run = run
        self.seen: list[str] = []  # every state the run announced, in order
        self._changed = anyio.Event()
        run.listen(self._event)

    def _event(self, event: tiered.RunEvent) -> None:
        if event.kind == "state":
            self.seen.append(str(event.value))
            self._changed.set()
            self._changed = anyio.Event()

    async def until(self, check: Callable[[str], bool]) -> None:
        """Return once ``check(run.state)`` holds."""
        while not check(self.run.state):
            await self._changed.wait()


def _found(host: Host, stats: ChaosStats, what: str) -> None:
    """Count the guests the hypervisors just found; all of them, or it is a bug."""
    seen = len(host.reconnected) + len(host.killed)
    if seen != len(DOMAINS):  # the numbers would mean nothing
        msg = f"{what}: the hypervisors found {seen} running guests of {len(DOMAINS)}"
        raise RuntimeError(msg)
    stats.reconnects.append(len(host.reconnected))
    stats.guests_killed += len(host.killed)


async def run_chaos(
    state: Path,
    seed: int,
    mode: Mode,
    guests: Guests,
    *,
    supervised: bool,
    failures: int,
    drain_log: Callable[[], list[str]],
) -> ChaosStats:
    """One start of the daemon, then ``failures`` monitor losses while guests run.

    Without supervision the first loss stops the daemon, so one is injected.
    """
    stats = ChaosStats(mode, supervised)
    guests.ensure_running()
    before = guests.running()
    monitor = Monitor()
    async with anyio.create_task_group() as tg:
        port = await tg.start(monitor.serve)
        host = Host(state, seed, mode, monitor=port)
        runtime = build_runtime(host, restart=POLICY if supervised else None)
        host.begin("chaos")
        run = runtime.run()
        states = _States(run)
        try:
            async with run:
                _found(host, stats, "start-up")
                for k in range(failures if supervised else 1):
                    await anyio.sleep(CALM)  # the guests run
                    host.begin(f"chaos-{k}")
                    began = anyio.current_time()
                    stats.failures_injected += 1
                    monitor.fail()
                    # "restarting", or the run stops (which cancels this body)
                    with anyio.fail_after(REACTION):
                        await states.until(lambda state: state != "running")
                        await states.until(lambda state: state == "running")
                    stats.recoveries.append(anyio.current_time() - began)
                    _found(host, stats, f"restart {k + 1}")
        except tiered.ShutdownError as exc:
            stats.outcome = exc.message
        tg.cancel_scope.cancel()
    report = run.report
    by_name = {r.name: r for r in report.drivers}
    stats.restarts = {name: by_name[name].restarts for name in SUBTREE}
    stats.statuses = {r.name: r.status for r in report.drivers}
    stats.events = Counter(e.kind for e in report.events)
    stats.monitor_sessions = monitor.sessions
    stats.states = states.seen
    after = guests.running()
    stats.guests_kept = sum(after.get(name) == pid for name, pid in before.items())
    stats.notes = drain_log()
    return stats


def format_chaos(columns: list[ChaosStats]) -> str:
    """One column per chaos run, side by side."""

    def events(s: ChaosStats) -> str:
        return ", ".join(f"{n} {kind}" for kind, n in sorted(s.events.items())) or "-"

    def recovery(s: ChaosStats) -> str:
        if not s.recoveries:
            return "-"
        return f"{min(s.recoveries):.3f}-{max(s.recoveries):.3f} s"

    rows: list[tuple[str, list[str]]] = [
        ("storage restart=", [_policy(s) for s in columns]),
        ("monitor connections lost", [str(s.failures_injected) for s in columns]),
        (
            "restarts: " + ", ".join(SUBTREE),
            [", ".join(str(s.restarts.get(n, 0)) for n in SUBTREE) for s in columns],
        ),
        ("report.events", [events(s) for s in columns]),
        (
            "guests reconnected",
            ["+".join(map(str, s.reconnects)) or "-" for s in columns],
        ),
        ("guests killed", [str(s.guests_killed) for s in columns]),
        (
            "guests alive, same pid",
            [f"{s.guests_kept} of {s.guests}" for s in columns],
        ),
        ("failure to running again", [recovery(s) for s in columns]),
        ("daemon at the end", [_outcome(s) for s in columns]),
    ]
    label = max(len(r[0]) for r in rows)
    width = max(12, *(len(v) for _, values in rows for v in values))
    lines = [
        f"{name:<{label}}" + "".join(f"  {v:>{width}}" for v in values)
        for name, values in rows
    ]
    header = f"{'':<{label}}" + "".join(f"  {s.label:>{width}}" for s in columns)
    return "\n".join([header, "-" * len(header), *lines])


def _policy(s: ChaosStats) -> str:
    if not s.supervised:
        return "None"
    return f"Restart({POLICY.max_restarts}, {POLICY.window:g}s, {POLICY.delay:g}s)"


def _outcome(s: ChaosStats) -> str:
    if s.outcome == "running":
        return "running"
    if "gave up" in s.outcome:
        return "stopped: gave up"
    return "stopped: ShutdownError"
