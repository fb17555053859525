"""Transactional start-up, optional drivers, Skip, and failing stops."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import pytest

import tiered

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

pytestmark = pytest.mark.anyio


class Recorder:
    """Events in the order they happened, shared by every driver of a test."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def __call__(self, what: str, name: str) -> None:
        self.events.append((what, name))

    def names(self, what: str) -> list[str]:
        return [n for w, n in self.events if w == what]


def make_driver(
    rec: Recorder,
    name: str,
    tier: int,
    *,
    requires: tuple[str, ...] = (),
    fail_in: str | None = None,
    skip_in: str | None = None,
    delay: float = 0.0,
    optional: bool = False,
) -> tiered.Driver:
    """A Driver that records its hooks and fails or skips where told."""

    class Probe(tiered.Driver):
        async def initialize(self, ctx: tiered.Context) -> None:
            await self._hook("initialize")

        async def autostart(self, ctx: tiered.Context) -> None:
            await self._hook("autostart")

        async def stop(self, ctx: tiered.Context) -> None:
            rec("stop", ctx.name)
            if fail_in == "stop":
                raise OSError(f"{name} cannot stop")

        async def _hook(self, phase: str) -> None:
            rec(f"{phase}+", name)
            try:
                await anyio.sleep(delay)
            except BaseException:
                rec(f"{phase}!", name)
                raise
            if fail_in == phase:
                raise RuntimeError(f"{name} broke in {phase}")
            if skip_in == phase:
                raise tiered.Skip("no hardware")
            rec(f"{phase}-", name)

    probe = Probe()
    probe.name, probe.tier = name, tier
    probe.requires, probe.optional = requires, optional
    return probe


def runtime(*drivers: tiered.Driver) -> tiered.Runtime:
    rt = tiered.Runtime("rb")
    for d in drivers:
        rt.add(d)
    return rt


async def test_failure_rolls_back_started_drivers_in_reverse() -> None:
    """A failing tier-2 driver stops tiers 1 then 0, and raises StartupError."""
    rec = Recorder()
    rt = runtime(
        make_driver(rec, "secrets", 0),
        make_driver(rec, "network", 0),
        make_driver(rec, "storage", 1),
        make_driver(rec, "qemu", 2, fail_in="initialize"),
    )
    with pytest.raises(tiered.StartupError) as info:
        async with rt.run():
            pytest.fail("the body must not run")  # pragma: no cover
    stops = rec.names("stop")
    assert stops[0] == "storage"
    assert sorted(stops[1:]) == ["network", "secrets"]
    assert "qemu" not in stops
    [exc] = info.value.exceptions
    assert isinstance(exc, RuntimeError)
    assert exc.__notes__ == ["driver 'qemu' (tier 2), phase initialize"]
    assert "qemu (tier 2)" in str(info.value)


async def test_failure_cancels_siblings_still_starting() -> None:
    """The other drivers of the failing tier are cancelled, not awaited."""
    rec = Recorder()
    rt = runtime(
        make_driver(rec, "slow", 0, delay=60),
        make_driver(rec, "fast_fail", 0, fail_in="initialize"),
    )
    run = rt.run()
    with anyio.fail_after(5), pytest.raises(tiered.StartupError) as info:
        async with run:
            pass  # pragma: no cover
    assert ("initialize!", "slow") in rec.events
    assert rec.names("stop") == []  # slow never finished initialize
    assert len(info.value.exceptions) == 1
    assert run.report.driver("slow").status == "cancelled"


async def test_sibling_that_initialized_is_stopped_exactly_once() -> None:
    """A sibling whose initialize completed is stopped, once, on rollback."""
    rec = Recorder()
    rt = runtime(
        make_driver(rec, "quick", 0),
        make_driver(rec, "late_fail", 0, fail_in="initialize", delay=0.01),
    )
    with pytest.raises(tiered.StartupError):
        async with rt.run():
            pass  # pragma: no cover
    assert rec.names("stop") == ["quick"]
    assert ("autostart+", "quick") not in rec.events


async def test_failure_in_autostart_stops_the_failed_driver_too() -> None:
    """A driver that failed in autostart had initialized, so it is stopped."""
    rec = Recorder()
    rt = runtime(
        make_driver(rec, "base", 0),
        make_driver(rec, "broken", 1, fail_in="autostart"),
    )
    run = rt.run()
    with pytest.raises(tiered.StartupError) as info:
        async with run:
            pass  # pragma: no cover
    assert rec.names("stop") == ["broken", "base"]
    assert info.value.exceptions[0].__notes__ == [
        "driver 'broken' (tier 1), phase autostart"
    ]
    assert run.report.driver("broken").status == "failed"
    assert run.report.driver("base").status == "stopped"


async def test_every_failed_driver_is_in_the_group() -> None:
    """Two drivers failing in the same tier are both reported."""
    rec = Recorder()
    rt = runtime(
        make_driver(rec, "a", 0, fail_in="initialize"),
        make_driver(rec, "b", 0, fail_in="initialize"),
    )
    with pytest.raises(tiered.StartupError) as info:
        async with rt.run():
            pass  # pragma: no cover
    # both raise at the same checkpoint; the first one's failure cancels the
    # other only if it has not finished yet, so either one or both are listed
    notes = {n for e in info.value.exceptions for n in e.__notes__}
    assert notes <= {
        "driver 'a' (tier 0), phase initialize",
        "driver 'b' (tier 0), phase initialize",
    }
    assert notes


async def test_stop_failure_during_rollback_is_in_startup_error() -> None:
    """A stop that fails while rolling back is reported in StartupError too."""
    rec = Recorder()
    rt = runtime(
        make_driver(rec, "leaky", 0, fail_in="stop"),
        make_driver(rec, "other", 0),
        make_driver(rec, "top", 1, fail_in="initialize"),
    )
    with pytest.raises(tiered.StartupError) as info:
        async with rt.run():
            pass  # pragma: no cover
    phases = sorted(n for e in info.value.exceptions for n in e.__notes__)
    assert phases == [
        "driver 'leaky' (tier 0), phase stop",
        "driver 'top' (tier 1), phase initialize",
    ]
    assert sorted(rec.names("stop")) == ["leaky", "other"]


async def test_outside_cancellation_during_startup_rolls_back_and_propagates() -> None:
    """Cancelling start-up from outside stops what started and re-raises the cancel."""
    rec = Recorder()
    rt = runtime(
        make_driver(rec, "base", 0),
        make_driver(rec, "mid", 1, delay=0.001),
        make_driver(rec, "hang", 2, delay=60),
    )
    entered = False
    with anyio.move_on_after(0.2) as scope:
        async with rt.run():
            entered = True  # pragma: no cover
    assert scope.cancelled_caught
    assert not entered
    assert rec.names("stop") == ["mid", "base"]
    assert ("initialize!", "hang") in rec.events


async def test_optional_failure_is_recorded_and_the_run_goes_on() -> None:
    """An optional driver's failure does not stop the start-up."""
    rec = Recorder()
    rt = runtime(
        make_driver(rec, "base", 0),
        make_driver(rec, "extra", 0, fail_in="initialize", optional=True),
        make_driver(rec, "top", 1),
    )
    async with rt.run() as run:
        report = run.report
        assert report.driver("extra").status == "failed"
        assert report.driver("extra").error == "RuntimeError: extra broke in initialize"
        assert report.driver("top").status == "running"
        with pytest.raises(tiered.DependencyError, match="extra"):
            run.get("extra")
    assert sorted(rec.names("stop")) == ["base", "top"]


async def test_optional_failure_in_autostart_stops_it_at_once() -> None:
    """An optional driver failing in autostart is stopped right away, once."""
    rec = Recorder()
    rt = runtime(
        make_driver(rec, "base", 0),
        make_driver(rec, "extra", 1, fail_in="autostart", optional=True),
    )
    async with rt.run() as run:
        assert rec.names("stop") == ["extra"]
        assert run.report.driver("extra").status == "failed"
    assert rec.names("stop") == ["extra", "base"]


async def test_skip_in_initialize_skips_without_stop() -> None:
    """Skip in initialize: status skipped, the reason kept, no stop."""
    rec = Recorder()
    rt = runtime(make_driver(rec, "nodedev", 0, skip_in="initialize"))
    async with rt.run() as run:
        record = run.report.driver("nodedev")
        assert record.status == "skipped"
        assert record.reason == "no hardware"
    assert rec.names("stop") == []


async def test_skip_in_autostart_stops_the_driver() -> None:
    """Skip in autostart: initialize had run, so the driver is stopped, once."""
    rec = Recorder()
    rt = runtime(make_driver(rec, "nodedev", 0, skip_in="autostart"))
    async with rt.run() as run:
        assert run.report.driver("nodedev").status == "skipped"
    assert rec.names("stop") == ["nodedev"]


async def test_optional_dependent_of_skipped_is_skipped() -> None:
    """An optional driver that requires a skipped one is skipped, with the reason."""
    rec = Recorder()
    rt = runtime(
        make_driver(rec, "nodedev", 0, skip_in="initialize"),
        make_driver(rec, "lxc", 1, requires=("nodedev",), optional=True),
    )
    async with rt.run() as run:
        record = run.report.driver("lxc")
        assert record.status == "skipped"
        assert record.reason is not None
        assert "nodedev" in record.reason
    assert ("initialize+", "lxc") not in rec.events


async def test_required_dependent_of_failed_optional_fails_startup() -> None:
    """A required driver that requires a failed optional one fails the start-up."""
    rec = Recorder()
    rt = runtime(
        make_driver(rec, "netfs", 0, fail_in="initialize", optional=True),
        make_driver(rec, "storage", 1, requires=("netfs",)),
    )
    with pytest.raises(tiered.StartupError) as info:
        async with rt.run():
            pass  # pragma: no cover
    [exc] = info.value.exceptions
    assert isinstance(exc, tiered.DependencyError)
    assert (
        "storage (tier 1) cannot start: it requires netfs (tier 0), which failed"
        in str(exc)
    )
    assert "optional=True" in str(exc)


async def test_shutdown_error_after_every_driver_stopped() -> None:
    """A failing stop does not keep others from stopping; ShutdownError at the end."""
    rec = Recorder()
    rt = runtime(
        make_driver(rec, "a", 0),
        make_driver(rec, "b", 1, fail_in="stop"),
        make_driver(rec, "c", 2, fail_in="stop"),
    )
    with pytest.raises(tiered.ShutdownError) as info:
        async with rt.run():
            pass
    assert rec.names("stop") == ["c", "b", "a"]
    notes = [e.__notes__[0] for e in info.value.exceptions]
    assert notes == [
        "driver 'c' (tier 2), phase stop",
        "driver 'b' (tier 1), phase stop",
    ]
    assert isinstance(info.value, tiered.TieredError)


async def test_generator_that_never_yields_fails_with_a_message() -> None:
    """A driver function that returns without yielding fails, saying so."""
    rt = tiered.Runtime()

    @rt.driver
    async def lazy(ctx: tiered.Context) -> AsyncIterator[None]:
        if ctx.name == "never":  # pragma: no cover
            yield

    with pytest.raises(tiered.StartupError) as info:
        async with rt.run():
            pass  # pragma: no cover
    [exc] = info.value.exceptions
    assert isinstance(exc, tiered.UsageError)
    assert "'lazy' (tier 0) returned without yielding" in str(exc)


async def test_generator_that_yields_twice_fails_its_stop() -> None:
    """A driver function that yields twice fails at stop, saying so."""
    rt = tiered.Runtime()

    @rt.driver
    async def chatty(ctx: tiered.Context) -> AsyncIterator[int]:
        yield 1
        yield 2

    with pytest.raises(tiered.ShutdownError) as info:
        async with rt.run():
            pass
    [exc] = info.value.exceptions
    assert isinstance(exc, tiered.UsageError)
    assert "'chatty' (tier 0) yielded a second time" in str(exc)


async def test_startup_error_survives_except_star() -> None:
    """except* on a StartupError keeps the class for the matched part."""
    rec = Recorder()
    rt = runtime(make_driver(rec, "x", 0, fail_in="initialize"))
    caught: list[BaseException] = []
    try:
        async with rt.run():
            pass  # pragma: no cover
    except* RuntimeError as group:
        caught.append(group)
    [matched] = caught
    assert isinstance(matched, tiered.StartupError)


async def test_base_exception_in_a_hook() -> None:
    """SystemExit in an initialize rolls back and comes out as itself."""
    rec = Recorder()
    rt = runtime(make_driver(rec, "base", 0))

    class Exiting(tiered.Driver):
        tier = 1

        async def initialize(self, ctx: tiered.Context) -> None:
            raise SystemExit(3)

    rt.add(Exiting())
    with pytest.raises(SystemExit) as info:
        async with rt.run():
            pass  # pragma: no cover
    assert info.value.code == 3
    assert rec.names("stop") == ["base"]


async def test_shutdown_error_names_only_drivers_that_failed_to_stop() -> None:
    """ShutdownError's message lists the drivers whose stop failed, not earlier failures."""
    rec = Recorder()
    rt = runtime(
        make_driver(rec, "extra", 0, fail_in="initialize", optional=True),
        make_driver(rec, "leaky", 0, fail_in="stop"),
    )
    with pytest.raises(tiered.ShutdownError) as info:
        async with rt.run():
            pass
    assert info.value.message == "runtime 'rb' stopped with errors (leaky)"
