"""The first hour with tiered: mistakes a new user made, and what they are told now.

Each test pins one message or behaviour that used to point the wrong way or
nowhere: a hook that blocks the event loop past its deadline, a timeout under
a virtual clock, ``Skip`` raised in ``stop``, ``serve()`` called inside a
running loop, a requirement named by its class.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import anyio
import pytest

import tiered

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from trio.testing import MockClock


def _timeouts(error: BaseException) -> list[tiered.DriverTimeout]:
    assert isinstance(error, tiered.StartupError | tiered.ShutdownError)
    return [
        f.error for f in error.failures if isinstance(f.error, tiered.DriverTimeout)
    ]


@pytest.mark.anyio
@pytest.mark.parametrize("where", ["initialize", "autostart"])
async def test_a_hook_that_blocks_the_loop_times_out_on_every_backend(
    where: str, caplog: pytest.LogCaptureFixture
) -> None:
    """time.sleep past start_timeout: a DriverTimeout that says to use a thread, and a warning."""
    runtime = tiered.Runtime("blocking", start_timeout=0.2)

    class Blocking(tiered.Driver):
        async def initialize(self, ctx: tiered.Context) -> None:
            if where == "initialize":
                time.sleep(0.5)  # noqa: ASYNC251 - the mistake under test

        async def autostart(self, ctx: tiered.Context) -> None:
            if where == "autostart":
                time.sleep(0.5)  # noqa: ASYNC251 - the mistake under test

    runtime.add(Blocking())
    with pytest.raises(tiered.StartupError) as info:
        async with runtime.run():
            pass  # pragma: no cover
    [timeout] = _timeouts(info.value)
    text = str(timeout)
    assert f"did not finish {where} within its start_timeout of 0.2s" in text
    assert "blocked the event loop" in text
    assert "anyio.to_thread.run_sync" in text
    assert [f.phase for f in info.value.failures] == [where]
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        "blocking (tier 0) blocked the event loop" in r.getMessage() for r in warned
    )


@pytest.mark.anyio
async def test_a_stop_that_blocks_the_loop_is_a_timeout_with_the_hint() -> None:
    """time.sleep in stop past stop_timeout: ShutdownError with the same hint."""
    runtime = tiered.Runtime("blocking", stop_timeout=0.2)

    @runtime.driver
    async def stuck(ctx: tiered.Context) -> AsyncIterator[None]:
        yield
        time.sleep(0.5)  # noqa: ASYNC251 - the mistake under test

    with pytest.raises(tiered.ShutdownError) as info:
        async with runtime.run():
            pass
    [timeout] = _timeouts(info.value)
    assert "did not finish stop within its stop_timeout of 0.2s" in str(timeout)
    assert "anyio.to_thread.run_sync" in str(timeout)


@pytest.mark.anyio
async def test_a_hook_that_yields_often_is_not_told_it_blocked() -> None:
    """A plain timeout (the hook kept yielding) gives no blocking hint."""
    runtime = tiered.Runtime("slow", start_timeout=0.1)

    @runtime.driver
    async def slow(ctx: tiered.Context) -> AsyncIterator[None]:
        await anyio.sleep(5)
        yield

    with pytest.raises(tiered.StartupError) as info:
        async with runtime.run():
            pass  # pragma: no cover
    [timeout] = _timeouts(info.value)
    assert "within its start_timeout of 0.1s" in str(timeout)
    assert "blocked the event loop" not in str(timeout)
    assert "virtual" not in str(timeout)


@pytest.mark.trio
async def test_a_timeout_under_a_virtual_clock_says_so(
    autojump_clock: MockClock,
) -> None:
    """Under autojump_clock a hook waiting on a thread times out at once: the error says why."""
    runtime = tiered.Runtime("virtual", start_timeout=1)

    @runtime.driver
    async def threaded(ctx: tiered.Context) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(time.sleep, 0.3)
        yield

    with pytest.raises(tiered.StartupError) as info:
        async with runtime.run():
            pass  # pragma: no cover
    [timeout] = _timeouts(info.value)
    assert "the run's clock is virtual (MockClock" in str(timeout)
    assert "autojump_clock" in str(timeout)


@pytest.mark.anyio
async def test_skip_in_stop_says_skip_is_for_start_up() -> None:
    """Skip raised after the yield is a UsageError saying Skip is for start-up."""
    runtime = tiered.Runtime("skipper")

    @runtime.driver
    async def late(ctx: tiered.Context) -> AsyncIterator[None]:
        yield
        raise tiered.Skip("gone")

    with pytest.raises(tiered.ShutdownError) as info:
        async with runtime.run():
            pass
    [failure] = info.value.failures
    assert isinstance(failure.error, tiered.UsageError)
    assert "raised tiered.Skip('gone') in stop" in str(failure.error)
    assert "Skip is for start-up (initialize and autostart)" in str(failure.error)
    assert isinstance(failure.error.__cause__, tiered.Skip)


@pytest.mark.anyio
async def test_serve_inside_a_running_loop_points_to_aserve() -> None:
    """tiered.serve() called from async code says to await tiered.aserve() instead."""
    runtime = tiered.Runtime("nested")

    @runtime.driver
    async def nothing(ctx: tiered.Context) -> AsyncIterator[None]:
        yield  # pragma: no cover

    with pytest.raises(tiered.UsageError, match=r"await tiered\.aserve\(runtime\)"):
        tiered.serve(runtime)


def test_a_requirement_named_by_its_class_gets_a_did_you_mean() -> None:
    """requires=("Database",) where the class Database is driver "db": did you mean 'db'?"""
    runtime = tiered.Runtime("names")

    class Database(tiered.Driver):
        name = "db"

        async def initialize(self, ctx: tiered.Context) -> None:
            pass  # pragma: no cover

    class Api(tiered.Driver):
        requires = ("Database",)

        async def initialize(self, ctx: tiered.Context) -> None:
            pass  # pragma: no cover

    runtime.add(Database())
    runtime.add(Api())
    with pytest.raises(tiered.ConfigError) as info:
        runtime.check()
    text = str(info.value)
    assert "api requires 'Database', which is not a driver of runtime 'names'" in text
    assert "did you mean 'db'? Database is the class of driver 'db'" in text


@pytest.mark.anyio
async def test_a_late_begin_blames_the_limit_only_when_there_is_one() -> None:
    """A driver that began late names max_concurrent_starts only if a limit was set."""
    for limit in (None, 1):
        runtime = tiered.Runtime("late", max_concurrent_starts=limit)

        @runtime.driver(tier=0)
        async def first(ctx: tiered.Context) -> AsyncIterator[None]:
            await anyio.sleep(0.05)
            yield

        @runtime.driver(tier=0)
        async def second(ctx: tiered.Context) -> AsyncIterator[None]:
            await anyio.sleep(0.05)
            yield

        async with runtime.run() as run:
            pass
        report = run.report
        assert report.max_concurrent_starts == limit
        text = report.to_text()
        if limit is None:  # both began at once: no wait to tell of
            assert "waited" not in text
        else:  # one of the two waited for the place the other held
            assert text.count("for max_concurrent_starts") >= 1
    record = tiered.DriverRecord(
        name="late",
        tier=0,
        status="running",
        optional=False,
        phases={"initialize": (0.05, 0.06)},
        eligible_at=0.0,
    )
    busy = tiered.Report(name="late", drivers=(record,), tiers=(), ready_at=0.06)
    assert "waited 0.050s to begin (the event loop was busy)" in busy.to_text()
    assert "max_concurrent_starts" not in busy.to_text()
