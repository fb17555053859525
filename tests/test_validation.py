"""Every ConfigError, DependencyError and UsageError tiered raises.

Each test checks the error class and that the message names the culprit (the
driver, its tier) and the fix, so a user can act on the one line they see.
Declaration mistakes are raised where they are made; plan mistakes by
``runtime.check()`` and ``runtime.run()`` before any driver starts; misuse of
a run as ``UsageError``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import anyio
import pytest

import tiered

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator

Backend = tuple[str, dict[str, Any]]


# -- drivers used by several tests --------------------------------------------


class _Probe(tiered.Driver):
    """A class driver that does nothing; tests give it attributes."""

    async def initialize(self, ctx: tiered.Context) -> None:
        pass


class Storage(tiered.Driver):
    """A class driver named 'storage' (the default: the class name, lower case)."""

    async def initialize(self, ctx: tiered.Context) -> None:
        pass


class Qemu(tiered.Driver):
    """A class driver named 'qemu'."""

    async def initialize(self, ctx: tiered.Context) -> None:
        pass


def _declare_function(runtime: tiered.Runtime, **options: Any) -> None:
    async def probe(ctx: tiered.Context) -> AsyncIterator[None]:
        yield None

    runtime.driver(**options)(probe)


def _declare_class(runtime: tiered.Runtime, **options: Any) -> None:
    cls = type("Probe", (_Probe,), {"name": "probe", **options})
    runtime.add(cls())


DECLARERS = [
    pytest.param(_declare_function, id="function"),
    pytest.param(_declare_class, id="class"),
]


def _as_any(value: object) -> Any:
    """Hide a deliberately wrong value from mypy."""
    return value


# -- ConfigError at declaration: what @runtime.driver accepts -----------------


async def _returns(ctx: tiered.Context) -> int:
    return 1


def _sync_generator(ctx: tiered.Context) -> Iterator[int]:
    yield 1


def _plain(ctx: tiered.Context) -> int:
    return 1


@pytest.mark.parametrize(
    ("fn", "culprit", "fix"),
    [
        pytest.param(
            _returns,
            "_returns",
            "it is an async function that returns; make it yield its value once",
            id="coroutine-function",
        ),
        pytest.param(
            _sync_generator,
            "_sync_generator",
            "it is a sync generator; write it as `async def` with one `yield`",
            id="sync-generator",
        ),
        pytest.param(
            _plain,
            "_plain",
            "write it as `async def name(ctx):` with exactly one `yield`",
            id="plain-function",
        ),
        pytest.param(
            42,
            "42",
            "decorate an `async def` function that yields once",
            id="not-callable",
        ),
    ],
)
def test_driver_refuses_what_is_not_an_async_generator(
    fn: object, culprit: str, fix: str
) -> None:
    """@runtime.driver refuses anything but an async generator function, saying what it got."""
    runtime = tiered.Runtime("virtd")
    with pytest.raises(tiered.ConfigError) as exc_info:
        runtime.driver(_as_any(fn))
    msg = str(exc_info.value)
    assert f"@runtime.driver got {culprit}, which is not an async generator" in msg
    assert fix in msg
    assert runtime.drivers == ()


def test_driver_with_options_refuses_coroutine_function() -> None:
    """@runtime.driver(tier=...) refuses a coroutine function like the bare form does."""
    runtime = tiered.Runtime("virtd")
    with pytest.raises(tiered.ConfigError) as exc_info:
        runtime.driver(tier=0)(_as_any(_returns))
    assert "_returns, which is not an async generator function" in str(exc_info.value)


# -- ConfigError at declaration: Driver subclasses ----------------------------


def _sync_hook(self: tiered.Driver, ctx: tiered.Context) -> None:
    pass  # pragma: no cover - never called


@pytest.mark.parametrize("hook", ["initialize", "autostart", "reload", "stop"])
def test_add_refuses_sync_hook(hook: str) -> None:
    """runtime.add() refuses a Driver whose hook is a plain def, naming driver and hook."""
    cls = type("Network", (_Probe,), {"name": "network", hook: _sync_hook})
    runtime = tiered.Runtime("virtd")
    with pytest.raises(tiered.ConfigError) as exc_info:
        runtime.add(cls())
    msg = str(exc_info.value)
    assert "driver 'network' (Network)" in msg
    assert f"{hook}() that is not an async function" in msg
    assert f"write it as `async def {hook}(self, ctx):`" in msg
    assert runtime.drivers == ()


def test_add_refuses_driver_without_initialize() -> None:
    """runtime.add() refuses a Driver subclass that does not define initialize()."""

    class Lazy(tiered.Driver):
        async def stop(self, ctx: tiered.Context) -> None:
            pass  # pragma: no cover - never called

    runtime = tiered.Runtime("virtd")
    with pytest.raises(tiered.ConfigError) as exc_info:
        runtime.add(Lazy())
    msg = str(exc_info.value)
    assert "driver 'lazy'" in msg
    assert "does not define initialize()" in msg
    assert "add `async def initialize(self, ctx): ...`" in msg


def test_add_refuses_class_instead_of_instance() -> None:
    """runtime.add(Storage) is refused with the call to write instead."""
    runtime = tiered.Runtime("virtd")
    with pytest.raises(tiered.ConfigError) as exc_info:
        runtime.add(_as_any(Storage))
    msg = str(exc_info.value)
    assert "got the class Storage, not an instance" in msg
    assert "write runtime.add(Storage())" in msg


def test_add_refuses_what_is_not_a_driver() -> None:
    """runtime.add(object()) is refused, showing the value and both ways to declare."""
    runtime = tiered.Runtime("virtd")
    thing = object()
    with pytest.raises(tiered.ConfigError) as exc_info:
        runtime.add(_as_any(thing))
    msg = str(exc_info.value)
    assert f"got {thing!r}, which is not a tiered.Driver" in msg
    assert "subclass tiered.Driver" in msg
    assert "@runtime.driver()" in msg


# -- ConfigError at declaration: options, both ways of declaring --------------


@pytest.mark.parametrize("declare", DECLARERS)
@pytest.mark.parametrize(
    "tier",
    [
        pytest.param(-1, id="negative"),
        pytest.param(1.5, id="float"),
        pytest.param(True, id="bool"),
        pytest.param("1", id="str"),
    ],
)
def test_invalid_tier_is_refused(declare: Callable[..., None], tier: object) -> None:
    """A tier that is not an integer >= 0 is refused where it is declared."""
    runtime = tiered.Runtime("virtd")
    with pytest.raises(tiered.ConfigError) as exc_info:
        declare(runtime, tier=tier)
    msg = str(exc_info.value)
    assert f"driver 'probe' has tier={tier!r}" in msg
    assert "a tier is an integer >= 0" in msg
    assert "or None to infer it" in msg
    assert runtime.drivers == ()


@pytest.mark.parametrize("declare", DECLARERS)
@pytest.mark.parametrize("option", ["start_timeout", "stop_timeout"])
@pytest.mark.parametrize(
    "value",
    [
        pytest.param(0, id="zero"),
        pytest.param(-1, id="negative"),
        pytest.param("5", id="str"),
        pytest.param(float("nan"), id="nan"),
        pytest.param(True, id="bool"),
    ],
)
def test_invalid_timeout_is_refused(
    declare: Callable[..., None], option: str, value: object
) -> None:
    """A timeout that is not a number of seconds > 0 is refused where it is declared."""
    runtime = tiered.Runtime("virtd")
    with pytest.raises(tiered.ConfigError) as exc_info:
        declare(runtime, **{option: value})
    msg = str(exc_info.value)
    assert f"driver 'probe' has {option}={value!r}" in msg
    assert "a number of seconds > 0" in msg
    assert "math.inf for no limit" in msg


@pytest.mark.parametrize("declare", DECLARERS)
def test_infinite_timeout_is_accepted(declare: Callable[..., None]) -> None:
    """math.inf is the way to say "no limit" on one driver, and is accepted."""
    runtime = tiered.Runtime("virtd")
    declare(runtime, start_timeout=math.inf, stop_timeout=math.inf)
    planned = runtime.check().drivers["probe"]
    assert planned.start_timeout == math.inf
    assert planned.stop_timeout == math.inf


@pytest.mark.parametrize("declare", DECLARERS)
def test_requires_as_bare_string_is_refused(declare: Callable[..., None]) -> None:
    """requires="secrets" is refused with the tuple to write instead."""
    runtime = tiered.Runtime("virtd")
    with pytest.raises(tiered.ConfigError) as exc_info:
        declare(runtime, requires="secrets")
    msg = str(exc_info.value)
    assert "driver 'probe' has requires='secrets', a string" in msg
    assert "requires=('secrets',)" in msg


@pytest.mark.parametrize("declare", DECLARERS)
def test_requirement_that_is_not_a_driver_is_refused(
    declare: Callable[..., None],
) -> None:
    """requires=(42,) is refused, naming the value and what a requirement may be."""
    runtime = tiered.Runtime("virtd")
    with pytest.raises(tiered.ConfigError) as exc_info:
        declare(runtime, requires=(42,))
    msg = str(exc_info.value)
    assert "driver 'probe' requires 42, which is not a driver" in msg
    assert "its name, the handle @runtime.driver returned, or its Driver class" in msg


@pytest.mark.parametrize("declare", DECLARERS)
def test_non_bool_optional_is_refused(declare: Callable[..., None]) -> None:
    """optional="yes" is refused: it must be True or False."""
    runtime = tiered.Runtime("virtd")
    with pytest.raises(tiered.ConfigError) as exc_info:
        declare(runtime, optional="yes")
    msg = str(exc_info.value)
    assert "driver 'probe' has optional='yes'" in msg
    assert "use True or False" in msg


@pytest.mark.parametrize("declare", DECLARERS)
@pytest.mark.parametrize(
    "name",
    [pytest.param("", id="empty"), pytest.param(" x", id="leading-space")],
)
def test_invalid_name_is_refused(declare: Callable[..., None], name: str) -> None:
    """An empty name or one with surrounding spaces is refused, with a valid example."""
    runtime = tiered.Runtime("virtd")
    with pytest.raises(tiered.ConfigError) as exc_info:
        declare(runtime, name=name)
    msg = str(exc_info.value)
    assert f"driver name {name!r} is not valid" in msg
    assert "non-empty string without surrounding spaces" in msg
    assert "name='storage'" in msg
    assert runtime.drivers == ()


def test_invalid_runtime_name_is_refused() -> None:
    """Runtime(name="") is refused."""
    with pytest.raises(tiered.ConfigError) as exc_info:
        tiered.Runtime("")
    msg = str(exc_info.value)
    assert "Runtime(name='')" in msg
    assert "non-empty string" in msg


@pytest.mark.parametrize("option", ["start_timeout", "stop_timeout"])
@pytest.mark.parametrize("value", [0, -1, float("nan"), True, "90"])
def test_invalid_runtime_timeout_is_refused(option: str, value: object) -> None:
    """Runtime(start_timeout=0) and friends are refused, showing the value."""
    with pytest.raises(tiered.ConfigError) as exc_info:
        tiered.Runtime("virtd", **_as_any({option: value}))
    msg = str(exc_info.value)
    assert f"Runtime({option}={value!r})" in msg
    assert "a number of seconds > 0, or None for no limit" in msg


def test_duplicate_generator_name_is_refused_at_declaration() -> None:
    """A second @runtime.driver with a taken name is refused at once."""
    runtime = tiered.Runtime("virtd")

    @runtime.driver
    async def secrets(ctx: tiered.Context) -> AsyncIterator[str]:
        yield "keys"

    async def other(ctx: tiered.Context) -> AsyncIterator[str]:
        yield "other keys"  # pragma: no cover - never runs

    with pytest.raises(tiered.ConfigError) as exc_info:
        runtime.driver(name="secrets")(other)
    msg = str(exc_info.value)
    assert "runtime 'virtd' already has a driver named 'secrets'" in msg
    assert "give this one another name" in msg
    assert runtime.drivers == ("secrets",)


def test_duplicate_class_name_is_refused_at_add() -> None:
    """Adding a second instance of a Driver class without renaming it is refused."""
    runtime = tiered.Runtime("virtd")
    runtime.add(Storage())
    with pytest.raises(tiered.ConfigError) as exc_info:
        runtime.add(Storage())
    msg = str(exc_info.value)
    assert "runtime 'virtd' already has a driver named 'storage'" in msg
    assert "give this one another name" in msg
    assert runtime.drivers == ("storage",)


def test_class_and_generator_share_one_namespace() -> None:
    """A generator driver may not take the name of a class driver, and back."""
    runtime = tiered.Runtime("virtd")
    runtime.add(Storage())

    async def storage(ctx: tiered.Context) -> AsyncIterator[None]:
        yield None  # pragma: no cover - never runs

    with pytest.raises(tiered.ConfigError) as exc_info:
        runtime.driver(storage)
    assert "already has a driver named 'storage'" in str(exc_info.value)

    @runtime.driver
    async def qemu(ctx: tiered.Context) -> AsyncIterator[None]:
        yield None  # pragma: no cover - never runs

    with pytest.raises(tiered.ConfigError) as exc_info:
        runtime.add(Qemu())
    assert "already has a driver named 'qemu'" in str(exc_info.value)


def test_renamed_instances_of_one_class_are_accepted() -> None:
    """Two instances of one class are fine once each has its own name."""
    runtime = tiered.Runtime("virtd")
    first, second = Storage(), Storage()
    second.name = "storage2"
    assert runtime.add(first) is first
    assert runtime.add(second) is second
    assert runtime.check().tiers == (("storage", "storage2"),)


# -- ConfigError from check() and run(): the plan ------------------------------


def _recording_runtime(name: str = "virtd") -> tuple[tiered.Runtime, list[str]]:
    """A runtime whose tier-0 driver records that its initialize ran."""
    runtime = tiered.Runtime(name)
    started: list[str] = []

    @runtime.driver(tier=0)
    async def secrets(ctx: tiered.Context) -> AsyncIterator[str]:
        started.append(ctx.name)
        yield "keys"

    return runtime, started


def test_unknown_requirement_suggests_close_match() -> None:
    """A requirement that names no driver is reported with the closest name."""
    runtime, started = _recording_runtime()

    @runtime.driver(tier=1, requires=("secret",))
    async def storage(ctx: tiered.Context) -> AsyncIterator[None]:
        yield None  # pragma: no cover - never runs

    with pytest.raises(tiered.ConfigError) as exc_info:
        runtime.check()
    msg = str(exc_info.value)
    assert "storage (tier 1) requires 'secret'" in msg
    assert "not a driver of runtime 'virtd'" in msg
    assert "did you mean 'secrets'?" in msg
    assert "declare it or fix the name" in msg
    assert started == []


def test_unknown_requirement_without_close_match() -> None:
    """A requirement far from every name is reported without a suggestion."""
    runtime, _ = _recording_runtime()

    @runtime.driver(requires=("hypervisor",))
    async def storage(ctx: tiered.Context) -> AsyncIterator[None]:
        yield None  # pragma: no cover - never runs

    with pytest.raises(tiered.ConfigError) as exc_info:
        runtime.check()
    msg = str(exc_info.value)
    assert "storage requires 'hypervisor', which is not a driver" in msg
    assert "did you mean" not in msg


def test_requirement_on_higher_tier() -> None:
    """Requiring a driver of a higher tier is refused in the words of docs/design.md."""
    runtime = tiered.Runtime("virtd")

    @runtime.driver(tier=1, requires=("qemu",))
    async def storage(ctx: tiered.Context) -> AsyncIterator[None]:
        yield None  # pragma: no cover - never runs

    @runtime.driver(tier=2)
    async def qemu(ctx: tiered.Context) -> AsyncIterator[None]:
        yield None  # pragma: no cover - never runs

    with pytest.raises(tiered.ConfigError) as exc_info:
        runtime.check()
    msg = str(exc_info.value)
    assert (
        "storage (tier 1) requires qemu (tier 2): a driver may only require "
        "drivers of lower tiers" in msg
    )
    assert "put 'qemu' in a tier below 1" in msg
    assert "raise 'storage' above tier 2" in msg


def test_requirement_on_same_tier() -> None:
    """Requiring a driver of the same tier is refused: tiers start concurrently."""
    runtime = tiered.Runtime("virtd")

    class Network(tiered.Driver):
        tier = 0

        async def initialize(self, ctx: tiered.Context) -> None:
            pass  # pragma: no cover - never runs

    class Firewall(tiered.Driver):
        tier = 0
        requires = (Network,)

        async def initialize(self, ctx: tiered.Context) -> None:
            pass  # pragma: no cover - never runs

    runtime.add(Network())
    runtime.add(Firewall())
    with pytest.raises(tiered.ConfigError) as exc_info:
        runtime.check()
    msg = str(exc_info.value)
    assert "firewall (tier 0) requires network (tier 0)" in msg
    assert "a driver may only require drivers of lower tiers" in msg
    assert "raise 'firewall' above tier 0" in msg


def test_cycle_reports_whole_path() -> None:
    """A cycle among inferred tiers is reported with its whole path a -> b -> c -> a."""
    runtime, started = _recording_runtime()

    @runtime.driver(requires=("b",))
    async def a(ctx: tiered.Context) -> AsyncIterator[None]:
        yield None  # pragma: no cover - never runs

    @runtime.driver(requires=("c",))
    async def b(ctx: tiered.Context) -> AsyncIterator[None]:
        yield None  # pragma: no cover - never runs

    @runtime.driver(requires=("a", "secrets"))
    async def c(ctx: tiered.Context) -> AsyncIterator[None]:
        yield None  # pragma: no cover - never runs

    with pytest.raises(tiered.ConfigError) as exc_info:
        runtime.check()
    msg = str(exc_info.value)
    assert msg.startswith(
        "runtime 'virtd': requirements form a cycle: a -> b -> c -> a;"
    )
    assert "drop one of these requirements" in msg
    # one cycle, one problem: the drivers of the cycle are not reported again
    assert msg.count("cycle") == 1
    assert started == []


def test_cycle_through_class_handles() -> None:
    """A cycle declared with Driver classes is reported with driver names."""
    runtime = tiered.Runtime("virtd")

    class Left(tiered.Driver):
        async def initialize(self, ctx: tiered.Context) -> None:
            pass  # pragma: no cover - never runs

    class Right(tiered.Driver):
        requires = (Left,)

        async def initialize(self, ctx: tiered.Context) -> None:
            pass  # pragma: no cover - never runs

    Left.requires = (Right,)
    runtime.add(Left())
    runtime.add(Right())
    with pytest.raises(tiered.ConfigError) as exc_info:
        runtime.check()
    assert "requirements form a cycle: left -> right -> left" in str(exc_info.value)


def test_self_requirement_with_explicit_tier() -> None:
    """A driver that requires itself is told to drop itself from requires."""
    runtime = tiered.Runtime("virtd")

    @runtime.driver(tier=1, requires=("storage",))
    async def storage(ctx: tiered.Context) -> AsyncIterator[None]:
        yield None  # pragma: no cover - never runs

    with pytest.raises(tiered.ConfigError) as exc_info:
        runtime.check()
    msg = str(exc_info.value)
    assert "storage (tier 1) requires itself" in msg
    assert "remove 'storage' from its requires" in msg
    # no tier can fix it, so none is suggested
    assert "above tier" not in msg


def test_self_requirement_with_inferred_tier() -> None:
    """A self-requirement under an inferred tier is reported as such, not as a cycle."""
    runtime = tiered.Runtime("virtd")

    @runtime.driver(requires=("storage",))
    async def storage(ctx: tiered.Context) -> AsyncIterator[None]:
        yield None  # pragma: no cover - never runs

    with pytest.raises(tiered.ConfigError) as exc_info:
        runtime.check()
    msg = str(exc_info.value)
    assert "storage requires itself" in msg
    assert "remove 'storage' from its requires" in msg


def test_class_requirement_without_instance() -> None:
    """Requiring a Driver class that was never added says to add an instance."""
    runtime = tiered.Runtime("virtd")

    @runtime.driver(requires=(Storage,))
    async def qemu(ctx: tiered.Context) -> AsyncIterator[None]:
        yield None  # pragma: no cover - never runs

    with pytest.raises(tiered.ConfigError) as exc_info:
        runtime.check()
    msg = str(exc_info.value)
    assert "qemu requires the class Storage, but no instance of it was added" in msg
    assert "call runtime.add(Storage())" in msg


def test_class_requirement_with_two_instances() -> None:
    """Requiring a class with two instances names both and says to pick one by name."""
    runtime = tiered.Runtime("virtd")
    runtime.add(Storage())
    backup = Storage()
    backup.name = "backup"
    runtime.add(backup)

    @runtime.driver(tier=3, requires=(Storage,))
    async def qemu(ctx: tiered.Context) -> AsyncIterator[None]:
        yield None  # pragma: no cover - never runs

    with pytest.raises(tiered.ConfigError) as exc_info:
        runtime.check()
    msg = str(exc_info.value)
    assert "qemu (tier 3) requires the class Storage" in msg
    assert "2 instances (storage, backup)" in msg
    assert "require one by name" in msg


def test_handle_from_another_runtime() -> None:
    """A handle of another runtime's driver is refused, naming both runtimes."""
    other = tiered.Runtime("other")

    @other.driver
    async def secrets(ctx: tiered.Context) -> AsyncIterator[str]:
        yield "keys"  # pragma: no cover - never runs

    runtime = tiered.Runtime("virtd")

    @runtime.driver(name="secrets")
    async def local_secrets(ctx: tiered.Context) -> AsyncIterator[str]:
        yield "keys"  # pragma: no cover - never runs

    @runtime.driver(requires=(secrets,))
    async def storage(ctx: tiered.Context) -> AsyncIterator[None]:
        yield None  # pragma: no cover - never runs

    with pytest.raises(tiered.ConfigError) as exc_info:
        runtime.check()
    msg = str(exc_info.value)
    assert "storage requires <tiered driver 'secrets' of runtime 'other'>" in msg
    assert "a driver of another runtime" in msg
    assert "require drivers of runtime 'virtd' only" in msg


def test_several_problems_in_one_message() -> None:
    """Every plan problem is reported at once, one per line, with a count."""
    runtime, _ = _recording_runtime()

    @runtime.driver(tier=1, requires=("secret",))
    async def storage(ctx: tiered.Context) -> AsyncIterator[None]:
        yield None  # pragma: no cover - never runs

    @runtime.driver(tier=1, requires=("qemu",))
    async def network(ctx: tiered.Context) -> AsyncIterator[None]:
        yield None  # pragma: no cover - never runs

    @runtime.driver(tier=2, requires=(Qemu,))
    async def qemu(ctx: tiered.Context) -> AsyncIterator[None]:
        yield None  # pragma: no cover - never runs

    with pytest.raises(tiered.ConfigError) as exc_info:
        runtime.check()
    lines = str(exc_info.value).splitlines()
    assert lines[0] == "runtime 'virtd' has 3 problems:"
    assert len(lines) == 4
    problems = "\n".join(lines[1:])
    assert all(line.startswith("  - ") for line in lines[1:])
    assert "storage (tier 1) requires 'secret'" in problems
    assert "did you mean 'secrets'?" in problems
    assert "qemu (tier 2) requires the class Qemu" in problems
    assert "network (tier 1) requires qemu (tier 2)" in problems


def _bad_unknown(runtime: tiered.Runtime) -> None:
    @runtime.driver(tier=1, requires=("secret",))
    async def storage(ctx: tiered.Context) -> AsyncIterator[None]:
        yield None  # pragma: no cover - never runs


def _bad_higher_tier(runtime: tiered.Runtime) -> None:
    @runtime.driver(tier=1, requires=("qemu",))
    async def storage(ctx: tiered.Context) -> AsyncIterator[None]:
        yield None  # pragma: no cover - never runs

    @runtime.driver(tier=2)
    async def qemu(ctx: tiered.Context) -> AsyncIterator[None]:
        yield None  # pragma: no cover - never runs


def _bad_cycle(runtime: tiered.Runtime) -> None:
    @runtime.driver(requires=("b",))
    async def a(ctx: tiered.Context) -> AsyncIterator[None]:
        yield None  # pragma: no cover - never runs

    @runtime.driver(requires=("a",))
    async def b(ctx: tiered.Context) -> AsyncIterator[None]:
        yield None  # pragma: no cover - never runs


def _bad_missing_class(runtime: tiered.Runtime) -> None:
    @runtime.driver(requires=(Storage,))
    async def qemu(ctx: tiered.Context) -> AsyncIterator[None]:
        yield None  # pragma: no cover - never runs


BAD_PLANS = [
    pytest.param(_bad_unknown, "requires 'secret'", id="unknown-requirement"),
    pytest.param(_bad_higher_tier, "requires qemu (tier 2)", id="higher-tier"),
    pytest.param(_bad_cycle, "a -> b -> a", id="cycle"),
    pytest.param(_bad_missing_class, "requires the class Storage", id="class"),
]


@pytest.mark.parametrize(("make_bad", "expected"), BAD_PLANS)
def test_check_raises_before_anything_starts(
    make_bad: Callable[[tiered.Runtime], None], expected: str
) -> None:
    """runtime.check() raises ConfigError on a bad plan and runs no hook."""
    runtime, started = _recording_runtime()
    make_bad(runtime)
    with pytest.raises(tiered.ConfigError) as exc_info:
        runtime.check()
    assert expected in str(exc_info.value)
    assert started == []


@pytest.mark.anyio
@pytest.mark.parametrize(("make_bad", "expected"), BAD_PLANS)
async def test_run_raises_before_anything_starts(
    anyio_backend: Backend, make_bad: Callable[[tiered.Runtime], None], expected: str
) -> None:
    """`async with runtime.run()` raises ConfigError on a bad plan before tier 0 starts."""
    runtime, started = _recording_runtime()
    make_bad(runtime)
    with pytest.raises(tiered.ConfigError) as exc_info:
        async with runtime.run():
            pytest.fail("the body of a run with a bad plan ran")
    assert expected in str(exc_info.value)
    assert started == []


@pytest.mark.anyio
async def test_failed_check_leaves_runtime_open_to_the_fix(
    anyio_backend: Backend,
) -> None:
    """After a ConfigError from run(), the missing driver can still be declared."""
    runtime, started = _recording_runtime()

    @runtime.driver(tier=2, requires=("qemu",))
    async def guests(ctx: tiered.Context) -> AsyncIterator[str]:
        yield "guests"

    with pytest.raises(tiered.ConfigError):
        runtime.run()

    @runtime.driver(tier=1)
    async def qemu(ctx: tiered.Context) -> AsyncIterator[str]:
        yield "qemu"

    async with runtime.run() as run:
        assert run.get(guests) == "guests"
    assert started == ["secrets"]


# -- tier inference and the shape of a plan -------------------------------------


def test_inferred_tier_is_one_above_highest_requirement() -> None:
    """tier=None is one above the highest tier required, 0 when nothing is required."""
    runtime = tiered.Runtime("virtd")

    @runtime.driver
    async def secrets(ctx: tiered.Context) -> AsyncIterator[None]:
        yield None  # pragma: no cover - never runs

    @runtime.driver(tier=2)
    async def network(ctx: tiered.Context) -> AsyncIterator[None]:
        yield None  # pragma: no cover - never runs

    @runtime.driver(requires=(secrets, network))
    async def storage(ctx: tiered.Context) -> AsyncIterator[None]:
        yield None  # pragma: no cover - never runs

    plan = runtime.check()
    assert plan.drivers["secrets"].tier == 0
    assert plan.drivers["secrets"].inferred
    assert plan.drivers["network"].tier == 2
    assert not plan.drivers["network"].inferred
    assert plan.drivers["storage"].tier == 3
    assert plan.drivers["storage"].inferred
    assert plan.drivers["storage"].requires == ("secrets", "network")


def test_mixed_tiers_keep_empty_tiers() -> None:
    """plan.tiers is a tuple of tuples in start order; tiers nobody uses stay as ()."""
    runtime = tiered.Runtime("virtd")

    class Secrets(tiered.Driver):
        async def initialize(self, ctx: tiered.Context) -> None:
            pass  # pragma: no cover - never runs

    @runtime.driver(tier=3, requires=(Secrets,))
    async def storage(ctx: tiered.Context) -> AsyncIterator[None]:
        yield None  # pragma: no cover - never runs

    @runtime.driver(requires=(storage,))
    async def qemu(ctx: tiered.Context) -> AsyncIterator[None]:
        yield None  # pragma: no cover - never runs

    @runtime.driver(tier=0)
    async def network(ctx: tiered.Context) -> AsyncIterator[None]:
        yield None  # pragma: no cover - never runs

    runtime.add(Secrets())
    plan = runtime.check()
    assert plan.tiers == (("network", "secrets"), (), (), ("storage",), ("qemu",))
    assert type(plan.tiers) is tuple
    assert all(type(tier) is tuple for tier in plan.tiers)
    assert plan.drivers["qemu"].tier == 4


def test_plan_tiers_keep_declaration_order_within_a_tier() -> None:
    """Within a tier, plan.tiers lists drivers in declaration order."""
    runtime = tiered.Runtime("virtd")
    for name in ("zeta", "alpha", "mid"):
        _declare_named(runtime, name)
    assert runtime.check().tiers == (("zeta", "alpha", "mid"),)


def _declare_named(runtime: tiered.Runtime, name: str, **options: Any) -> None:
    async def fn(ctx: tiered.Context) -> AsyncIterator[None]:
        yield None  # pragma: no cover - never runs

    runtime.driver(name=name, **options)(fn)


def test_empty_runtime_has_empty_plan() -> None:
    """A runtime without drivers checks to a plan without tiers."""
    plan = tiered.Runtime("virtd").check()
    assert plan.tiers == ()
    assert dict(plan.drivers) == {}


def test_long_inferred_chain_does_not_recurse() -> None:
    """A 5,000-long chain of inferred tiers is planned without hitting the recursion limit."""
    runtime = tiered.Runtime("virtd")
    length = 5_000
    # declared from the top down, so inference has to walk the whole chain
    for i in reversed(range(length)):
        requires = (f"d{i - 1}",) if i else ()
        _declare_named(runtime, f"d{i}", requires=requires)
    plan = runtime.check()
    assert len(plan.tiers) == length
    assert plan.tiers[0] == ("d0",)
    assert plan.tiers[-1] == (f"d{length - 1}",)
    assert plan.drivers[f"d{length - 1}"].tier == length - 1


def test_long_cycle_is_reported_without_recursion() -> None:
    """A 5,000-long cycle is reported with its whole path, iteratively."""
    runtime = tiered.Runtime("virtd")
    length = 5_000
    for i in range(length):
        _declare_named(runtime, f"d{i}", requires=(f"d{(i + 1) % length}",))
    with pytest.raises(tiered.ConfigError) as exc_info:
        runtime.check()
    path = " -> ".join([*(f"d{i}" for i in range(length)), "d0"])
    assert f"requirements form a cycle: {path};" in str(exc_info.value)


# -- DependencyError -------------------------------------------------------------


@pytest.mark.anyio
async def test_ctx_get_by_name_handle_and_class(anyio_backend: Backend) -> None:
    """ctx.get() of a declared requirement returns its value by name, handle or class."""
    runtime = tiered.Runtime("virtd")
    seen: dict[str, object] = {}

    @runtime.driver
    async def secrets(ctx: tiered.Context) -> AsyncIterator[str]:
        yield "keys"

    class Network(tiered.Driver):
        async def initialize(self, ctx: tiered.Context) -> None:
            pass

    network = runtime.add(Network())

    class Pools(tiered.Driver):
        requires = ("secrets", Network)

        async def initialize(self, ctx: tiered.Context) -> None:
            seen["by name"] = ctx.get("secrets")
            seen["by handle"] = ctx.get(secrets)
            seen["by class"] = ctx.get(Network)
            seen["by instance"] = ctx.get(network)
            seen["network by name"] = ctx.get("network")

    @runtime.driver(requires=(secrets, Pools))
    async def qemu(ctx: tiered.Context) -> AsyncIterator[None]:
        seen["pools by class"] = ctx.get(Pools)
        seen["secrets in qemu"] = ctx.get(secrets)
        yield None

    pools = runtime.add(Pools())
    async with runtime.run():
        pass
    assert seen == {
        "by name": "keys",
        "by handle": "keys",
        "by class": network,
        "by instance": network,
        "network by name": network,
        "pools by class": pools,
        "secrets in qemu": "keys",
    }


async def _undeclared_get(dep_of: Callable[[dict[str, Any]], Any]) -> str:
    """Run a runtime whose 'storage' asks for a driver it did not require."""
    runtime = tiered.Runtime("virtd")
    messages: list[str] = []

    @runtime.driver
    async def secrets(ctx: tiered.Context) -> AsyncIterator[str]:
        yield "keys"

    qemu = runtime.add(Qemu())
    deps: dict[str, Any] = {"secrets": secrets, "qemu": qemu}

    @runtime.driver(tier=1, requires=(secrets,))
    async def storage(ctx: tiered.Context) -> AsyncIterator[None]:
        with pytest.raises(tiered.DependencyError) as exc_info:
            ctx.get(dep_of(deps))
        messages.append(str(exc_info.value))
        yield None

    async with runtime.run():
        pass
    (msg,) = messages
    return msg


@pytest.mark.anyio
async def test_ctx_get_undeclared_by_name(anyio_backend: Backend) -> None:
    """ctx.get("qemu") without requiring it says to add it to requires."""
    msg = await _undeclared_get(lambda deps: "qemu")
    assert "storage (tier 1) asked for 'qemu', which is not in its requires" in msg
    assert "requires=('secrets', 'qemu'" in msg


@pytest.mark.anyio
async def test_ctx_get_undeclared_by_handle(anyio_backend: Backend) -> None:
    """ctx.get(handle) of a driver not in requires says to add it to requires."""
    runtime = tiered.Runtime("virtd")
    messages: list[str] = []

    @runtime.driver
    async def secrets(ctx: tiered.Context) -> AsyncIterator[str]:
        yield "keys"

    @runtime.driver
    async def network(ctx: tiered.Context) -> AsyncIterator[str]:
        yield "net"

    @runtime.driver(tier=1, requires=(network,))
    async def storage(ctx: tiered.Context) -> AsyncIterator[None]:
        with pytest.raises(tiered.DependencyError) as exc_info:
            ctx.get(secrets)
        messages.append(str(exc_info.value))
        yield None

    async with runtime.run():
        pass
    (msg,) = messages
    assert "storage (tier 1) asked for 'secrets', which is not in its requires" in msg
    assert "requires=('network', 'secrets'" in msg


@pytest.mark.anyio
async def test_ctx_get_undeclared_by_instance(anyio_backend: Backend) -> None:
    """ctx.get(driver_instance) not in requires says to add it to requires."""
    msg = await _undeclared_get(lambda deps: deps["qemu"])
    assert "storage (tier 1) asked for 'qemu', which is not in its requires" in msg


@pytest.mark.anyio
async def test_ctx_get_undeclared_by_class(anyio_backend: Backend) -> None:
    """ctx.get(Qemu) of a driver in the runtime but not in requires says to require it."""
    msg = await _undeclared_get(lambda deps: Qemu)
    assert "storage (tier 1)" in msg
    assert "'qemu', which is not in its requires" in msg
    assert "requires=('secrets', 'qemu'" in msg


@pytest.mark.anyio
async def test_ctx_get_handle_of_another_runtime(anyio_backend: Backend) -> None:
    """ctx.get() of another runtime's handle names both runtime and driver."""
    other = tiered.Runtime("other")

    @other.driver
    async def secrets(ctx: tiered.Context) -> AsyncIterator[str]:
        yield "keys"  # pragma: no cover - never runs

    msg = await _undeclared_get(lambda deps: secrets)
    assert "storage (tier 1) ctx.get()" in msg
    assert "<tiered driver 'secrets' of runtime 'other'>" in msg
    assert "another runtime than 'virtd'" in msg


@pytest.mark.anyio
async def test_ctx_get_of_what_is_not_a_driver(anyio_backend: Backend) -> None:
    """ctx.get(42) says what a driver reference may be."""
    msg = await _undeclared_get(lambda deps: 42)
    assert "storage (tier 1) ctx.get(): 42 does not name a driver" in msg
    assert "a driver name, a handle from @runtime.driver, or a Driver class" in msg


@pytest.mark.anyio
async def test_undeclared_get_fails_startup_with_dependency_error(
    anyio_backend: Backend,
) -> None:
    """An uncaught ctx.get() of an undeclared driver fails start-up, noted with the driver."""
    runtime = tiered.Runtime("virtd")

    @runtime.driver
    async def secrets(ctx: tiered.Context) -> AsyncIterator[str]:
        yield "keys"

    @runtime.driver(tier=1)
    async def storage(ctx: tiered.Context) -> AsyncIterator[object]:
        yield ctx.get(secrets)

    with pytest.raises(tiered.StartupError) as exc_info:
        async with runtime.run():
            pytest.fail("the run started")
    (exc,) = exc_info.value.exceptions
    assert isinstance(exc, tiered.DependencyError)
    assert "storage (tier 1) asked for 'secrets'" in str(exc)
    assert "driver 'storage' (tier 1), phase initialize" in exc.__notes__


def _run_get_runtime() -> tuple[tiered.Runtime, tiered.DriverHandle[str]]:
    runtime = tiered.Runtime("virtd")

    @runtime.driver
    async def secrets(ctx: tiered.Context) -> AsyncIterator[str]:
        yield "keys"

    @runtime.driver(optional=True)
    async def gpu(ctx: tiered.Context) -> AsyncIterator[None]:
        if ctx.tier >= 0:  # always: there is no GPU
            raise tiered.Skip("no GPU on this host")
        yield None  # pragma: no cover - never runs

    runtime.add(Storage())
    return runtime, secrets


@pytest.mark.anyio
async def test_run_get_by_name_handle_and_class(anyio_backend: Backend) -> None:
    """run.get() returns a running driver's value by name, handle or class."""
    runtime, secrets = _run_get_runtime()
    async with runtime.run() as run:
        assert run.get("secrets") == "keys"
        assert run.get(secrets) == "keys"
        storage = run.get(Storage)
        assert isinstance(storage, Storage)
        assert run.get("storage") is storage


@pytest.mark.anyio
async def test_run_get_unknown_name_suggests(anyio_backend: Backend) -> None:
    """run.get() of an unknown name raises DependencyError with the closest name."""
    runtime, _ = _run_get_runtime()
    async with runtime.run() as run:
        with pytest.raises(tiered.DependencyError) as exc_info:
            run.get("secret")
        msg = str(exc_info.value)
        assert "run.get('secret'): no driver of that name in runtime 'virtd'" in msg
        assert "did you mean 'secrets'?" in msg
        with pytest.raises(tiered.DependencyError) as exc_info:
            run.get(Qemu)
        assert "no driver of class Qemu in runtime 'virtd'" in str(exc_info.value)


@pytest.mark.anyio
async def test_run_get_of_skipped_driver(anyio_backend: Backend) -> None:
    """run.get() of a skipped driver raises DependencyError saying it skipped, and why."""
    runtime, _ = _run_get_runtime()
    async with runtime.run() as run:
        with pytest.raises(tiered.DependencyError) as exc_info:
            run.get("gpu")
    assert str(exc_info.value) == (
        "run.get('gpu'): gpu (tier 0) is skipped (no GPU on this host)"
    )


# -- UsageError --------------------------------------------------------------------


@pytest.mark.anyio
async def test_entering_a_run_twice(anyio_backend: Backend) -> None:
    """A Run is entered once: again inside it, or after it, raises UsageError."""
    runtime, _ = _run_get_runtime()
    run = runtime.run()
    async with run:
        with pytest.raises(tiered.UsageError) as exc_info:
            async with run:
                pytest.fail("entered a run twice")  # pragma: no cover
        assert run.get("secrets") == "keys"  # the first entry is unharmed
    msg = str(exc_info.value)
    assert "this run of 'virtd' was already entered" in msg
    assert "call runtime.run() again for a new run" in msg
    with pytest.raises(tiered.UsageError) as exc_info:
        async with run:
            pytest.fail("entered a finished run")  # pragma: no cover
    assert "already entered" in str(exc_info.value)


@pytest.mark.anyio
async def test_running_a_runtime_while_it_runs(anyio_backend: Backend) -> None:
    """Two nested `async with runtime.run()` raise UsageError; the first run goes on."""
    runtime, started = _recording_runtime()
    async with runtime.run() as run:
        with pytest.raises(tiered.UsageError) as exc_info:
            async with runtime.run():
                pytest.fail("a runtime ran twice at once")  # pragma: no cover
        assert run.get("secrets") == "keys"
    msg = str(exc_info.value)
    assert "runtime 'virtd' is already running" in msg
    assert "leave the first `async with runtime.run()` before entering another" in msg
    assert started == ["secrets"]
    # the refused run did not keep the runtime claimed
    async with runtime.run():
        pass
    assert started == ["secrets", "secrets"]


@pytest.mark.anyio
async def test_two_concurrent_runs_of_one_runtime(anyio_backend: Backend) -> None:
    """A run entered from another task while one is up raises UsageError."""
    runtime, _ = _recording_runtime()
    errors: list[tiered.UsageError] = []

    async def second() -> None:
        try:
            async with runtime.run():
                pytest.fail("a runtime ran twice at once")  # pragma: no cover
        except tiered.UsageError as exc:
            errors.append(exc)

    async with runtime.run(), anyio.create_task_group() as tg:
        tg.start_soon(second)
    (exc,) = errors
    assert "runtime 'virtd' is already running" in str(exc)


@pytest.mark.anyio
async def test_declaring_after_run(anyio_backend: Backend) -> None:
    """A runtime that has run is immutable: declaring a driver raises UsageError."""
    runtime, _ = _recording_runtime()
    async with runtime.run():
        pass

    async def late(ctx: tiered.Context) -> AsyncIterator[None]:
        yield None  # pragma: no cover - never runs

    with pytest.raises(tiered.UsageError) as exc_info:
        runtime.driver(late)
    msg = str(exc_info.value)
    assert "runtime 'virtd' has already run, so it is immutable" in msg
    assert "declare driver 'late' before the first runtime.run()" in msg
    with pytest.raises(tiered.UsageError) as exc_info:
        runtime.add(Storage())
    assert "declare driver 'storage' before the first runtime.run()" in str(
        exc_info.value
    )
    assert runtime.drivers == ("secrets",)


@pytest.mark.anyio
async def test_declaring_while_running(anyio_backend: Backend) -> None:
    """Declaring a driver while the runtime runs raises UsageError too."""
    runtime, _ = _recording_runtime()
    async with runtime.run():
        with pytest.raises(tiered.UsageError) as exc_info:
            runtime.add(Storage())
    assert "has already run, so it is immutable" in str(exc_info.value)


@pytest.mark.anyio
async def test_run_get_after_stop(anyio_backend: Backend) -> None:
    """run.get() after the run stopped raises UsageError saying where it works."""
    runtime, _ = _run_get_runtime()
    async with runtime.run() as run:
        pass
    with pytest.raises(tiered.UsageError) as exc_info:
        run.get("secrets")
    msg = str(exc_info.value)
    assert "run.get('secrets'): the run of 'virtd' is not up" in msg
    assert "inside `async with runtime.run() as run:`" in msg


@pytest.mark.anyio
async def test_run_get_before_enter(anyio_backend: Backend) -> None:
    """run.get() on a run not yet entered raises UsageError."""
    runtime, _ = _run_get_runtime()
    run = runtime.run()
    with pytest.raises(tiered.UsageError) as exc_info:
        run.get("secrets")
    assert "the run of 'virtd' is not up" in str(exc_info.value)


@pytest.mark.anyio
async def test_run_reload_after_stop(anyio_backend: Backend) -> None:
    """run.reload() after the run stopped raises UsageError saying where it works."""
    runtime, _ = _run_get_runtime()
    async with runtime.run() as run:
        assert await run.reload() == ()
    with pytest.raises(tiered.UsageError) as exc_info:
        await run.reload()
    msg = str(exc_info.value)
    assert "run.reload(): the run of 'virtd' is not up" in msg
    assert "inside `async with runtime.run() as run:`" in msg


class _SpawnsInStop(tiered.Driver):
    name = "spawner"
    tier = 1

    async def initialize(self, ctx: tiered.Context) -> None:
        pass

    async def stop(self, ctx: tiered.Context) -> None:
        ctx.start_soon(anyio.sleep, 1)


def _spawn_in_stop_class(runtime: tiered.Runtime) -> None:
    runtime.add(_SpawnsInStop())


def _spawn_in_stop_generator(runtime: tiered.Runtime) -> None:
    @runtime.driver(name="spawner", tier=1)
    async def spawner(ctx: tiered.Context) -> AsyncIterator[None]:
        yield None
        ctx.start_soon(anyio.sleep, 1)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "declare",
    [
        pytest.param(_spawn_in_stop_class, id="class"),
        pytest.param(_spawn_in_stop_generator, id="generator"),
    ],
)
async def test_start_soon_from_stop(
    anyio_backend: Backend, declare: Callable[[tiered.Runtime], None]
) -> None:
    """ctx.start_soon() from stop raises UsageError; the run ends in ShutdownError."""
    runtime, _ = _recording_runtime()
    declare(runtime)
    with pytest.raises(tiered.ShutdownError) as exc_info:
        async with runtime.run():
            pass
    (exc,) = exc_info.value.exceptions
    assert isinstance(exc, tiered.UsageError)
    msg = str(exc)
    assert "spawner (tier 1) called ctx.start_soon()" in msg
    assert "can be started from initialize, autostart and reload" in msg
    assert "driver 'spawner' (tier 1), phase stop" in exc.__notes__


@pytest.mark.anyio
async def test_generator_that_never_yields(anyio_backend: Backend) -> None:
    """A driver function that returns without yielding fails start-up with UsageError."""
    runtime, started = _recording_runtime()
    stopped: list[str] = []

    @runtime.driver(tier=1)
    async def storage(ctx: tiered.Context) -> AsyncIterator[None]:
        if ctx.tier < 0:  # never: this driver forgets to yield
            yield None  # pragma: no cover
        stopped.append("never reached a yield")

    with pytest.raises(tiered.StartupError) as exc_info:
        async with runtime.run():
            pytest.fail("the run started")  # pragma: no cover
    assert "storage (tier 1)" in str(exc_info.value)
    (exc,) = exc_info.value.exceptions
    assert isinstance(exc, tiered.UsageError)
    msg = str(exc)
    assert "driver 'storage' (tier 1) returned without yielding" in msg
    assert "must yield its value exactly once" in msg
    assert "driver 'storage' (tier 1), phase initialize" in exc.__notes__
    assert started == ["secrets"]


@pytest.mark.anyio
async def test_generator_that_yields_twice(anyio_backend: Backend) -> None:
    """A driver function that yields a second time fails its stop with UsageError."""
    runtime, _ = _recording_runtime()
    after_second_yield: list[bool] = []

    @runtime.driver(tier=1)
    async def storage(ctx: tiered.Context) -> AsyncIterator[str]:
        yield "first"
        try:
            yield "second"
        finally:
            after_second_yield.append(True)  # closed, not left suspended

    with pytest.raises(tiered.ShutdownError) as exc_info:
        async with runtime.run() as run:
            assert run.get(storage) == "first"
    assert "storage" in str(exc_info.value)
    (exc,) = exc_info.value.exceptions
    assert isinstance(exc, tiered.UsageError)
    msg = str(exc)
    assert "driver 'storage' (tier 1) yielded a second time" in msg
    assert "must yield exactly once" in msg
    assert "driver 'storage' (tier 1), phase stop" in exc.__notes__
    assert after_second_yield == [True]


# -- a runtime runs many times ---------------------------------------------------


@pytest.mark.anyio
async def test_runtime_runs_many_times(anyio_backend: Backend) -> None:
    """A runtime runs three times in a row, each run starting generator drivers fresh."""
    runtime = tiered.Runtime("virtd")
    opened: list[object] = []
    closed: list[object] = []
    seen_by_storage: list[object] = []

    @runtime.driver
    async def secrets(ctx: tiered.Context) -> AsyncIterator[object]:
        store = object()
        opened.append(store)
        yield store
        closed.append(store)

    class Pools(tiered.Driver):
        requires = (secrets,)

        async def initialize(self, ctx: tiered.Context) -> None:
            seen_by_storage.append(ctx.get(secrets))

    runtime.add(Pools())
    runs: list[tiered.Run] = []
    for n in range(3):
        run = runtime.run()
        runs.append(run)
        async with run:
            assert run.get(secrets) is opened[n]
            assert closed == opened[:n]
    assert len(opened) == 3
    assert len({id(store) for store in opened}) == 3
    assert closed == opened
    assert seen_by_storage == opened
    assert len({id(run) for run in runs}) == 3
