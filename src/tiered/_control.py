"""What a daemon does with its signals: stop, drain, cut short, reload.

SIGTERM or SIGINT stop the daemon: during start-up by rolling back; once it
runs, by *draining* first (no longer ready, for ``drain`` seconds, so that a
load balancer or Kubernetes takes it out of rotation while it still serves)
and then stopping.  A second SIGINT ends a drain at once, and cuts a stop
short.  SIGHUP reloads; SIGHUPs that arrive during a reload are coalesced
into one more.
"""

from __future__ import annotations

import logging
import signal
from typing import TYPE_CHECKING, Literal

import anyio
from anyio import CancelScope

from ._exceptions import UsageError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from ._notify import Notifier
    from ._run import Run

    # a Literal costs a daemon's start-up: for type checkers only
    Phase = Literal["starting", "running", "draining", "stopping"]


__all__ = ["Control", "watch_signals"]

log = logging.getLogger("tiered")


class Control:
    """The daemon's phase, shared by the signal watcher and the main flow."""

    def __init__(
        self,
        run: Run,
        notify: Notifier,
        *,
        drain: float,
        changed: Callable[[], None],
    ) -> None:
        self.run = run
        self.notify = notify
        self.drain = drain
        self.phase: Phase = "starting"
        self._changed = changed  # the status file follows the phase too
        self.startup = CancelScope()
        self.stop = anyio.Event()
        self.drained = anyio.Event()
        self.reloading = False
        self.reload_again = False
        self.stopped_by: str | None = None  # the signal that began the stop

    def set_phase(self, phase: Phase) -> None:
        self.phase = phase
        self._changed()

    def request_stop(self, signame: str) -> None:
        """SIGTERM or SIGINT."""
        if self.phase == "starting":
            log.info("%s during start-up: rolling back", signame)
            self.stopped_by = signame
            self.set_phase("stopping")
            self.notify.stopping()
            self.startup.cancel()
        elif self.phase == "running":
            self.stopped_by = signame
            self.notify.send(
                STOPPING=1, STATUS="draining" if self.drain else "stopping"
            )
            if self.drain > 0:
                log.info("%s: draining for %gs, then stopping", signame, self.drain)
                self.set_phase("draining")
            else:
                log.info("%s: stopping", signame)
                self.set_phase("stopping")
            self.stop.set()
        elif self.phase == "draining":
            if signame == "SIGINT":
                log.warning("SIGINT during the drain: stopping now")
                self.drained.set()
            else:
                log.info("%s during the drain: it ends as planned", signame)
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

    async def wait_drained(self) -> None:
        """The drain: not ready, still serving, for ``drain`` seconds (or a SIGINT)."""
        if self.phase != "draining":
            return
        with anyio.move_on_after(self.drain):
            await self.drained.wait()
        self.set_phase("stopping")
        self.notify.status("stopping")

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


async def watch_signals(
    ctl: Control,
    tg: anyio.abc.TaskGroup,
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Listen for SIGTERM, SIGINT and SIGHUP while the daemon lives."""
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
    ctl: Control, tg: anyio.abc.TaskGroup, signals: AsyncIterator[int]
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
