"""``Runtime``: the declared set of drivers."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar, overload

from ._checks import check_name, check_seconds
from ._driver import (
    Driver,
    DriverHandle,
    Requirement,
    Spec,
    spec_from_function,
    spec_from_instance,
)
from ._exceptions import ConfigError, UsageError, public
from ._plan import Plan, build_plan
from ._run import Run

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Sequence

    from ._context import Context
    from ._restart import Restart

    # type variables for type checkers only: each costs a daemon's start-up
    T = TypeVar("T")
    D = TypeVar("D", bound=Driver)
    DriverFunction = Callable[[Context], AsyncIterator[T]]

__all__ = ["Runtime"]


SCHEDULES = ("tiers", "dependencies")


def _check_default_timeout(value: object, what: str) -> float | None:
    return check_seconds(value, f"Runtime({what}={value!r})", none="no limit")


def _check_schedule(value: object, where: str) -> str:
    if value not in SCHEDULES:
        msg = (
            f"{where}(schedule={value!r}): use 'tiers' (the barrier between "
            "tiers, the default) or 'dependencies' (each driver as soon as what "
            "it requires and is after is up)"
        )
        raise ConfigError(msg)
    assert isinstance(value, str)
    return value


def _check_limit(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        msg = (
            f"Runtime(max_concurrent_starts={value!r}): the most hooks that may "
            "start at once is an integer >= 1, or None for no limit"
        )
        raise ConfigError(msg)
    return value


@public
class Runtime:
    """The drivers of one daemon, declared before it runs.

    Args:
        name: shown in logs, reports and errors.
        start_timeout: default seconds for a driver's ``initialize`` plus
            ``autostart``; ``None`` means no limit.  90 s mirrors systemd.
        stop_timeout: default seconds for a driver's ``stop``.
        schedule: ``"tiers"`` (the default: a barrier between tiers) or
            ``"dependencies"`` (each driver as soon as what it requires and
            is after is up); ``runtime.run(schedule=...)`` overrides it.
        max_concurrent_starts: at most this many hooks (``initialize`` or
            ``autostart``) run at once; a driver waiting at a barrier or
            for its requirements holds no place.  ``None``: no limit.
        shutdown_timeout: the whole shutdown takes at most this many
            seconds; then every stop still running is cut short.  ``None``:
            no overall limit (each stop still has its ``stop_timeout``).

    Example::

        runtime = tiered.Runtime("virtd")

        @runtime.driver(tier=0)
        async def secrets(ctx: tiered.Context) -> AsyncIterator[SecretStore]:
            store = await SecretStore.open()
            yield store
            await store.close()

        async with runtime.run() as run:
            ...

    Attributes:
        name: the name given.
        start_timeout: the default ``start_timeout`` of its drivers, in
            seconds, or ``None`` for no limit.
        stop_timeout: the default ``stop_timeout`` of its drivers.
        schedule: the schedule its runs use unless told otherwise.
        max_concurrent_starts: the limit on hooks starting at once, or None.
        shutdown_timeout: the budget of a whole shutdown, or None.
    """

    def __init__(
        self,
        name: str = "tiered",
        *,
        start_timeout: float | None = 90.0,
        stop_timeout: float | None = 90.0,
        schedule: str = "tiers",
        max_concurrent_starts: int | None = None,
        shutdown_timeout: float | None = None,
    ) -> None:
        if not isinstance(name, str) or not name or name != name.strip():
            msg = (
                f"Runtime(name={name!r}): the name is a non-empty string without "
                "surrounding spaces, like Runtime('virtd')"
            )
            raise ConfigError(msg)
        self.name = name
        self.start_timeout = _check_default_timeout(start_timeout, "start_timeout")
        self.stop_timeout = _check_default_timeout(stop_timeout, "stop_timeout")
        self.schedule = _check_schedule(schedule, "Runtime")
        self.max_concurrent_starts = _check_limit(max_concurrent_starts)
        self.shutdown_timeout = _check_default_timeout(
            shutdown_timeout, "shutdown_timeout"
        )
        self._specs: list[Spec] = []
        self._names: set[str] = set()
        self._plan: Plan | None = None
        self._frozen = False
        self._active: Run | None = None

    def __repr__(self) -> str:
        return f"<tiered.Runtime {self.name!r} with {len(self._specs)} driver(s)>"

    # -- declaring -------------------------------------------------------------

    @overload
    def driver(self, fn: DriverFunction[T], /) -> DriverHandle[T]: ...
    @overload
    def driver(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        tier: int | None = None,
        requires: Sequence[Requirement] = (),
        after: Sequence[Requirement] = (),
        optional: bool = False,
        start_timeout: float | None = None,
        stop_timeout: float | None = None,
        restart: Restart | str | None = None,
    ) -> Callable[[DriverFunction[T]], DriverHandle[T]]: ...
    def driver(
        self,
        fn: DriverFunction[T] | None = None,
        /,
        *,
        name: str | None = None,
        tier: int | None = None,
        requires: Sequence[Requirement] = (),
        after: Sequence[Requirement] = (),
        optional: bool = False,
        start_timeout: float | None = None,
        stop_timeout: float | None = None,
        restart: Restart | str | None = None,
    ) -> DriverHandle[T] | Callable[[DriverFunction[T]], DriverHandle[T]]:
        """Declare a driver written as an async generator that yields once.

        Code before the ``yield`` is ``initialize``, the yielded object is the
        driver's value, code after it is ``stop``.  Use it bare
        (``@runtime.driver``) or with options.

        Args:
            name: defaults to the function's name.
            tier: 0 first; ``None`` infers one above what it requires.
            requires: drivers it may ``ctx.get()``: names, handles, classes.
            after: drivers it starts after and stops before, without needing
                them (systemd's ``After=``).
            optional: its failure is logged and the run goes on.
            start_timeout: seconds for ``initialize``; ``None`` takes the
                runtime's, ``math.inf`` means no limit.
            stop_timeout: seconds for ``stop``, same conventions.
            restart: when it fails after start-up: ``None`` (the default),
                ``"on-failure"`` or a :class:`Restart`.

        Returns:
            a :class:`DriverHandle` typed by what the function yields.

        Raises:
            ConfigError: the function is not an async generator function, or
                an option is invalid.
            UsageError: the runtime has already run.
        """

        def register(function: DriverFunction[T]) -> DriverHandle[T]:
            spec = spec_from_function(
                function,
                name=name,
                tier=tier,
                requires=requires,
                after=after,
                optional=optional,
                start_timeout=start_timeout,
                stop_timeout=stop_timeout,
                restart=restart,
            )
            self._register(spec)
            return DriverHandle(spec.name, self)

        if fn is not None:
            return register(fn)
        if name is not None:
            check_name(name, "@runtime.driver(name=...)")
        return register

    def add(self, driver: D) -> D:
        """Register a :class:`Driver` instance; returns it.

        Raises:
            ConfigError: not a ``Driver`` instance, a hook is not async,
                ``initialize`` is missing, or an attribute is invalid.
            UsageError: the runtime has already run.
        """
        self._register(spec_from_instance(driver))
        return driver

    def _register(self, spec: Spec) -> None:
        if self._frozen:
            msg = (
                f"runtime {self.name!r} has already run, so it is immutable; declare "
                f"driver {spec.name!r} before the first runtime.run()"
            )
            raise UsageError(msg)
        if spec.name in self._names:
            how = "name=..." if spec.function is not None else "set its name attribute"
            msg = (
                f"runtime {self.name!r} already has a driver named {spec.name!r}; "
                f"give this one another name ({how})"
            )
            raise ConfigError(msg)
        self._names.add(spec.name)
        self._specs.append(spec)
        self._plan = None

    # -- checking and running --------------------------------------------------

    def check(self) -> Plan:
        """Validate every declaration and return the :class:`Plan`.

        Raises:
            ConfigError: one message listing every problem found: a
                requirement naming no driver, one on the same or a higher
                tier, a cycle among inferred tiers (with its whole path).
        """
        if self._plan is None:
            self._plan = build_plan(
                self.name, self, self._specs, self.start_timeout, self.stop_timeout
            )
        return self._plan

    def run(self, *, schedule: str | None = None) -> Run:
        """Check the runtime and return a :class:`Run`, to use with ``async with``.

        The runtime becomes immutable.  A runtime can run many times, one
        run after another, never two at once.

        Args:
            schedule: ``"tiers"`` or ``"dependencies"`` for this run only;
                ``None`` takes the runtime's.

        Raises:
            ConfigError: the plan is invalid, or the schedule unknown;
                nothing has started.
        """
        plan = self.check()
        chosen = (
            self.schedule
            if schedule is None
            else _check_schedule(schedule, "runtime.run")
        )
        self._frozen = True
        return Run(
            self,
            plan,
            schedule=chosen,
            max_concurrent_starts=self.max_concurrent_starts,
            shutdown_timeout=self.shutdown_timeout,
            claim=self._claim,
            release=self._release,
        )

    def _claim(self, run: Run) -> None:
        if self._active is not None:
            msg = (
                f"runtime {self.name!r} is already running; a runtime runs once at a "
                "time: leave the first `async with runtime.run()` before entering another"
            )
            raise UsageError(msg)
        self._active = run

    def _release(self, run: Run) -> None:
        if self._active is run:
            self._active = None

    @property
    def drivers(self) -> tuple[str, ...]:
        """Names of the declared drivers, in declaration order."""
        return tuple(s.name for s in self._specs)
