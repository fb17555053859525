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

import math
import sys
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import contextvars
    from collections.abc import Awaitable, Callable
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

    F = TypeVar("F", bound=Callable[..., Any])

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


def apply_ki_marks(lowlevel: Any) -> None:
    """On trio: protect what :func:`internal` marked, and not :func:`user_code`.

    Marks code objects, so once for the process is enough.
    """
    while _INTERNAL:
        lowlevel.enable_ki_protection(_INTERNAL.pop())
    while _USER:
        lowlevel.disable_ki_protection(_USER.pop())


class Batch:
    """Drivers spawned together; on trio they share one cancel scope.

    ``scope`` is None on asyncio, where each driver has a scope of its own,
    and on trio until the batch's nursery is open; :meth:`cancel` before
    then cancels it as soon as it opens.  A batch opened for a start in
    dependency mode takes drivers as they become ready (``Host.join_batch``)
    until :meth:`close`.
    """

    __slots__ = ("cancelled", "closed", "nursery", "pending", "scope")

    def __init__(self) -> None:
        self.scope: Scope | None = None
        self.cancelled = False
        self.nursery: Any = None  # trio: once open
        self.pending: list[tuple[Any, Any]] | None = []  # joined before it opened
        self.closed: Waitable | None = None

    def cancel(self) -> None:
        self.cancelled = True
        if self.scope is not None:
            self.scope.cancel()

    def close(self) -> None:
        """No driver joins any more; the batch ends with the last of its drivers."""
        if self.closed is not None:
            self.closed.set()


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

    def open_batch(self) -> Batch | None:
        """A batch drivers join as they become ready; None without shared scopes."""
        return None

    def join_batch(
        self, batch: Batch | None, lifetime: Callable[[Any], Awaitable[None]], slot: Any
    ) -> None:
        """Spawn ``slot`` into ``batch`` (from :meth:`open_batch`), or alone."""
        self.spawn(lifetime, slot)

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


def current_backend() -> Backend:
    """The backend of the running event loop; call it from inside the loop."""
    trio = sys.modules.get("trio")
    if trio is not None and trio.lowlevel.in_trio_run():
        from ._backend_trio import TrioBackend

        return TrioBackend(trio)
    import asyncio  # here: trio users need not pay for importing it

    from ._backend_asyncio import AsyncioBackend

    return AsyncioBackend(asyncio.get_running_loop())
