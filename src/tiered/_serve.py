"""``serve()``: run a runtime as a daemon, with signals, systemd notify and a status file.

SIGTERM and SIGINT stop gracefully (during start-up too: a rollback), after
a drain once the daemon runs; a second SIGINT cuts the drain or the stop
short; SIGHUP reloads (``_control``).  Under systemd (``NOTIFY_SOCKET``)
the daemon reports READY, STATUS (tiers coming up, failures, restarts),
RELOADING, STOPPING, EXTEND_TIMEOUT_USEC and pings the watchdog.  With a
status file it rewrites its state for exec probes.  See docs/systemd.md and
docs/kubernetes.md.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from typing import TYPE_CHECKING, Any, Literal, TextIO

import anyio

from ._control import Control, watch_signals
from ._exceptions import ConfigError, ShutdownError, StartupError, UsageError, public
from ._notify import Notifier, watchdog_interval

if TYPE_CHECKING:
    from pathlib import Path

    from ._journal import RunEvent
    from ._report import Report
    from ._run import Run
    from ._runtime import Runtime

    # a Literal costs a daemon's start-up: for type checkers only
    Backend = Literal["asyncio", "uvloop", "trio"]


__all__ = ["aserve", "serve"]

log = logging.getLogger("tiered")

#: the variables that switch tracing on: ``tiered._otel_env.SWITCHES``,
#: repeated so that a daemon that sets none of them never imports that
#: module (tests/test_otel_environment.py checks that the two agree)
OTEL_SWITCHES = (
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
)

BACKENDS: dict[str, tuple[str, dict[str, Any]]] = {
    "asyncio": ("asyncio", {}),
    "uvloop": ("asyncio", {"use_uvloop": True}),
    "trio": ("trio", {}),
}


@public
async def aserve(
    runtime: Runtime,
    *,
    schedule: str | None = None,
    drain: float = 0.0,
    status_file: str | Path | None = None,
    report: str | Path | None = None,
    notifier: Notifier | None = None,
) -> None:
    """Serve ``runtime`` in the current event loop until SIGTERM or SIGINT.

    The async form of :func:`serve`, to embed tiered in a program that
    already runs an event loop.  Must run in the main thread (signals).
    Unlike :func:`serve`, it raises instead of returning an exit status.

    Example::

        async def main() -> None:
            await tiered.aserve(runtime, drain=5, status_file="/run/virtd.json")

        anyio.run(main, backend="trio")

    Args:
        runtime: the runtime to run.
        schedule: ``"tiers"`` or ``"dependencies"``; None takes the runtime's.
        drain: seconds to stay up but not ready after SIGTERM or SIGINT,
            before stopping (a second SIGINT ends it at once).
        status_file: a file to rewrite, atomically, at every change of the
            daemon's state or of a driver's status (for ``tiered probe``).
        report: a file to write the run's report to when it ends: ``.svg``,
            ``.json``, or text for any other suffix.
        notifier: where systemd notifications go; defaults to
            ``$NOTIFY_SOCKET`` (nothing when unset).

    Raises:
        ConfigError: the plan is invalid (nothing started), or ``drain`` is.
        StartupError: a required driver failed; what started was stopped.
        ShutdownError: the run failed after start-up (a required driver
            failed, or a restart gave up), or some driver failed to stop.
    """
    seconds = _drain_seconds(drain)
    notify = notifier if notifier is not None else Notifier.from_environ()
    run = runtime.run(schedule=schedule)
    # traced when the OpenTelemetry SDK is configured by its environment
    # variables; nothing is imported otherwise (docs/telemetry.md)
    if any(os.environ.get(name) for name in OTEL_SWITCHES):
        from ._otel_env import trace_if_configured

        trace_if_configured(run)
    status, ctl = _listeners(run, notify, seconds, status_file)
    outcome: BaseException | None = None
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(watch_signals, ctl, tg)
            if status is not None:
                tg.start_soon(status.keep_writing, name="tiered status file")
            try:
                with ctl.startup:
                    async with run:
                        await _serving(run, ctl, notify, tg)
                if ctl.startup.cancelled_caught:
                    # a rollback on SIGTERM/SIGINT whose stops failed or were
                    # cut short is no clean stop, though the cancellation that
                    # caused it ends quietly
                    error = run.shutdown_error()
                    if error is not None:
                        raise error
            except Exception as exc:
                # raised after the task group, which would wrap it in a group
                outcome = exc
            tg.cancel_scope.cancel()
    finally:
        if status is not None:
            status.write()  # the last word: stopped
        if report is not None:
            _write_report(run.report, report)
        notify.close()
    if outcome is not None:
        raise outcome


def _drain_seconds(drain: object) -> float:
    """``drain`` checked: a finite number of seconds >= 0."""
    seconds = (
        drain if isinstance(drain, int | float) and not isinstance(drain, bool) else -1
    )
    if not 0 <= seconds < math.inf:
        msg = f"serve(drain={drain!r}): the drain is a finite number of seconds >= 0"
        raise ConfigError(msg)
    return float(seconds)


def _listeners(
    run: Run, notify: Notifier, drain: float, status_file: str | Path | None
) -> tuple[_StatusWriter | None, Control]:
    """The status file's writer, the control, and the notifications, listening to ``run``."""
    status = _StatusWriter(run, status_file) if status_file is not None else None
    ctl = Control(
        run, notify, drain=drain, changed=status.changed if status else _nothing
    )
    if status is not None:
        status.ctl = ctl
        run.listen(status.event)
    run.listen(_Notifications(run, notify, ctl))
    return status, ctl


async def _serving(
    run: Run, ctl: Control, notify: Notifier, tg: anyio.abc.TaskGroup
) -> None:
    """The daemon is up: tell systemd, then wait for the word to stop (and drain)."""
    # a SIGTERM as the last tier came up has begun the stop already: no
    # READY=1 after its STOPPING=1
    if ctl.phase == "starting":
        ctl.set_phase("running")
        notify.ready(status=_summary(run))
        interval = watchdog_interval()
        if interval is not None and notify.enabled:
            tg.start_soon(_watchdog, notify, interval)
    try:
        await ctl.stop.wait()
        await ctl.wait_drained()
    finally:  # asked to stop, or the run stopped on its own (a failure)
        if ctl.phase in ("running", "starting"):
            ctl.set_phase("stopping")
            notify.stopping()


class _Notifications:
    """The run's events, as systemd hears them."""

    def __init__(self, run: Run, notify: Notifier, ctl: Control) -> None:
        self.run = run
        self.notify = notify
        self.ctl = ctl
        self.state: str | None = None

    def __call__(self, event: RunEvent) -> None:
        kind = event.kind
        notify = self.notify
        if kind == "tier":
            notify.status(f"tier {event.tier} up")
        elif kind == "status":
            notify.status(f"{event.driver}: {event.value}")
        elif kind == "extend" and self.ctl.phase != "running":
            notify.extend_timeout(float(event.value or 0))
        elif kind in ("failure", "restart", "gave-up") and event.detail:
            notify.status(event.detail)
        elif kind == "state":
            # back from "restarting" (not the same state told again: the
            # run failing leaves it as it was)
            before, self.state = self.state, str(event.value)
            if (
                before == "restarting"
                and self.state == "running"
                and self.ctl.running()
            ):
                notify.status("running again: " + _summary(self.run))


class _StatusWriter:
    """Rewrites the status file at every change; a burst of changes is one write."""

    def __init__(self, run: Run, path: str | Path) -> None:
        from ._status import StatusFile  # only a daemon with a status file needs it

        self.run = run
        self.file = StatusFile(path, run.plan.name)
        self.ctl: Control | None = None
        self._dirty = True
        self._wake = anyio.Event()

    def event(self, event: RunEvent) -> None:
        if event.kind in ("state", "driver"):
            self.changed()

    def changed(self) -> None:
        self._dirty = True
        self._wake.set()

    def write(self) -> None:
        run = self.run
        phase = self.ctl.phase if self.ctl is not None else "starting"
        state: str = run.state
        if state == "new":
            state = "starting"
        elif phase in ("draining", "stopping") and state in ("running", "restarting"):
            state = "stopping"  # the drivers still run, but the daemon stops
        self.file.write(
            state=state,
            ready=state == "running" and phase == "running",
            live=run.live,
            drivers=run.statuses(),
        )

    async def keep_writing(self) -> None:
        while True:
            if self._dirty:
                self._dirty = False
                self.write()
                await anyio.sleep(0.01)  # what changes meanwhile is one more write
            else:
                await self._wake.wait()
                self._wake = anyio.Event()


def _nothing() -> None:
    pass


async def _watchdog(notify: Notifier, interval: float) -> None:
    while True:
        notify.watchdog()
        await anyio.sleep(interval)


def _summary(run: Run) -> str:
    running = sum(1 for status in run.statuses().values() if status == "running")
    ready_at = run.ready_at
    up = f" in {ready_at:.3f}s" if ready_at is not None else ""
    return f"{running} driver(s) running{up}"


def _write_report(report: Report, where: str | Path) -> None:
    from pathlib import Path

    path = Path(where)
    if path.suffix == ".svg":
        text = report.to_svg()
    elif path.suffix == ".json":
        text = report.to_json(indent=2) + "\n"
    else:
        text = report.to_text() + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    log.info("report written to %s", path)


def describe_failure(exc: StartupError | ShutdownError) -> list[str]:
    """One line per failed driver: driver, tier, phase and cause, no traceback."""
    return [exc.message] + [f"  {f.describe()}" for f in exc.failures]


def _refuse_a_running_loop() -> None:
    trio = sys.modules.get("trio")
    running = trio is not None and trio.lowlevel.in_trio_run()
    asyncio = sys.modules.get("asyncio")
    if not running and asyncio is not None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            running = True
    if running:
        msg = (
            "tiered.serve() runs an event loop of its own, and one is running "
            "already; in async code write `await tiered.aserve(runtime)` instead"
        )
        raise UsageError(msg)


@public
def serve(
    runtime: Runtime,
    *,
    backend: Backend = "asyncio",
    schedule: str | None = None,
    drain: float = 0.0,
    status_file: str | Path | None = None,
    report: str | Path | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run ``runtime`` as a daemon until SIGTERM or SIGINT; return an exit status.

    Starts every driver, then waits.  SIGTERM or SIGINT stop gracefully: in
    the middle of start-up by rolling back; once up, after ``drain`` seconds
    of being up but not ready.  A second SIGINT ends the drain, or cuts the
    stop short; SIGHUP reloads.  Under systemd (``NOTIFY_SOCKET`` set) it
    sends ``READY=1`` once every driver is up, ``STATUS=`` as tiers come up
    and when drivers fail or restart, ``RELOADING=1`` / ``READY=1`` around a
    reload, ``STOPPING=1``, ``EXTEND_TIMEOUT_USEC=`` and ``WATCHDOG=1``.

    Example::

        raise SystemExit(tiered.serve(runtime, backend="trio", drain=5))

    Args:
        runtime: the runtime to serve.
        backend: ``"asyncio"``, ``"uvloop"`` or ``"trio"``.
        schedule: ``"tiers"`` or ``"dependencies"``; None takes the runtime's.
        drain: seconds to stay up but not ready after SIGTERM or SIGINT.
        status_file: a file rewritten at every change, for ``tiered probe``.
        report: a file (``.svg``, ``.json`` or text) for the run's report.
        stderr: where failures are described (default ``sys.stderr``).

    Returns:
        0 after a clean stop; 1 when start-up failed, the run failed after
        start-up (a required driver failed, or a restart gave up: so that
        systemd or Kubernetes restarts the process), or a driver failed to
        stop (each failure described on one line of ``stderr``).

    Raises:
        ConfigError: the plan is invalid.
        UsageError: called where an event loop already runs (use
            :func:`aserve`).
        ValueError: unknown backend.
    """
    if backend not in BACKENDS:
        msg = f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}"
        raise ValueError(msg)
    _refuse_a_running_loop()
    name, options = BACKENDS[backend]
    err = sys.stderr if stderr is None else stderr
    try:
        anyio.run(
            lambda: aserve(
                runtime,
                schedule=schedule,
                drain=drain,
                status_file=status_file,
                report=report,
            ),
            backend=name,
            backend_options=options,
        )
    except (StartupError, ShutdownError) as exc:
        for line in describe_failure(exc):
            print(f"tiered: {line}", file=err)
        return 1
    return 0
