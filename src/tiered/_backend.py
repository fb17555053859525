"""The running event loop's own clock, cancel scopes and events, found once per run.

``anyio.current_time()``, ``anyio.CancelScope()`` and ``anyio.Event()`` look
the backend up on every call.  A run makes a handful of each per driver, and
with ten thousand drivers that lookup was a fifth of the run's own cost
(benchmarks/README.md).  A run therefore looks the backend up once, here,
and keeps what it found:

* on trio, trio's own ``current_time``, ``CancelScope`` and ``Event``, which
  anyio's wrap one for one: trio is already imported, since it is running;
* on asyncio (and uvloop), the loop's ``time`` and anyio's asyncio cancel
  scope class, made directly, and events of our own (``_Gate``): anyio's
  asyncio scopes cancel with ``Task.cancel()``, which any plain ``await``
  honours.

Where drivers' lifetime tasks live differs too (see ``Run._spawn``).  On trio
each tier's drivers share a nursery, whose cancel scope is the one the run
cancels when a driver of the tier fails.  On asyncio they are plain
``asyncio`` tasks: spawning through an anyio task group cost more than
everything else a driver does (two thirds of tiered's own time with ten
thousand drivers).  A plain task is outside the run's cancel scopes, which is
what a driver that finished ``initialize`` wants anyway (it rests shielded);
the run cancels the drivers still starting itself.  On both, the run waits
for every task it spawned before it returns: no task outlives the run.

Nothing here imports a backend that is not already running.
"""

from __future__ import annotations

import functools
import sys
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol

import anyio

if TYPE_CHECKING:
    import asyncio
    from collections.abc import AsyncIterator, Awaitable, Callable
    from contextlib import AbstractAsyncContextManager
    from types import TracebackType

__all__ = ["Backend", "Scope", "Waitable", "current_backend"]


class Scope(Protocol):
    """What a run uses of a cancel scope; anyio's and trio's both have it."""

    deadline: float
    shield: bool

    @property
    def cancelled_caught(self) -> bool: ...
    def cancel(self) -> None: ...
    def __enter__(self) -> Scope: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None: ...


class Waitable(Protocol):
    """What a run uses of an event; anyio's, trio's and asyncio's all have it."""

    def set(self) -> None: ...
    def is_set(self) -> bool: ...
    def wait(self) -> Awaitable[object]: ...


class ScopeFactory(Protocol):
    def __call__(self, *, deadline: float = ..., shield: bool = ...) -> Scope: ...


class Backend:
    """The clock, scope and event makers of the backend a run is on."""

    __slots__ = (
        "cancelled",
        "clock",
        "event",
        "loop",
        "nursery",
        "open_nursery",
        "scope",
    )

    def __init__(
        self,
        clock: Callable[[], float],
        scope: ScopeFactory,
        event: Callable[[], Waitable],
        cancelled: type[BaseException],
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        open_nursery: Callable[[], AbstractAsyncContextManager[Any]] | None = None,
    ) -> None:
        self.clock = clock
        self.scope = scope
        self.event = event
        self.cancelled = cancelled
        #: on asyncio: lifetimes are plain tasks of this loop
        self.loop = loop
        #: elsewhere: each tier's lifetimes share a nursery of their own, in
        #: ``nursery``, the run's, while :meth:`lifetimes` is open
        self.open_nursery = open_nursery
        self.nursery: Any = None

    @asynccontextmanager
    async def lifetimes(self) -> AsyncIterator[None]:
        """Where the run's tiers of lifetime tasks live while it is open.

        A trio nursery on trio (anyio's task groups wrap every task in a
        handle with a cancel scope and an event of its own, which a lifetime
        does not use); nothing on asyncio, whose plain tasks the run joins.
        """
        if self.open_nursery is None:
            yield
            return
        async with self.open_nursery() as nursery:
            self.nursery = nursery
            try:
                yield
            finally:
                self.nursery = None


class _Gate:
    """An event for asyncio whose waiters leave in O(1).

    ``asyncio.Event.wait()`` removes its future from a deque when it returns,
    which is O(waiters): a tier of ten thousand drivers resting at a barrier
    made that quadratic.  Here the waiters are a set.  Each waits on a future
    of its own, so cancelling one waiter never wakes or cancels the others.
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


class _TrioGate:
    """An event for trio whose ``wait()`` is trio's own parking, no coroutine more.

    ``trio.Event.wait()`` is a coroutine around the same parking, with a
    closure for its abort; a resting driver keeps both alive, a frame
    included, for as long as it rests.  ``trio`` is the running module, set
    by :func:`current_backend` (tiered does not import trio itself).
    """

    __slots__ = ("_flag", "_tasks")
    trio: Any = None

    def __init__(self) -> None:
        self._flag = False
        self._tasks: set[Any] = set()

    def set(self) -> None:
        # as trio.Event.set(): KeyboardInterrupt cannot land half-way (the
        # method is protected in current_backend)
        if not self._flag:
            self._flag = True
            reschedule = self.trio.lowlevel.reschedule
            for task in self._tasks:
                reschedule(task)
            self._tasks.clear()

    def is_set(self) -> bool:
        return self._flag

    def wait(self) -> Awaitable[object]:
        lowlevel = self.trio.lowlevel
        if self._flag:
            return lowlevel.checkpoint()  # type: ignore[no-any-return]
        task = lowlevel.current_task()
        self._tasks.add(task)
        return lowlevel.wait_task_rescheduled(  # type: ignore[no-any-return]
            functools.partial(self._abort, task)
        )

    def _abort(self, task: object, _: object) -> object:
        self._tasks.discard(task)
        return self.trio.lowlevel.Abort.SUCCEEDED


def current_backend() -> Backend:
    """The backend of the running event loop; call it from inside the loop."""
    trio = sys.modules.get("trio")
    if trio is not None and trio.lowlevel.in_trio_run():
        if _TrioGate.trio is None:
            _TrioGate.trio = trio
            _TrioGate.set = trio.lowlevel.enable_ki_protection(_TrioGate.set)  # type: ignore[method-assign]
        return Backend(
            trio.current_time,
            trio.CancelScope,
            _TrioGate,
            trio.Cancelled,
            open_nursery=trio.open_nursery,
        )
    import asyncio  # here: trio users need not pay for importing it

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # pragma: no cover - anyio knows only asyncio and trio
        return Backend(
            anyio.current_time,
            anyio.CancelScope,
            anyio.Event,
            anyio.get_cancelled_exc_class(),
            open_nursery=anyio.create_task_group,
        )
    # anyio's asyncio CancelScope, made without the per-call backend lookup
    scope: ScopeFactory = type(anyio.CancelScope())
    return Backend(
        loop.time,
        scope,
        functools.partial(_Gate, loop),
        asyncio.CancelledError,
        loop=loop,
    )
