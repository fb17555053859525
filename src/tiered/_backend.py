"""What differs between asyncio and trio, found once per run and kept behind one interface.

``anyio.current_time()``, ``anyio.CancelScope()`` and ``anyio.Event()`` look
the backend up on every call; a run makes a handful of each per driver, and
with ten thousand drivers that lookup was a fifth of the run's own cost
(docs/benchmarks.md).  So a run looks the backend up once, here, and keeps:

* the clock, cancel scopes, events and the cancellation exception: on trio
  trio's own (anyio's wrap them one for one), on asyncio the loop's clock and
  anyio's asyncio cancel scope class, made directly;
* **parking**: how a driver's lifetime waits for the word to go on (at a
  barrier, while it rests) and how it is woken: a future of its own on
  asyncio, trio's own parking on trio.  No event object per driver, and
  waking one is O(1);
* the **host** of the lifetimes (:class:`Host`): on asyncio plain tasks,
  since spawning through an anyio task group cost more than everything else
  a driver does; on trio nurseries, one per *batch* of drivers that start
  together (a tier), whose cancel scope is the one a failure cancels.  Either
  way the run waits for every lifetime it spawned: none outlives the run;
* the **alarm** the deadlines ring (``_deadlines``): one ``call_at`` on
  asyncio, one task on trio.

Nothing here imports a backend that is not already running.
"""

from __future__ import annotations

import functools
import math
import sys
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

if TYPE_CHECKING:
    import asyncio
    import contextvars
    from collections.abc import AsyncIterator, Awaitable, Callable
    from contextlib import AbstractAsyncContextManager
    from types import TracebackType

__all__ = [
    "Backend",
    "Batch",
    "Host",
    "Parked",
    "Scope",
    "Waitable",
    "current_backend",
    "internal",
]

if TYPE_CHECKING:  # protocols only type checkers need (each costs a class at import)
    from typing import Protocol

    class Scope(Protocol):
        """What a run uses of a cancel scope; anyio's and trio's both have it."""

        deadline: float
        shield: bool

        @property
        def cancelled_caught(self) -> bool: ...
        @property
        def cancel_called(self) -> bool: ...
        def cancel(self) -> None: ...
        def __enter__(self) -> Scope: ...
        def __exit__(
            self,
            exc_type: type[BaseException] | None,
            exc: BaseException | None,
            tb: TracebackType | None,
        ) -> bool | None: ...

    class Waitable(Protocol):
        """What a run uses of an event; anyio's and trio's both have it."""

        def set(self) -> None: ...
        def is_set(self) -> bool: ...
        def wait(self) -> Awaitable[object]: ...

    class ScopeFactory(Protocol):
        def __call__(self, *, deadline: float = ..., shield: bool = ...) -> Scope: ...

    class Parked(Protocol):
        """What parks: a lifetime's slot keeps its parking ticket in ``parked``."""

        parked: Any


T = TypeVar("T")
F = TypeVar("F", bound="Callable[..., Any]")

#: the task bodies of the run (lifetimes, background wrappers): on trio they
#: are protected from KeyboardInterrupt, which then goes to the main task,
#: so it never lands half-way through the run's bookkeeping; the user's
#: hooks they call are not (Backend.hook)
_INTERNAL: list[Any] = []


_USER: list[Any] = []


def internal(fn: F) -> F:
    """Mark one of the run's own task bodies (see ``_INTERNAL``)."""
    _INTERNAL.append(fn)
    return fn


def user_code(fn: F) -> F:
    """Mark a function that awaits a user's hook: KeyboardInterrupt may land there."""
    _USER.append(fn)
    return fn


class Batch:
    """Drivers spawned together; on trio they share one cancel scope.

    ``scope`` is None on asyncio, where each driver has a scope of its own,
    and on trio until the batch's nursery is open; :meth:`cancel` before
    then cancels it as soon as it opens.
    """

    __slots__ = ("cancelled", "scope")

    def __init__(self) -> None:
        self.scope: Scope | None = None
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        if self.scope is not None:
            self.scope.cancel()


class Alarm:
    """Calls ``callback(now)`` once the clock reaches ``when``; ``set`` moves it."""

    __slots__ = ("_callback", "when")

    def __init__(self, callback: Callable[[float], None]) -> None:
        self._callback = callback
        self.when = math.inf

    def set(self, when: float) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class Host:
    """Where a run's lifetimes live; :meth:`join` waits for the last one."""

    def __init__(self, backend: Backend, context: contextvars.Context) -> None:
        self.backend = backend
        self.context = context
        self.alive = 0
        self._ended: Waitable | None = None

    def spawn(self, lifetime: Callable[[Any], Awaitable[None]], slot: Any) -> None:
        raise NotImplementedError  # pragma: no cover - overridden

    def spawn_batch(
        self, lifetime: Callable[[Any], Awaitable[None]], slots: list[Any]
    ) -> Batch | None:
        """Spawn ``slots`` together; the shared scope, where the backend has one."""
        for slot in slots:
            self.spawn(lifetime, slot)
        return None

    def alarm(self, callback: Callable[[float], None]) -> Alarm:
        raise NotImplementedError  # pragma: no cover - overridden

    def ended(self) -> None:
        """A lifetime ended (called from its ``finally``)."""
        self.alive -= 1
        if not self.alive and self._ended is not None:
            self._ended.set()

    async def join(self) -> None:
        """Wait until every lifetime spawned has ended."""
        if self.alive:
            self._ended = self.backend.event()
            await self._ended.wait()
            self._ended = None


class Backend:
    """The clock, scopes, events, parking and host of the running event loop."""

    __slots__ = (
        "cancelled",
        "clock",
        "clock_name",
        "event",
        "name",
        "scope",
        "virtual_clock",
    )

    name: str

    def __init__(
        self,
        clock: Callable[[], float],
        scope: ScopeFactory,
        event: Callable[[], Waitable],
        cancelled: type[BaseException],
    ) -> None:
        self.clock = clock
        self.scope = scope
        self.event = event
        self.cancelled = cancelled
        #: whether time is virtual (trio's MockClock): timeouts say so
        self.virtual_clock = False
        self.clock_name = "the loop's clock"

    def park(self, slot: Parked) -> Awaitable[object]:
        """Wait until :meth:`unpark`; callers re-check their condition after."""
        raise NotImplementedError  # pragma: no cover - overridden

    def unpark(self, slot: Parked) -> None:
        """Wake ``slot`` if it is parked; nothing otherwise."""
        raise NotImplementedError  # pragma: no cover - overridden

    def host(self, context: contextvars.Context) -> AbstractAsyncContextManager[Host]:
        """The host of a run's lifetimes, while the context manager is open."""
        raise NotImplementedError  # pragma: no cover - overridden


# -- asyncio (and uvloop) -------------------------------------------------------


class _AsyncioBackend(Backend):
    __slots__ = ("loop",)
    name = "asyncio"

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # anyio's asyncio CancelScope, made without the per-call backend lookup
        scope: ScopeFactory = type(anyio.CancelScope())
        import asyncio

        super().__init__(
            loop.time, scope, functools.partial(_Gate, loop), asyncio.CancelledError
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
        alarm = self._alarm = _LoopAlarm(callback, self.backend.loop)  # type: ignore[attr-defined]
        return alarm

    def close(self) -> None:
        # a timer left in the loop's schedule would keep the whole run alive
        # for as long as the loop lives (tests/test_soak.py)
        if self._alarm is not None:
            self._alarm.set(math.inf)


class _LoopAlarm(Alarm):
    __slots__ = ("_handle", "_loop")

    def __init__(
        self, callback: Callable[[float], None], loop: asyncio.AbstractEventLoop
    ) -> None:
        super().__init__(callback)
        self._loop = loop
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
        self._callback(self._loop.time())


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


# -- trio ------------------------------------------------------------------------


class _TrioBackend(Backend):
    __slots__ = ("trio",)
    name = "trio"

    def __init__(self, trio: Any) -> None:
        super().__init__(
            trio.current_time, trio.CancelScope, trio.Event, trio.Cancelled
        )
        self.trio = trio
        lowlevel = trio.lowlevel
        self.clock_name = type(lowlevel.current_clock()).__name__
        self.virtual_clock = self.clock_name != "SystemClock"
        while _INTERNAL:  # marks code objects: once for the process
            lowlevel.enable_ki_protection(_INTERNAL.pop())
        while _USER:
            lowlevel.disable_ki_protection(_USER.pop())

    def park(self, slot: Parked) -> Awaitable[object]:
        lowlevel = self.trio.lowlevel
        slot.parked = lowlevel.current_task()
        return lowlevel.wait_task_rescheduled(  # type: ignore[no-any-return]
            functools.partial(_abort_park, slot, lowlevel.Abort.SUCCEEDED)
        )

    def unpark(self, slot: Parked) -> None:
        task = slot.parked
        if task is not None:
            slot.parked = None
            self.trio.lowlevel.reschedule(task)

    @asynccontextmanager
    async def host(self, context: contextvars.Context) -> AsyncIterator[Host]:
        async with self.trio.open_nursery() as nursery:
            host = _TrioHost(self, context, nursery)
            try:
                yield host
            finally:
                host.close()


def _abort_park(slot: Parked, succeeded: object, _: object) -> object:
    slot.parked = None
    return succeeded


class _TrioHost(Host):
    """Lifetimes in trio nurseries: a tier's drivers share one, and its cancel scope.

    anyio's task groups give every task a handle, a scope and an event of
    its own, which a lifetime does not use and every garbage collection
    walks; a trio nursery per batch gives the run one cancel scope for the
    whole tier instead of one more per driver.
    """

    def __init__(
        self, backend: _TrioBackend, context: contextvars.Context, nursery: Any
    ) -> None:
        super().__init__(backend, context)
        self.nursery = nursery
        self._alarms: list[_TrioAlarm] = []

    def spawn(self, lifetime: Callable[[Any], Awaitable[None]], slot: Any) -> None:
        self.alive += 1
        self.context.copy().run(self.nursery.start_soon, lifetime, slot, name=slot.name)

    def spawn_batch(
        self, lifetime: Callable[[Any], Awaitable[None]], slots: list[Any]
    ) -> Batch | None:
        self.alive += len(slots)
        batch = Batch()
        self.context.copy().run(
            self.nursery.start_soon,
            self._batch,
            lifetime,
            slots,
            batch,
            name="tiered batch",
        )
        return batch

    @internal
    async def _batch(
        self, lifetime: Callable[[Any], Awaitable[None]], slots: list[Any], batch: Batch
    ) -> None:
        async with self.backend.trio.open_nursery() as nursery:  # type: ignore[attr-defined]
            batch.scope = nursery.cancel_scope
            if batch.cancelled:
                nursery.cancel_scope.cancel()
            for slot in slots:
                nursery.start_soon(lifetime, slot, name=slot.name)

    def alarm(self, callback: Callable[[float], None]) -> Alarm:
        alarm = _TrioAlarm(callback, self.backend)  # type: ignore[arg-type]
        self._alarms.append(alarm)
        self.nursery.start_soon(alarm.run, name="tiered deadlines")
        return alarm

    def close(self) -> None:
        for alarm in self._alarms:
            alarm.close()


class _TrioAlarm(Alarm):
    """One task that sleeps until the earliest deadline; moving it wakes the task."""

    __slots__ = ("_backend", "_closed", "_scope")

    def __init__(
        self, callback: Callable[[float], None], backend: _TrioBackend
    ) -> None:
        super().__init__(callback)
        self._backend = backend
        self._scope: Any = None
        self._closed = False

    def set(self, when: float) -> None:
        self.when = when
        if self._scope is not None:
            self._scope.deadline = when

    def close(self) -> None:
        self._closed = True
        if self._scope is not None:
            self._scope.cancel()

    def closed(self) -> bool:
        # a method: the awaits in between change it
        return self._closed

    @internal
    async def run(self) -> None:
        trio = self._backend.trio
        # shielded: a run cancelled from outside still rolls back under its
        # deadlines; the host closes the alarm when the run is over
        with trio.CancelScope(shield=True):
            while not self.closed():
                with trio.CancelScope(deadline=self.when) as scope:
                    self._scope = scope
                    await trio.sleep_forever()
                self._scope = None
                if self.closed():
                    return
                now = trio.current_time()
                if now >= self.when:
                    self.when = math.inf
                    self._callback(now)


def current_backend() -> Backend:
    """The backend of the running event loop; call it from inside the loop."""
    trio = sys.modules.get("trio")
    if trio is not None and trio.lowlevel.in_trio_run():
        return _TrioBackend(trio)
    import asyncio  # here: trio users need not pay for importing it

    return _AsyncioBackend(asyncio.get_running_loop())
