"""What an ASGI lifespan adds to its run: a drain on SIGTERM, and a server
that does not serve on once its drivers are gone.

An ASGI server owns its process and its signals.  uvicorn closes its
listener within a tenth of a second of SIGTERM, so a drain (``drain=``
seconds of "still serving, no longer ready") has to happen before the
server hears the signal.  While the application serves, :class:`Serving`
takes SIGTERM and SIGINT from the server's handlers, turns readiness off,
keeps serving for ``drain`` seconds, then hands the signal to the server's
handler as if it came now.  A SIGINT during the drain ends it at once (as
``tiered run --drain`` does); once handed on, signals reach the server
directly, so a second SIGINT still makes uvicorn quit at once.

When the run ends on its own (a required driver failed after start-up, or
a restart gave up), the lifespan protocol has no message that stops the
server.  :class:`Serving` logs which driver failed and sends the process
SIGTERM, the usual way to tell an ASGI server to shut down gracefully.  It
does so only when a handler for SIGTERM is installed (the server's): at its
default action SIGTERM would kill the process on the spot, which is what a
test client running the application in a thread would suffer.  See
docs/fastapi.md and docs/kubernetes.md.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import TYPE_CHECKING, Literal
from weakref import WeakKeyDictionary

import anyio
from anyio import CancelScope

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from ._journal import RunEvent
    from ._run import Run

__all__ = ["Serving", "serving_of"]

log = logging.getLogger("tiered")

Phase = Literal["starting", "serving", "draining", "stopping"]

#: Each run served by an ASGI lifespan, and what that lifespan knows about it:
#: the health endpoints and the request guard look the drain up here.
_SERVING: WeakKeyDictionary[Run, Serving] = WeakKeyDictionary()

#: The signals a drain takes from the server.
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def serving_of(run: Run) -> Serving | None:
    """The :class:`Serving` of ``run``, if an ASGI lifespan runs it."""
    return _SERVING.get(run)


def _handled(handler: object) -> bool:
    """Whether a Python handler is installed (not SIG_DFL, SIG_IGN or C's)."""
    return callable(handler)


def _can_take(handler: object) -> bool:
    """Whether a drain can take this signal from its handler and give it back.

    Not from asyncio's (or uvloop's) ``add_signal_handler``: its Python
    handler is a no-op and the loop holds the real one, which opening a
    receiver of our own on the same loop would replace for good.  Not from
    Python's default SIGINT handler either: there is no server to hand it to.
    """
    if not _handled(handler) or handler is signal.default_int_handler:
        return False
    return getattr(handler, "__name__", "") != "_sighandler_noop"


class Serving:
    """The drain and the failure watch of one run served by an ASGI lifespan.

    Made before the run is entered; :meth:`watch` runs in a task of the
    lifespan (outside the run, so the run's failure does not cancel it)
    from the moment the application serves; :meth:`stop_watching` when the
    server sends ``lifespan.shutdown``; :meth:`close` at the end.
    """

    def __init__(self, run: Run, *, drain: float) -> None:
        self.run = run
        self.drain = drain
        self.phase: Phase = "starting"
        #: the line that names what failed, once the run failed while serving
        self.failure: str | None = None
        self._held: int | None = None  # a signal taken from the server
        self._scope = CancelScope()  # the watcher's
        self._watching = False
        self._wake = anyio.Event()  # a stop signal arrived, or the run failed
        self._cut = anyio.Event()  # the drain ends now
        self._unlisten = run.listen(self._event)
        _SERVING[run] = self

    @property
    def stopping(self) -> bool:
        """True from the stop signal (or the failure) on: no longer ready."""
        stopped = self.phase in ("draining", "stopping") or self._held is not None
        return stopped or self.failure is not None

    # -- the failure watch ------------------------------------------------------------

    def _event(self, event: RunEvent) -> None:
        # stop_run() announces "live changed" with a state event, before it
        # cancels the run's body (tiered/_core.py)
        if (
            event.kind == "state"
            and self.failure is None
            and self.phase in ("serving", "draining")
            and not self.run.live
        ):
            self._failed()

    def _failed(self) -> None:
        run = self.run
        error = run.shutdown_error()
        failures = error.failures if error is not None else ()
        what = "; ".join(f.describe() for f in failures) or "a driver failed"
        if run.gave_up is not None:  # set before the run stopped being live
            what += f" ({run.gave_up})"
        self.failure = what
        handled = self._watching or _handled(signal.getsignal(signal.SIGTERM))
        log.error(
            "runtime %r failed while the ASGI application serves: %s; %s",
            run.plan.name,
            what,
            f"stopping the ASGI server (SIGTERM to pid {os.getpid()})"
            if handled
            else "nothing in this process handles SIGTERM, so the server is not "
            "stopped: it answers 503 until it is",
            extra={"tiered_runtime": run.plan.name},
        )
        if self._watching:
            # the watcher hands SIGTERM to the server once it gave the
            # signals back (a drain, if one runs, ends now)
            if self._held is None:
                self._held = signal.SIGTERM
            self._wake.set()
            self._cut.set()
        elif handled:
            signal.raise_signal(signal.SIGTERM)

    # -- the drain --------------------------------------------------------------------

    async def watch(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """From now on the application serves: take the stop signals, for a drain."""
        self.phase = "serving"
        taken = self._signals_to_take()
        if not taken:
            task_status.started()
            return
        before = {sig: signal.getsignal(sig) for sig in taken}
        mask: set[int | signal.Signals] | None = None
        try:
            with self._scope, anyio.open_signal_receiver(*taken) as signals:
                self._watching = True
                task_status.started()
                try:
                    await self._drain(signals)
                finally:
                    # asyncio gives a signal back to its default action, not to
                    # the server's handler: put that back ourselves, with the
                    # signals blocked meanwhile so none lands on the default
                    # action in between (as tiered/_control.py does)
                    mask = signal.pthread_sigmask(signal.SIG_BLOCK, taken)
        finally:
            self._watching = False
            for sig, handler in before.items():
                if handler is not None:
                    signal.signal(sig, handler)
            if mask is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            self._hand_on()

    def _signals_to_take(self) -> tuple[signal.Signals, ...]:
        if self.drain <= 0:
            return ()
        why = None
        if threading.current_thread() is not threading.main_thread():
            why = "the application does not run in the main thread"
        elif not _can_take(signal.getsignal(signal.SIGTERM)):
            why = "no server in this process handles SIGTERM with signal.signal()"
        if why is not None:
            log.info("no drain of %gs on SIGTERM: %s", self.drain, why)
            return ()
        return tuple(s for s in _STOP_SIGNALS if _can_take(signal.getsignal(s)))

    async def _drain(self, signals: AsyncIterator[int]) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._receive, signals)
            await self._wake.wait()
            if self.failure is None and self._held is not None:
                self.phase = "draining"
                log.info(
                    "%s: not ready; serving for %gs more, then the ASGI server stops",
                    signal.Signals(self._held).name,
                    self.drain,
                    extra={"tiered_runtime": self.run.plan.name},
                )
                with anyio.move_on_after(self.drain):
                    await self._cut.wait()
            tg.cancel_scope.cancel()

    async def _receive(self, signals: AsyncIterator[int]) -> None:
        async for signum in signals:
            if self._held is None:
                self._held = signum
                self._wake.set()
            elif signum == signal.SIGINT:
                log.warning("SIGINT during the drain: the ASGI server stops now")
                self._cut.set()
            else:
                name = signal.Signals(signum).name
                log.info("%s during the drain: it ends as planned", name)

    def _hand_on(self) -> None:
        """Give the server the signal it did not get yet, as if it came now."""
        signum, self._held = self._held, None
        if signum is not None:
            signal.raise_signal(signum)

    # -- the end ----------------------------------------------------------------------

    def stop_watching(self) -> None:
        """The server stops (``lifespan.shutdown``): signals go to it directly."""
        if self.phase != "starting":
            self.phase = "stopping"
        self._scope.cancel()

    def close(self) -> None:
        """The lifespan ends: no more events."""
        self._scope.cancel()
        self._unlisten()
