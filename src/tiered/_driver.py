"""Driver declarations: the ``Driver`` base class, handles, the generator adapter.

A declaration is checked as far as it can be on its own the moment it is made
(types, tiers, timeouts, async-ness of hooks), so the mistake points at the
line that made it (the checks are in ``_checks``).  What needs the whole
runtime (names, tiers, cycles) is checked by ``_plan``.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar

from ._checks import check_bool, check_name, check_seconds, check_sequence, check_tier
from ._exceptions import ConfigError, public

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Sequence

    from ._context import Context
    from ._restart import Restart

__all__ = ["Driver", "DriverHandle", "Requirement"]

T_co = TypeVar("T_co", covariant=True)

HOOKS = ("initialize", "autostart", "reload", "stop")


@public
class Driver:
    """Base class for a driver written as a class.

    Set the declaration as class attributes (or on the instance in
    ``__init__``) and override the hooks you need; only ``initialize`` is
    required.  Register an instance with :meth:`Runtime.add`.  The driver's
    value, what ``ctx.get()`` and ``run.get()`` return, is the instance.

    Example::

        class Storage(tiered.Driver):
            tier = 1
            requires = ("secrets",)

            async def initialize(self, ctx: tiered.Context) -> None:
                self.keys = ctx.get("secrets")

            async def autostart(self, ctx: tiered.Context) -> None:
                await activate_pools(self.keys)

    Attributes:
        name: unique name in the runtime; defaults to the class name in lower
            case.
        tier: the tier, 0 first; ``None`` infers one above the highest tier it
            requires (0 when it requires nothing).
        requires: the drivers whose values it may ``ctx.get()``: names,
            handles returned by ``@runtime.driver`` or ``Driver`` classes.
            Each must be in a lower tier.
        after: drivers it starts after and stops before, without needing
            them (systemd's ``After=``): their failure or skip neither
            fails nor skips it, and it may not ``ctx.get()`` them.
        optional: when true, its failure is logged and the run goes on.
        start_timeout: seconds for ``initialize`` plus ``autostart``; ``None``
            takes the runtime's default, ``math.inf`` means no limit.
        stop_timeout: seconds for ``stop``, same conventions.
        restart: what to do when it fails after start-up: ``None`` (stop
            the run, or only its optional subtree), ``"on-failure"`` or a
            :class:`Restart`.
    """

    name: str = "driver"
    tier: int | None = None
    requires: Sequence[Requirement] = ()
    after: Sequence[Requirement] = ()
    optional: bool = False
    start_timeout: float | None = None
    stop_timeout: float | None = None
    restart: Restart | str | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = cls.__name__.lower()

    async def initialize(self, ctx: Context) -> None:
        """Bring the driver up: open what it owns, publish nothing yet."""
        raise NotImplementedError  # pragma: no cover - add() refuses such classes

    async def autostart(self, ctx: Context) -> None:
        """Start what is configured to start, once the whole tier initialized."""

    async def reload(self, ctx: Context) -> None:
        """Re-read configuration (``run.reload()``, SIGHUP)."""

    async def stop(self, ctx: Context) -> None:
        """Release what ``initialize`` acquired; runs exactly once."""

    def __repr__(self) -> str:
        return f"<{type(self).__qualname__} driver {self.name!r}>"


@public
class DriverHandle(Generic[T_co]):
    """What ``@runtime.driver`` returns: names the driver, types its value.

    Pass it to ``requires`` and to ``ctx.get()`` / ``run.get()``;
    ``ctx.get(handle)`` is typed as what the driver function yields.

    Example::

        @runtime.driver(tier=0)
        async def secrets(ctx: tiered.Context) -> AsyncIterator[SecretStore]:
            yield SecretStore()

        @runtime.driver(requires=(secrets,))
        async def storage(ctx: tiered.Context) -> AsyncIterator[Pools]:
            store = ctx.get(secrets)  # a SecretStore, to a type checker
            yield Pools(store)

        secrets.name  # 'secrets'

    Attributes:
        name: the driver's name.
    """

    __slots__ = ("_owner", "name")

    def __init__(self, name: str, owner: Any) -> None:
        self.name = name
        self._owner = owner  # the Runtime that declared it

    def belongs_to(self, runtime: object) -> bool:
        """Whether the driver was declared on ``runtime``."""
        return self._owner is runtime

    def __repr__(self) -> str:
        return f"<tiered driver {self.name!r} of runtime {self._owner.name!r}>"


Requirement: TypeAlias = "str | DriverHandle[Any] | type[Driver] | Driver"
GeneratorFunction: TypeAlias = "Callable[[Context], AsyncIterator[Any]]"


class Spec:
    """One declared driver, as given (tier may still be ``None``).

    A plain class, not a dataclass: a daemon imports this module at start-up,
    and a frozen dataclass with slots costs a millisecond to define.
    """

    __slots__ = (
        "after",
        "function",
        "has_autostart",
        "has_reload",
        "has_stop",
        "instance",
        "name",
        "optional",
        "requires",
        "restart",
        "start_timeout",
        "stop_timeout",
        "tier",
    )

    def __init__(
        self,
        *,
        name: str,
        tier: int | None,
        requires: tuple[Requirement, ...],
        after: tuple[Requirement, ...],
        optional: bool,
        start_timeout: float | None,
        stop_timeout: float | None,
        restart: Restart | None,
        function: GeneratorFunction | None,
        instance: Driver | None,
        has_autostart: bool,
        has_reload: bool,
        has_stop: bool,
    ) -> None:
        self.name = name
        self.tier = tier
        self.requires = requires
        self.after = after
        self.optional = optional
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.restart = restart
        # exactly one of the two:
        self.function = function
        self.instance = instance
        # which optional hooks a Driver overrides; a phase not run is absent
        self.has_autostart = has_autostart
        self.has_reload = has_reload
        self.has_stop = has_stop

    def __repr__(self) -> str:
        return f"<Spec of driver {self.name!r}>"


def _restart(value: object, name: str) -> Restart | None:
    if value is None:  # the usual case, which needs nothing imported
        return None
    from ._restart import check_restart

    return check_restart(value, name)


def check_requirements(value: object, name: str, what: str) -> tuple[Requirement, ...]:
    """``requires`` or ``after``: names, handles, Driver classes or instances."""
    out: list[Requirement] = []
    for req in check_sequence(value, name, what):
        ok = isinstance(req, str | DriverHandle | Driver) or (
            isinstance(req, type) and issubclass(req, Driver)
        )
        if not ok:
            verb = "requires" if what == "requires" else "is after"
            msg = (
                f"driver {name!r} {verb} {req!r}, which is not a driver; "
                "name a driver by its name, the handle @runtime.driver returned, "
                "or its Driver class"
            )
            raise ConfigError(msg)
        out.append(req)  # type: ignore[arg-type]  # narrowed just above
    return tuple(out)


def _timeout(value: object, name: str, what: str) -> float | None:
    return check_seconds(
        value, f"driver {name!r} has {what}={value!r}", none="the runtime's default"
    )


def _declared(
    name: str,
    *,
    tier: object,
    requires: object,
    after: object,
    optional: object,
    start_timeout: object,
    stop_timeout: object,
    restart: object,
) -> dict[str, Any]:
    """The checked options every declaration has, by keyword, for Spec."""
    return {
        "name": name,
        "tier": check_tier(tier, name),
        "requires": check_requirements(requires, name, "requires"),
        "after": check_requirements(after, name, "after"),
        "optional": check_bool(optional, f"driver {name!r} has optional"),
        "start_timeout": _timeout(start_timeout, name, "start_timeout"),
        "stop_timeout": _timeout(stop_timeout, name, "stop_timeout"),
        "restart": _restart(restart, name),
    }


def spec_from_function(
    fn: object,
    *,
    name: str | None,
    tier: int | None,
    requires: Sequence[Requirement],
    after: Sequence[Requirement],
    optional: bool,
    start_timeout: float | None,
    stop_timeout: float | None,
    restart: Restart | str | None,
) -> Spec:
    """Declare an async-generator driver; refuses anything else, loudly."""
    label = getattr(fn, "__qualname__", repr(fn))
    if not inspect.isasyncgenfunction(fn):
        if inspect.iscoroutinefunction(fn):
            hint = (
                "it is an async function that returns; make it yield its value "
                "once (code after the yield is its stop), or subclass tiered.Driver"
            )
        elif inspect.isgeneratorfunction(fn):
            hint = "it is a sync generator; write it as `async def` with one `yield`"
        elif callable(fn):
            hint = "write it as `async def name(ctx):` with exactly one `yield`"
        else:
            hint = "decorate an `async def` function that yields once"
        msg = f"@runtime.driver got {label}, which is not an async generator function: {hint}"
        raise ConfigError(msg)
    driver_name = check_name(
        fn.__name__ if name is None else name,
        f"@runtime.driver on {label}",
    )
    return Spec(
        **_declared(
            driver_name,
            tier=tier,
            requires=requires,
            after=after,
            optional=optional,
            start_timeout=start_timeout,
            stop_timeout=stop_timeout,
            restart=restart,
        ),
        function=fn,
        instance=None,
        has_autostart=False,
        has_reload=False,
        has_stop=True,
    )


def spec_from_instance(driver: object) -> Spec:
    """Declare a ``Driver`` instance; checks its attributes and hooks."""
    if isinstance(driver, type) and issubclass(driver, Driver):
        msg = (
            f"runtime.add() got the class {driver.__qualname__}, not an instance; "
            f"write runtime.add({driver.__qualname__}())"
        )
        raise ConfigError(msg)
    if not isinstance(driver, Driver):
        msg = (
            f"runtime.add() got {driver!r}, which is not a tiered.Driver; subclass "
            "tiered.Driver, or decorate an async generator with @runtime.driver()"
        )
        raise ConfigError(msg)
    cls = type(driver)
    name = check_name(driver.name, f"runtime.add({cls.__qualname__}())")
    if cls.initialize is Driver.initialize:
        msg = (
            f"driver {name!r} ({cls.__qualname__}) does not define initialize(); "
            "add `async def initialize(self, ctx): ...`"
        )
        raise ConfigError(msg)
    overridden: dict[str, bool] = {}
    for hook in HOOKS:
        method = getattr(driver, hook)
        if not inspect.iscoroutinefunction(method):
            article = "an" if hook[0] in "aeiou" else "a"
            msg = (
                f"driver {name!r} ({cls.__qualname__}) has {article} {hook}() that "
                f"is not an async function; write it as `async def {hook}(self, ctx):`"
            )
            raise ConfigError(msg)
        overridden[hook] = getattr(cls, hook) is not getattr(Driver, hook)
    return Spec(
        **_declared(
            name,
            tier=driver.tier,
            requires=driver.requires,
            after=driver.after,
            optional=driver.optional,
            start_timeout=driver.start_timeout,
            stop_timeout=driver.stop_timeout,
            restart=driver.restart,
        ),
        function=None,
        instance=driver,
        has_autostart=overridden["autostart"],
        has_reload=overridden["reload"],
        has_stop=overridden["stop"],
    )
