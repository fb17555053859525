"""``serve()``: run a runtime as a daemon, with signals and systemd notify.

SIGTERM and SIGINT stop gracefully (during start-up too: a rollback), a second
SIGINT cuts the stop short, SIGHUP reloads.  Under systemd (``NOTIFY_SOCKET``)
the daemon reports READY, STATUS, RELOADING, STOPPING, EXTEND_TIMEOUT_USEC and
pings the watchdog.  See docs/systemd.md.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO

import anyio
from anyio import CancelScope

from ._exceptions import ShutdownError, StartupError, UsageError
from ._notify import Notifier, watchdog_interval

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from ._journal import RunEvent
    from ._report import Report
    from ._run import Run
    from ._runtime import Runtime

__all__ = ["aserve", "serve"]

log = logging.getLogger("tiered")

Backend = Literal["asyncio", "uvloop", "trio"]
BACKENDS: dict[str, tuple[str, dict[str, Any]]] = {
    "asyncio": ("asyncio", {}),
    "uvloop": ("asyncio", {"use_uvloop": True}),
    "trio": ("trio", {}),
}


class _Control:
    """What the signal watcher and the main flow share."""

    def __init__(self, run: Run, notify: Notifier) -> None:
        self.run = run
        self.notify = notify
        self.phase: Literal["starting", "running", "stopping"] = "starting"
        self.startup = CancelScope()
        self.stop = anyio.Event()
        self.reloading = False
        self.reload_again = False
        self.stopped_by: str | None = None  # the signal that began the stop

    def request_stop(self, signame: str) -> None:
        if self.phase == "starting":
            log.info("%s during start-up: rolling back", signame)
            self.phase = "stopping"
            self.stopped_by = signame
            self.notify.stopping()
            self.startup.cancel()
        elif self.phase == "running":
            log.info("%s: stopping", signame)
            self.phase = "stopping"
            self.stopped_by = signame
            self.stop.set()
        elif signame == "SIGINT":
            what = (
                "second SIGINT"
                if self.stopped_by in ("SIGINT", None)
                else f"SIGINT after {self.stopped_by}"
            )
            log.warning("%s: cutting the stop short", what)
            self.run.cut_short()

    def running(self) -> bool:
        # a method: the phase changes across the awaits of reload()
        return self.phase == "running"

    async def reload(self) -> None:
        """Reload, then reload once more if SIGHUPs arrived meanwhile."""
        self.reloading = True
        try:
            while self.running():
                self.reload_again = False
                self.notify.reloading()
                try:
                    errors = await self.run.reload()
                except UsageError:  # the run began stopping
                    return
                status = (
                    "reloaded" if not errors else f"reloaded, {len(errors)} error(s)"
                )
                log.info("%s", status)
                if not self.running():
                    return  # a stop began meanwhile: READY=1 would undo STOPPING=1
                self.notify.ready(status=status)
                if not self.reload_again:
                    return
        finally:
            self.reloading = False


async def _watch_signals(
    ctl: _Control,
    tg: anyio.abc.TaskGroup,
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    watched = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    # asyncio gives a signal back to its default action, not to the handler
    # it found; put that back ourselves, with the signals blocked meanwhile
    # so none lands on the default action in between (tiered run ignores
    # SIGHUP: a late one must not kill a daemon whose drivers all stopped)
    before = {sig: signal.getsignal(sig) for sig in watched}
    mask: set[int | signal.Signals] | None = None
    try:
        with anyio.open_signal_receiver(*watched) as signals:
            task_status.started()
            try:
                await _dispatch(ctl, tg, signals)
            finally:
                mask = signal.pthread_sigmask(signal.SIG_BLOCK, watched)
    finally:
        for sig, handler in before.items():
            if handler is not None:
                signal.signal(sig, handler)
        if mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)


async def _dispatch(
    ctl: _Control, tg: anyio.abc.TaskGroup, signals: AsyncIterator[int]
) -> None:
    async for signum in signals:
        name = signal.Signals(signum).name
        if signum != signal.SIGHUP:
            ctl.request_stop(name)
        elif ctl.phase != "running":
            log.info("SIGHUP ignored: the daemon is %s", ctl.phase)
        elif ctl.reloading:
            ctl.reload_again = True  # coalesced into one more reload
        else:
            tg.start_soon(ctl.reload)


async def _watchdog(notify: Notifier, interval: float) -> None:
    while True:
        notify.watchdog()
        await anyio.sleep(interval)


def _summary(report: Report) -> str:
    running = sum(1 for r in report.drivers if r.status == "running")
    up = f" in {report.ready_at:.3f}s" if report.ready_at is not None else ""
    return f"{running} driver(s) running{up}"


async def aserve(
    runtime: Runtime,
    *,
    report: str | Path | None = None,
    notifier: Notifier | None = None,
) -> None:
    """Serve ``runtime`` in the current event loop until SIGTERM or SIGINT.

    The async form of :func:`serve`, to embed tiered in a program that
    already runs an event loop.  Must run in the main thread (signals).
    Unlike :func:`serve`, it raises instead of returning an exit status.

    Example::

        async def main() -> None:
            await tiered.aserve(runtime, report="run.svg")

        anyio.run(main, backend="trio")

    Args:
        runtime: the runtime to run.
        report: a file to write the run's report to when it ends: ``.svg``,
            ``.json``, or text for any other suffix.
        notifier: where systemd notifications go; defaults to
            ``$NOTIFY_SOCKET`` (nothing when unset).

    Raises:
        ConfigError: the plan is invalid; nothing started.
        StartupError: a required driver failed; what started was stopped.
        ShutdownError: some driver failed to stop.
    """
    notify = notifier if notifier is not None else Notifier.from_environ()
    run = runtime.run()
    ctl = _Control(run, notify)

    def observe(event: RunEvent) -> None:
        if event.kind == "tier":
            notify.status(f"tier {event.tier} up")
        elif event.kind == "status":
            notify.status(f"{event.driver}: {event.value}")
        elif event.kind == "extend" and ctl.phase in ("starting", "stopping"):
            notify.extend_timeout(float(event.value or 0))

    run.listen(observe)
    outcome: BaseException | None = None
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(_watch_signals, ctl, tg)
            try:
                with ctl.startup:
                    async with run:
                        # a SIGTERM as the last tier came up has begun the
                        # stop already: no READY=1 after its STOPPING=1
                        if ctl.phase == "starting":
                            ctl.phase = "running"
                            notify.ready(status=_summary(run.report))
                            interval = watchdog_interval()
                            if interval is not None and notify.enabled:
                                tg.start_soon(_watchdog, notify, interval)
                        try:
                            await ctl.stop.wait()
                        finally:  # asked to stop, or a background task crashed
                            ctl.phase = "stopping"
                            notify.stopping()
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
        if report is not None:
            _write_report(run.report, Path(report))
        notify.close()
    if outcome is not None:
        raise outcome


def _write_report(report: Report, path: Path) -> None:
    if path.suffix == ".svg":
        text = report.to_svg()
    elif path.suffix == ".json":
        text = json.dumps(report.to_dict(), indent=2) + "\n"
    else:
        text = report.to_text() + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    log.info("report written to %s", path)


def describe_failure(exc: StartupError | ShutdownError) -> list[str]:
    """One line per failed driver: driver, tier, phase and cause, no traceback."""
    return [exc.message] + [f"  {f.describe()}" for f in exc.failures]


def serve(
    runtime: Runtime,
    *,
    backend: Backend = "asyncio",
    report: str | Path | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run ``runtime`` as a daemon until SIGTERM or SIGINT; return an exit status.

    Starts every tier, then waits.  SIGTERM or SIGINT stop gracefully (in the
    middle of start-up too: what started is rolled back); a second SIGINT
    cuts the stop short; SIGHUP reloads tier by tier.  Under systemd
    (``NOTIFY_SOCKET`` set) it sends ``READY=1`` once every tier is up,
    ``STATUS=`` as tiers come up, ``RELOADING=1`` / ``READY=1`` around a
    reload, ``STOPPING=1``, ``EXTEND_TIMEOUT_USEC=`` and ``WATCHDOG=1``.

    Example::

        raise SystemExit(tiered.serve(runtime, backend="trio"))

    Args:
        runtime: the runtime to serve.
        backend: ``"asyncio"``, ``"uvloop"`` or ``"trio"``.
        report: a file (``.svg``, ``.json`` or text) for the run's report.
        stderr: where failures are described (default ``sys.stderr``).

    Returns:
        0 after a clean stop; 1 when start-up failed or a driver failed to
        stop (each failure described on one line of ``stderr``).

    Raises:
        ConfigError: the plan is invalid.
        ValueError: unknown backend.
    """
    if backend not in BACKENDS:
        msg = f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}"
        raise ValueError(msg)
    name, options = BACKENDS[backend]
    err = sys.stderr if stderr is None else stderr
    try:
        anyio.run(
            lambda: aserve(runtime, report=report),
            backend=name,
            backend_options=options,
        )
    except (StartupError, ShutdownError) as exc:
        for line in describe_failure(exc):
            print(f"tiered: {line}", file=err)
        return 1
    return 0
