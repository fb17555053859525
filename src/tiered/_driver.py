"""Driver declarations: the ``Driver`` base class, handles, the generator adapter.

A declaration is checked as far as it can be on its own the moment it is made
(types, tiers, timeouts, async-ness of hooks), so the mistake points at the
line that made it.  What needs the whole runtime (names, tiers, cycles) is
checked by ``_plan``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar

from ._exceptions import ConfigError, UsageError

if TYPE_CHECKING:
    from ._context import Context

__all__ = ["Driver", "DriverHandle", "Requirement"]

T_co = TypeVar("T_co", covariant=True)

HOOKS = ("initialize", "autostart", "reload", "stop")


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
        optional: when true, its failure is logged and the run goes on.
        start_timeout: seconds for ``initialize`` plus ``autostart``; ``None``
            takes the runtime's default, ``math.inf`` means no limit.
        stop_timeout: seconds for ``stop``, same conventions.
    """

    name: str = "driver"
    tier: int | None = None
    requires: Sequence[Requirement] = ()
    optional: bool = False
    start_timeout: float | None = None
    stop_timeout: float | None = None

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

    def __repr__(self) -> str:
        return f"<tiered driver {self.name!r} of runtime {self._owner.name!r}>"


Requirement: TypeAlias = "str | DriverHandle[Any] | type[Driver] | Driver"
GeneratorFunction: TypeAlias = "Callable[[Context], AsyncIterator[Any]]"


@dataclass(frozen=True, slots=True)
class Spec:
    """One declared driver, as given (tier may still be ``None``)."""

    name: str
    tier: int | None
    requires: tuple[Requirement, ...]
    optional: bool
    start_timeout: float | None
    stop_timeout: float | None
    # exactly one of the two:
    function: GeneratorFunction | None
    instance: Driver | None
    # which optional hooks a Driver overrides; a phase not run is absent
    has_autostart: bool
    has_reload: bool
    has_stop: bool


def requirement_name(req: Requirement) -> str:
    """The driver name a requirement refers to (types were checked before)."""
    return req if isinstance(req, str) else req.name


def check_name(name: object, what: str) -> str:
    if not isinstance(name, str) or not name or name != name.strip():
        msg = (
            f"{what}: driver name {name!r} is not valid; "
            "use a non-empty string without surrounding spaces, like name='storage'"
        )
        raise ConfigError(msg)
    return name


#: the highest explicit tier: a typo like tier=1_000_000 would otherwise make
#: a plan of a million empty tiers (tests/test_bad_inputs.py)
MAX_TIER = 10_000


def check_tier(tier: object, name: str) -> int | None:
    if tier is None:
        return None
    if isinstance(tier, bool) or not isinstance(tier, int) or tier < 0:
        msg = (
            f"driver {name!r} has tier={tier!r}; a tier is an integer >= 0 "
            "(0 starts first), or None to infer it from requires"
        )
        raise ConfigError(msg)
    if tier > MAX_TIER:
        msg = (
            f"driver {name!r} has tier={tier!r}; tiers are small integers, at most "
            f"{MAX_TIER}: the plan holds every tier from 0 up to the highest, "
            "so number them 0, 1, 2, ... (or leave tier=None to infer it)"
        )
        raise ConfigError(msg)
    return tier


def check_timeout(value: object, name: str, what: str) -> float | None:
    if value is None:
        return None
    seconds = math.nan
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except OverflowError:  # an int beyond any float
            msg = (
                f"driver {name!r} has {what}={value!r}, more seconds than a "
                "float holds; use math.inf for no limit"
            )
            raise ConfigError(msg) from None
    if math.isnan(seconds) or seconds <= 0:
        msg = (
            f"driver {name!r} has {what}={value!r}; a timeout is a number of "
            "seconds > 0, math.inf for no limit, or None for the runtime's default"
        )
        raise ConfigError(msg)
    return seconds


def check_requires(requires: object, name: str) -> tuple[Requirement, ...]:
    if isinstance(requires, str):
        msg = (
            f"driver {name!r} has requires={requires!r}, a string; requires is a "
            f"sequence of drivers: requires=({requires!r},)"
        )
        raise ConfigError(msg)
    if not isinstance(requires, Sequence | set | frozenset):
        msg = (
            f"driver {name!r} has requires={requires!r}; requires is a tuple of "
            "driver names, handles from @runtime.driver or Driver classes"
        )
        raise ConfigError(msg)
    out: list[Requirement] = []
    for req in requires:
        ok = isinstance(req, str | DriverHandle | Driver) or (
            isinstance(req, type) and issubclass(req, Driver)
        )
        if not ok:
            msg = (
                f"driver {name!r} requires {req!r}, which is not a driver; "
                "name a driver by its name, the handle @runtime.driver returned, "
                "or its Driver class"
            )
            raise ConfigError(msg)
        out.append(req)
    return tuple(out)


def check_optional(optional: object, name: str) -> bool:
    if not isinstance(optional, bool):
        msg = f"driver {name!r} has optional={optional!r}; use True or False"
        raise ConfigError(msg)
    return optional


def spec_from_function(
    fn: object,
    *,
    name: str | None,
    tier: int | None,
    requires: Sequence[Requirement],
    optional: bool,
    start_timeout: float | None,
    stop_timeout: float | None,
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
        name=driver_name,
        tier=check_tier(tier, driver_name),
        requires=check_requires(requires, driver_name),
        optional=check_optional(optional, driver_name),
        start_timeout=check_timeout(start_timeout, driver_name, "start_timeout"),
        stop_timeout=check_timeout(stop_timeout, driver_name, "stop_timeout"),
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
        name=name,
        tier=check_tier(driver.tier, name),
        requires=check_requires(driver.requires, name),
        optional=check_optional(driver.optional, name),
        start_timeout=check_timeout(driver.start_timeout, name, "start_timeout"),
        stop_timeout=check_timeout(driver.stop_timeout, name, "stop_timeout"),
        function=None,
        instance=driver,
        has_autostart=overridden["autostart"],
        has_reload=overridden["reload"],
        has_stop=overridden["stop"],
    )


# -- the generator adapter ---------------------------------------------------
# An @runtime.driver function runs in one task from initialize to stop (the
# driver's lifetime task), so it may hold a task group or a cancel scope across
# its yield, as an @asynccontextmanager can.


async def generator_initialize(
    fn: GeneratorFunction, ctx: Context
) -> tuple[AsyncIterator[Any], Any]:
    agen = fn(ctx)
    try:
        value = await agen.__anext__()
    except StopAsyncIteration:
        msg = (
            f"driver {ctx.name!r} (tier {ctx.tier}) returned without yielding; an "
            "@runtime.driver function must yield its value exactly once"
        )
        raise UsageError(msg) from None
    return agen, value


async def generator_stop(agen: AsyncIterator[Any], ctx: Context) -> None:
    try:
        await agen.__anext__()
    except StopAsyncIteration:
        return
    aclose = getattr(agen, "aclose", None)
    if aclose is not None:
        await aclose()
    msg = (
        f"driver {ctx.name!r} (tier {ctx.tier}) yielded a second time; an "
        "@runtime.driver function must yield exactly once (its stop code follows "
        "the yield)"
    )
    raise UsageError(msg)
