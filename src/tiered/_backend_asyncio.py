"""The asyncio (and uvloop) side of ``_backend``: plain tasks, futures, ``call_at``."""

from __future__ import annotations

import functools
import math
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio

from ._backend import Alarm, Backend, Host

if TYPE_CHECKING:
    import asyncio
    import contextvars
    from collections.abc import AsyncIterator, Awaitable, Callable

    from ._backend import Parked, ScopeFactory

__all__ = ["AsyncioBackend"]


class AsyncioBackend(Backend):
    __slots__ = ("loop",)
    name = "asyncio"

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # anyio's asyncio CancelScope, made without the per-call backend lookup
        scope: ScopeFactory = type(anyio.CancelScope())
        import asyncio

        super().__init__(
            _clock_of(loop),
            scope,
            functools.partial(_Gate, loop),
            asyncio.CancelledError,
        )
        self.loop = loop

    def park(self, slot: Parked) -> Awaitable[object]:
        fut = slot.parked = self.loop.create_future()
        return fut

    def unpark(self, slot: Parked) -> None:
        fut = slot.parked
        if fut is not None:
            slot.parked = None
            if not fut.done():
                fut.set_result(None)

    @asynccontextmanager
    async def host(self, context: contextvars.Context) -> AsyncIterator[Host]:
        host = _AsyncioHost(self, context)
        try:
            yield host
        finally:
            host.close()


class _AsyncioHost(Host):
    """Plain tasks: outside every anyio scope, which a resting driver wants anyway.

    Nothing outside the run can cancel them; the run cancels a starting
    driver through the driver's own scope, and joins every task before it
    returns.
    """

    _alarm: _LoopAlarm | None = None

    def spawn(self, lifetime: Callable[[Any], Awaitable[None]], slot: Any) -> None:
        self.alive += 1
        loop = self.backend.loop  # type: ignore[attr-defined]
        slot.task = loop.create_task(
            lifetime(slot), name=slot.name, context=self.context.copy()
        )

    def alarm(self, callback: Callable[[float], None]) -> Alarm:
        backend = self.backend
        alarm = self._alarm = _LoopAlarm(callback, backend.loop, backend.clock)  # type: ignore[attr-defined]
        return alarm

    def close(self) -> None:
        # a timer left in the loop's schedule would keep the whole run alive
        # for as long as the loop lives (tests/test_soak.py)
        if self._alarm is not None:
            self._alarm.set(math.inf)


def _clock_of(loop: asyncio.AbstractEventLoop) -> Callable[[], float]:
    """The run's clock: the loop's, unless it only counts milliseconds.

    uvloop's ``loop.time()`` is libuv's clock, in whole milliseconds: a report
    (and a trace) would say 0.000s for every hook under a millisecond.
    ``time.monotonic`` is the clock it rounds; timers set by it fire at most a
    millisecond late, and the deadlines re-arm one that rings early.  Any
    other loop keeps its own ``time()``, so a loop with a virtual clock
    still runs on it (tests/test_report.py pins the resolution).
    """
    if type(loop).__module__.partition(".")[0] == "uvloop":
        import time

        return time.monotonic
    return loop.time


class _LoopAlarm(Alarm):
    __slots__ = ("_clock", "_handle", "_loop")

    def __init__(
        self,
        callback: Callable[[float], None],
        loop: asyncio.AbstractEventLoop,
        clock: Callable[[], float],
    ) -> None:
        super().__init__(callback)
        self._loop = loop
        self._clock = clock
        self._handle: asyncio.TimerHandle | None = None

    def set(self, when: float) -> None:
        if when == self.when:
            return
        self.when = when
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if when != math.inf:
            self._handle = self._loop.call_at(when, self._ring)

    def _ring(self) -> None:
        self._handle = None
        self.when = math.inf
        self._callback(self._clock())


class _Gate:
    """An event for asyncio whose waiters leave in O(1).

    ``asyncio.Event.wait()`` removes its future from a deque when it returns,
    which is O(waiters).  Here the waiters are a set.
    """

    __slots__ = ("_flag", "_loop", "_waiters")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._flag = False
        self._waiters: set[asyncio.Future[None]] = set()

    def set(self) -> None:
        if not self._flag:
            self._flag = True
            for fut in self._waiters:
                if not fut.done():
                    fut.set_result(None)

    def is_set(self) -> bool:
        return self._flag

    async def wait(self) -> bool:
        if self._flag:
            return True
        fut = self._loop.create_future()
        self._waiters.add(fut)
        try:
            await fut
            return True
        finally:
            self._waiters.discard(fut)
