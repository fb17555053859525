"""The context every hook gets: lookups, background tasks, status, deadlines."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, TypeVar, TypeVarTuple, Unpack, overload

from ._exceptions import public

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ._driver import Driver, DriverHandle
    from ._slot import Slot

    # type variables for type checkers only: each costs a daemon's start-up
    T = TypeVar("T")
    D = TypeVar("D", bound=Driver)
    PosArgs = TypeVarTuple("PosArgs")

__all__ = ["Context"]


@public
class Context:
    """Handed to every hook of one driver, for one run.

    Everything a driver may ask of the run goes through it::

        @runtime.driver(requires=[secrets])
        async def storage(ctx: tiered.Context) -> AsyncIterator[Pools]:
            key = ctx.get(secrets)             # a declared requirement
            ctx.status("activating pools")     # logged, reported, sent to systemd
            pools = Pools(key)
            while not await pools.try_activate():
                ctx.extend_timeout(10)         # progress: 10 s more from now
            ctx.start_soon(pools.monitor)      # cancelled before the stop code
            yield pools
            await pools.deactivate()

    Attributes:
        name: the driver's name.
        tier: the driver's tier (inferred ones resolved).
    """

    __slots__ = ("_logger", "_slot", "name", "tier")

    def __init__(self, slot: Slot) -> None:
        self._slot = slot
        self._logger: logging.Logger | None = None
        self.name = slot.name
        self.tier = slot.tier

    @overload
    def get(self, dep: DriverHandle[T]) -> T: ...
    @overload
    def get(self, dep: type[D]) -> D: ...
    @overload
    def get(self, dep: str | Driver) -> Any: ...
    def get(self, dep: object) -> Any:
        """Return the value of a driver this one declared in ``requires``.

        ``ctx.get(secrets)`` with the handle of a driver declared as
        ``requires=[secrets]`` returns what ``secrets`` yielded, typed.

        Args:
            dep: the required driver: its name, its handle or its class.

        Raises:
            DependencyError: ``dep`` is not in this driver's ``requires``
                (the message says how to add it).
        """
        return self._slot.core.lookup_for(self._slot, dep)

    def start_soon(
        self,
        fn: Callable[[Unpack[PosArgs]], Awaitable[object]],
        *args: *PosArgs,
        name: object = None,
    ) -> None:
        """Start a background task that lives until this driver stops.

        It is cancelled (and waited for, up to the driver's
        ``stop_timeout``) before the driver's ``stop`` runs.  If it raises
        during start-up, that is the driver's failure (start-up fails with
        :class:`StartupError` unless the driver is optional).  If it raises
        once the run is up, the driver's ``restart`` policy decides: restart
        it with its dependents, stop only an optional subtree, or stop the
        run (leaving ``async with runtime.run()`` raises
        :class:`ShutdownError`).

        Args:
            fn: an async function; it is called as ``fn(*args)``.
            *args: positional arguments for ``fn``.
            name: the task's name, for debuggers and tracebacks (default:
                the function's qualified name).

        Raises:
            UsageError: called from ``stop``, when background tasks are over.
        """
        from ._background import start_background

        start_background(self._slot, fn, args, name)

    def status(self, text: str) -> None:
        """Set a free-text status line: logged, kept in the report, sent to systemd.

        Args:
            text: one line saying what the driver is doing now, e.g.
                ``"waiting for the pool to come online"``.

        Raises:
            ConfigError: ``text`` is not a str.
        """
        self._slot.core.journal.status(self._slot, text)

    def extend_timeout(self, seconds: float) -> None:
        """Make sure this driver has at least ``seconds`` left from now.

        Like systemd's ``EXTEND_TIMEOUT_USEC``: it never shortens the current
        deadline, and applies to the phase running now (start-up, reload or
        stop).  While a driver rests there is nothing to extend, and the call
        does nothing; a stop that was cut short stays cut.

        Args:
            seconds: the time, counted from now, the phase may still take.

        Raises:
            ConfigError: ``seconds`` is not a number > 0.
        """
        self._slot.core.extend(self._slot, seconds)

    @property
    def logger(self) -> logging.Logger:
        """The logger ``tiered.driver.<name>`` (made on first use)."""
        if self._logger is None:
            self._logger = logging.getLogger(f"tiered.driver.{self.name}")
        return self._logger

    def __repr__(self) -> str:
        return f"<tiered.Context of {self.name!r} (tier {self.tier})>"
