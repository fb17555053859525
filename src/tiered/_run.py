"""``Run``: one start-to-stop life of a runtime, as an async context manager.

Entering starts every driver (the schedule says in what order) and returns
once all are up, or rolls back and raises :class:`StartupError`; leaving
stops every started driver in reverse.  The work is done by the rooms of
``_core``; this is the public face: the context manager, ``get``,
``reload``, ``report``, the state, ``listen`` and ``cut_short``.

The task that enters ``async with runtime.run()`` is the *coordinator*: it
runs the start, the rollback and the shutdown.  Those run shielded and to
their end whatever arrives (:meth:`Run._to_the_end`): drivers wait shielded
for the word to stop, so leaving half-way would leave them waiting forever.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar, overload

from ._coordinator import Coordinator, shutdown_error
from ._core import Core
from ._exceptions import (
    DependencyError,
    ShutdownError,
    UsageError,
    public,
)
from ._plan import did_you_mean

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from types import TracebackType

    from ._core import State
    from ._driver import Driver, DriverHandle
    from ._journal import RunEvent
    from ._plan import Plan
    from ._report import Report
    from ._runtime import Runtime

    # type variables for type checkers only: each costs a daemon's start-up
    T = TypeVar("T")
    D = TypeVar("D", bound=Driver)

__all__ = ["Run"]

log = logging.getLogger("tiered")

#: how many interrupts in a row a rollback or shutdown absorbs (each cuts it
#: shorter) before it gives up on finishing: a bound, so an error of ours that
#: recurs cannot loop forever
_MAX_INTERRUPTS = 100


@public
class Run:
    """One start-to-stop life of a runtime; made by :meth:`Runtime.run`.

    Use it as an async context manager: entering starts every driver and
    returns once all are up (or raises :class:`StartupError` after rolling
    back); leaving stops every started driver in reverse order.

    Attributes:
        plan: the checked :class:`Plan` this run executes.

    Example::

        async with runtime.run() as run:
            storage = run.get(Storage)
            await run.reload()
    """

    def __init__(
        self,
        runtime: Runtime,
        plan: Plan,
        *,
        schedule: str,
        max_concurrent_starts: int | None,
        shutdown_timeout: float | None,
        claim: Callable[[Run], None],
        release: Callable[[Run], None],
    ) -> None:
        self.plan = plan
        # the runtime's rule: one run at a time (Runtime.run hands these in)
        self._claim = claim
        self._release = release
        self._core = Core(
            plan,
            runtime,
            schedule=schedule,
            max_concurrent_starts=max_concurrent_starts,
            shutdown_timeout=shutdown_timeout,
        )
        self._cm: Any = None

    # -- what users read --------------------------------------------------------------

    @property
    def schedule(self) -> str:
        """``"tiers"`` or ``"dependencies"``: how this run orders its drivers."""
        return self._core.schedule_name

    @property
    def state(self) -> State:
        """``"new"``, ``"starting"``, ``"running"``, ``"restarting"``, ``"stopping"`` or ``"stopped"``.

        ``"restarting"`` while some driver is being restarted (``restart=``).
        """
        core = self._core
        if core.state == "running" and core.restarting:
            return "restarting"
        return core.state

    @property
    def ready(self) -> bool:
        """True exactly while :attr:`state` is ``"running"``: serve requests now."""
        return self.state == "running"

    @property
    def live(self) -> bool:
        """False once the run has failed, and never true again.

        A run fails when a required driver fails after start-up, or a
        driver gives up restarting; a failed start-up is not live either.
        """
        core = self._core
        if core.failed:
            return False
        return not (core.state == "stopped" and core.ready_at is None)

    @property
    def ready_at(self) -> float | None:
        """When every driver was up, in seconds since the run began (None before)."""
        return self._core.ready_at

    def statuses(self) -> dict[str, str]:
        """Every driver's status, by name, in start order: cheaper than :attr:`report`.

        What health checks and the status file show: ``"pending"``,
        ``"starting"``, ``"running"``, ``"restarting"``, ``"failed"``,
        ``"skipped"``, ``"cancelled"`` or ``"stopped"``.
        """
        return {slot.name: slot.status for slot in self._core.order}

    @property
    def report(self) -> Report:
        """What happened so far: a fresh snapshot at every access."""
        from ._snapshot import build_report  # only who reads a report pays for it

        return build_report(self._core)

    def listen(self, callback: Callable[[RunEvent], object]) -> Callable[[], None]:
        """Call ``callback(event)`` for every :class:`RunEvent` of this run.

        For integrations: ``serve()`` turns events into systemd
        notifications and the status file, :mod:`tiered.otel` into spans.
        The callback runs synchronously, inside the run: it must be quick and
        must not block; an exception it raises is logged and ignored.

        Returns:
            a function that stops the calls.
        """
        listeners = self._core.journal.listeners
        listeners.append(callback)

        def stop_listening() -> None:
            if callback in listeners:
                listeners.remove(callback)

        return stop_listening

    def cut_short(self) -> None:
        """Cut the shutdown short: running stops are cancelled, the rest get no time.

        Every driver still gets its ``stop`` called, exactly once; what does
        not finish is recorded as a :class:`DriverTimeout`.  ``serve()``
        calls this on a second SIGINT.  Before the shutdown it takes effect
        when the shutdown comes.
        """
        self._core.cut_short()

    # -- the context manager ---------------------------------------------------------

    async def __aenter__(self) -> Run:
        if self._core.state != "new" or self._cm is not None:
            msg = (
                f"this run of {self.plan.name!r} was already entered; "
                "call runtime.run() again for a new run"
            )
            raise UsageError(msg)
        self._claim(self)
        self._cm = self._lifespan()
        try:
            return await self._cm.__aenter__()  # type: ignore[no-any-return]
        except BaseException:
            self._release(self)
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        try:
            return await self._cm.__aexit__(exc_type, exc, tb)  # type: ignore[no-any-return]
        finally:
            self._release(self)

    if not TYPE_CHECKING:  # misuse gets a clear message; type checkers reject it anyway

        def __enter__(self) -> None:
            msg = (
                f"runtime.run() is an async context manager; write `async with "
                f"{self.plan.name}.run() as run:` (with `async`) inside an async "
                "function"
            )
            raise TypeError(msg)

        def __exit__(self, *exc_info: object) -> None:  # pragma: no cover
            return None

        def __await__(self) -> Any:
            msg = (
                f"runtime.run() is not awaitable; use it as `async with "
                f"{self.plan.name}.run() as run:` (entering starts every driver, "
                "leaving stops them)"
            )
            raise TypeError(msg)

    @asynccontextmanager
    async def _lifespan(self) -> AsyncIterator[Run]:
        async with Coordinator(self._core).lifespan():
            yield self

    def shutdown_error(self) -> ShutdownError | None:
        """What leaving the run raises for failures after start-up, or None.

        The failure that stopped the run (a background task, a driver that
        gave up restarting) and every stop that failed, as one
        :class:`ShutdownError`; ``serve()`` reads it after a rollback too.
        """
        return shutdown_error(self._core)

    @property
    def gave_up(self) -> str | None:
        """Why the supervisor stopped the run, or None if it did not.

        ``"gave up restarting storage (tier 1) after 3 restart(s) within
        60s"``: set when a driver failed once more than its
        :class:`Restart` allows and the run stops for it (before the
        ``"gave-up"`` event, and before the run stops being live).
        """
        return self._core.gave_up

    # -- what users call -----------------------------------------------------------------

    @overload
    def get(self, dep: DriverHandle[T]) -> T: ...
    @overload
    def get(self, dep: type[D]) -> D: ...
    @overload
    def get(self, dep: str | Driver) -> Any: ...
    def get(self, dep: object) -> Any:
        """Return the value of a running driver.

        Typed by what you pass: a handle from ``@runtime.driver`` gives the
        type its function yields, a :class:`Driver` class gives an instance
        of that class, a name gives ``Any``::

            async with runtime.run() as run:
                pool = run.get(storage)   # the handle: typed
                pool = run.get("storage")  # the name: Any

        Args:
            dep: the driver's name, its handle or its class.

        Raises:
            DependencyError: no such driver, two drivers of that class, or
                it is not running (restarting, skipped, failed).
            UsageError: the run is not up (not entered yet, or stopped).
        """
        core = self._core
        name = core.name_of(dep, "run.get()")
        slot = core.slots.get(name)
        if slot is None:
            msg = (
                f"run.get({name!r}): no driver of that name in runtime "
                f"{self.plan.name!r}{did_you_mean(name, core.slots)}"
            )
            raise DependencyError(msg)
        if core.state != "running":
            msg = (
                f"run.get({name!r}): the run of {self.plan.name!r} is not up "
                f"(it is {core.state}); use run.get() inside `async with "
                "runtime.run() as run:`"
            )
            raise UsageError(msg)
        if not slot.up:
            status = slot.status
            if status == "restarting":
                why = " (it failed and is being restarted; try again once it is up)"
            else:
                detail = slot.describe_outcome()
                why = f" ({detail})" if detail != status else ""
            msg = f"run.get({name!r}): {slot.label()} is {status}{why}"
            raise DependencyError(msg)
        return slot.value

    async def reload(self) -> tuple[Exception, ...]:
        """Call ``reload`` tier by tier, concurrently within a tier.

        Errors (and timeouts, under each driver's ``start_timeout``) are
        logged, noted with driver, tier and phase, and returned; a reload
        never stops the run.  A reload called while one runs waits for it.
        A stop that begins meanwhile cancels it.

        Returns:
            the exceptions raised by reload hooks, empty when all went well.
        """
        if self._core.state != "running":
            msg = (
                f"run.reload(): the run of {self.plan.name!r} is not up; call "
                "run.reload() inside `async with runtime.run() as run:`"
            )
            raise UsageError(msg)
        return await self._core.reloads.reload()

    def __repr__(self) -> str:
        return f"<tiered.Run of {self.plan.name!r}, {self.state}>"
