"""Timeouts and extend_timeout, on trio's virtual clock (deterministic, instant).

pytest-trio's ``autojump_clock`` jumps the clock whenever every task sleeps, so
a 90 s timeout takes microseconds and the times in the report are exact.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pytest
import trio

import tiered

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from trio.testing import MockClock

pytestmark = pytest.mark.trio


def sleeper(
    name: str,
    *,
    tier: int = 0,
    init: float = 0.0,
    auto: float | None = None,
    stop: float = 0.0,
    extend_at: float | None = None,
    extend_by: float = 0.0,
    start_timeout: float | None = None,
    stop_timeout: float | None = None,
) -> tiered.Driver:
    """A driver whose hooks sleep as told, on whatever clock runs."""

    class Sleeper(tiered.Driver):
        async def initialize(self, ctx: tiered.Context) -> None:
            if extend_at is not None:
                await trio.sleep(extend_at)
                ctx.extend_timeout(extend_by)
                await trio.sleep(init - extend_at)
            else:
                await trio.sleep(init)

        async def stop(self, ctx: tiered.Context) -> None:
            await trio.sleep(stop)

    if auto is not None:

        async def autostart(self: tiered.Driver, ctx: tiered.Context) -> None:
            await trio.sleep(auto)

        Sleeper.autostart = autostart  # type: ignore[method-assign]
    d = Sleeper()
    d.name, d.tier = name, tier
    d.start_timeout, d.stop_timeout = start_timeout, stop_timeout
    return d


def runtime(*drivers: tiered.Driver, **options: Any) -> tiered.Runtime:
    rt = tiered.Runtime("t", **options)
    for d in drivers:
        rt.add(d)
    return rt


async def test_default_start_timeout_is_90_seconds(autojump_clock: MockClock) -> None:
    """A hanging initialize fails with DriverTimeout after exactly 90 s."""
    rt = runtime(sleeper("hang", init=10_000))
    t0 = trio.current_time()
    with pytest.raises(tiered.StartupError) as info:
        async with rt.run():
            pass  # pragma: no cover
    assert trio.current_time() - t0 == pytest.approx(90.0)
    [exc] = info.value.exceptions
    assert isinstance(exc, tiered.DriverTimeout)
    assert isinstance(exc, TimeoutError)
    assert (
        "hang (tier 0) did not finish initialize within its start_timeout of 90s"
        in str(exc)
    )
    assert exc.__notes__ == ["driver 'hang' (tier 0), phase initialize"]


async def test_start_timeout_covers_initialize_plus_autostart(
    autojump_clock: MockClock,
) -> None:
    """50 s of initialize leave 40 s of a 90 s budget to autostart."""
    run = runtime(sleeper("slow", init=50, auto=50)).run()
    with pytest.raises(tiered.StartupError) as info:
        async with run:
            pass  # pragma: no cover
    [exc] = info.value.exceptions
    assert "did not finish autostart" in str(exc)
    assert run.report.driver("slow").phases["autostart"] == pytest.approx((50.0, 90.0))


async def test_barrier_wait_is_not_charged_to_a_driver(
    autojump_clock: MockClock,
) -> None:
    """Waiting for a slow sibling's initialize does not eat a driver's budget."""
    rt = runtime(
        sleeper("quick", init=1, auto=60),
        sleeper("sibling", init=80),
    )
    async with rt.run() as run:
        record = run.report.driver("quick")
        assert record.phases["autostart"] == pytest.approx((80.0, 140.0))
        assert record.status == "running"


async def test_extend_timeout_gives_at_least_that_much_from_now(
    autojump_clock: MockClock,
) -> None:
    """extend_timeout(30) at t=5 of a 10 s budget lets initialize run to t=35."""
    rt = runtime(
        sleeper("patient", init=34, extend_at=5, extend_by=30, start_timeout=10)
    )
    async with rt.run() as run:
        assert run.report.driver("patient").phases["initialize"] == pytest.approx(
            (0.0, 34.0)
        )


async def test_extend_timeout_runs_out_too(autojump_clock: MockClock) -> None:
    """An extension is a new deadline, not a blank cheque: past it, a timeout."""
    rt = runtime(
        sleeper("greedy", init=40, extend_at=5, extend_by=30, start_timeout=10)
    )
    t0 = trio.current_time()
    with pytest.raises(tiered.StartupError):
        async with rt.run():
            pass  # pragma: no cover
    assert trio.current_time() - t0 == pytest.approx(35.0)


async def test_extend_timeout_never_shortens(autojump_clock: MockClock) -> None:
    """extend_timeout(1) with 10 s left keeps the 10 s."""
    rt = runtime(sleeper("calm", init=9, extend_at=0, extend_by=1, start_timeout=10))
    async with rt.run() as run:
        assert run.report.driver("calm").status == "running"


async def test_extend_carries_into_autostart(autojump_clock: MockClock) -> None:
    """What initialize extended is still there for autostart."""
    rt = runtime(
        sleeper("ext", init=6, extend_at=5, extend_by=30, auto=25, start_timeout=10)
    )
    async with rt.run() as run:
        assert run.report.driver("ext").status == "running"


async def test_stop_timeout_bounds_stop_and_others_still_stop(
    autojump_clock: MockClock,
) -> None:
    """A stop hanging past stop_timeout is a DriverTimeout; lower tiers still stop."""
    rt = runtime(
        sleeper("base", tier=0),
        sleeper("stuck", tier=1, stop=10_000, stop_timeout=5),
    )
    run = rt.run()
    with pytest.raises(tiered.ShutdownError) as info:
        async with run:
            pass
    [exc] = info.value.exceptions
    assert isinstance(exc, tiered.DriverTimeout)
    assert "stop_timeout of 5s" in str(exc)
    report = run.report
    assert report.driver("stuck").phases["stop"] == pytest.approx((0.0, 5.0))
    assert report.driver("base").status == "stopped"


async def test_stop_is_shielded_from_outside_cancellation(
    autojump_clock: MockClock,
) -> None:
    """Cancelling the run does not cut a stop short; its own timeout does."""
    rt = runtime(sleeper("slow_stop", stop=20, stop_timeout=30))
    with trio.move_on_after(1):
        async with rt.run() as run:
            await trio.sleep_forever()
    assert run.report.driver("slow_stop").phases["stop"] == pytest.approx((1.0, 21.0))


async def test_infinite_timeouts(autojump_clock: MockClock) -> None:
    """math.inf on a driver, or None on the runtime, means no limit."""
    rt = runtime(sleeper("forever_ok", init=10_000, start_timeout=math.inf))
    async with rt.run() as run:
        assert run.report.driver("forever_ok").status == "running"
    rt = runtime(sleeper("unbounded", init=10_000), start_timeout=None)
    async with rt.run() as run:
        assert run.report.driver("unbounded").status == "running"


async def test_generator_driver_timeouts(autojump_clock: MockClock) -> None:
    """start_timeout and stop_timeout bound a generator driver's two halves."""
    rt = tiered.Runtime("gen", start_timeout=10, stop_timeout=3)
    cleaned: list[str] = []

    @rt.driver
    async def slow_close(ctx: tiered.Context) -> AsyncIterator[None]:
        await trio.sleep(9)
        yield
        try:
            await trio.sleep(100)
        finally:
            cleaned.append("finally ran")

    run = rt.run()
    with pytest.raises(tiered.ShutdownError) as info:
        async with run:
            pass
    assert cleaned == ["finally ran"]
    assert isinstance(info.value.exceptions[0], tiered.DriverTimeout)
    assert run.report.driver("slow_close").phases["stop"] == pytest.approx((9.0, 12.0))


async def test_reload_is_bounded_by_start_timeout(autojump_clock: MockClock) -> None:
    """A hanging reload is a DriverTimeout after start_timeout, returned not raised."""

    class Reloader(tiered.Driver):
        start_timeout = 7

        async def initialize(self, ctx: tiered.Context) -> None:
            pass

        async def reload(self, ctx: tiered.Context) -> None:
            await trio.sleep(1000)

    rt = runtime(Reloader())
    async with rt.run() as run:
        [err] = await run.reload()
        assert isinstance(err, tiered.DriverTimeout)
        assert run.report.driver("reloader").phases["reload"] == pytest.approx(
            (0.0, 7.0)
        )


async def test_report_times_follow_the_mock_clock(autojump_clock: MockClock) -> None:
    """Phase and tier times are exact seconds of virtual time since the run began."""
    rt = runtime(
        sleeper("a", tier=0, init=2, auto=3),
        sleeper("b", tier=0, init=4),
        sleeper("c", tier=1, init=1, stop=2),
    )
    run = rt.run()
    async with run:
        await trio.sleep(10)
    report = run.report
    assert report.driver("a").phases["initialize"] == pytest.approx((0.0, 2.0))
    assert report.driver("a").phases["autostart"] == pytest.approx((4.0, 7.0))
    assert report.driver("c").phases["initialize"] == pytest.approx((7.0, 8.0))
    assert report.driver("c").phases["stop"] == pytest.approx((18.0, 20.0))
    assert [t.duration for t in report.tiers] == pytest.approx([7.0, 1.0])
    assert report.ready_at == pytest.approx(8.0)
    assert [(c.name, c.phase) for c in report.critical_chain()] == [
        ("b", "initialize"),
        ("a", "autostart"),
        ("c", "initialize"),
    ]
    assert [r.name for r in report.blame()] == ["a", "b", "c"]


@pytest.mark.trio
async def test_the_shutdown_budget_cuts_every_stop_and_says_so_once(
    autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """shutdown_timeout=5: three stops that would hang for a minute end at 5 s.

    The budget running out is one warning; it used to be a warning and an
    info line saying the same.
    """
    runtime = tiered.Runtime("budget", shutdown_timeout=5.0)
    for tier in range(3):

        @runtime.driver(name=f"d{tier}", tier=tier, stop_timeout=60.0)
        async def hangs(ctx: tiered.Context) -> AsyncIterator[None]:
            yield
            await trio.sleep_forever()

    began = trio.current_time()
    with pytest.raises(tiered.ShutdownError) as info:
        async with runtime.run():
            pass
    assert trio.current_time() - began == pytest.approx(5.0)
    assert sorted(f.driver for f in info.value.failures) == ["d0", "d1", "d2"]
    said = [
        (r.levelname, r.getMessage())
        for r in caplog.records
        if "shutdown_timeout" in r.getMessage()
        and r.name == "tiered"
        and "failed in stop" not in r.getMessage()
    ]
    assert said == [
        (
            "WARNING",
            "the stop of 'budget' is cut short: the shutdown took its whole "
            "shutdown_timeout of 5s",
        )
    ]
