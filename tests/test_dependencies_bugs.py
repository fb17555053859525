"""Core bugs the tests of the dependencies schedule found, each pinned by its test.

Each test states the behaviour the contract asks for (docs/concepts.md) and
failed on the core as it was: a hook beginning after start-up had failed
under ``max_concurrent_starts``; a required driver whose optional
requirement failed during start-up letting the run start; a stop that
overran in a rollback reported as stopped, on asyncio.  The drivers:
tests/support/probes.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import pytest
import trio

import tiered
from support.probes import (
    SCHEDULES,
    Probe,
    failed_start,
    noted_names,
    runtime,
    sleep,
)
from support.recorder import Recorder

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from trio.testing import MockClock


@pytest.mark.anyio
@pytest.mark.parametrize("schedule", SCHEDULES)
async def test_no_hook_begins_once_start_up_failed_under_a_limit(
    schedule: str,
) -> None:
    """Under max_concurrent_starts=1, a failure leaves the drivers waiting unbegun."""
    # trio may begin a tier's drivers in any order, and bad fails with
    # drivers waiting for its place only if it is not the last to get one:
    # eight runs make that all but certain (for each run, 4 in 5)
    late: list[list[tuple[str, str]]] = []
    for _ in range(8):
        rec = Recorder()
        waiting = [Probe(rec, f"n{i}", 0, init=sleep(0.01)) for i in range(4)]
        bad = Probe(rec, "bad", 0, init=sleep(0.01), fail="init")
        run = runtime(
            *waiting[:2], bad, *waiting[2:], schedule=schedule, max_concurrent_starts=1
        ).run()
        await failed_start(run)
        failed_at = rec.first("init!", "bad")
        assert failed_at is not None, rec.events
        late.append([e for e in rec.events[failed_at:] if e[0] == "init+"])
    assert late == [[]] * 8


@pytest.mark.trio
@pytest.mark.parametrize("schedule", SCHEDULES)
async def test_a_required_driver_failed_by_its_requirement_in_start_up_fails_it(
    schedule: str, autojump_clock: MockClock
) -> None:
    """user requires opt; opt's background fails while start-up goes on: StartupError."""
    rt = tiered.Runtime("contained", schedule=schedule)

    @rt.driver(tier=0, optional=True)
    async def opt(ctx: tiered.Context) -> AsyncIterator[None]:
        async def boom() -> None:
            await trio.sleep(1)
            raise RuntimeError("opt's connection dropped")

        ctx.start_soon(boom)
        yield None

    @rt.driver(tier=1, requires=[opt])
    async def user(ctx: tiered.Context) -> AsyncIterator[None]:
        yield None

    # keeps start-up going past t=1 in either schedule
    @rt.driver(tier=2)
    async def slow(ctx: tiered.Context) -> AsyncIterator[None]:
        await trio.sleep(2)
        yield None

    run = rt.run()
    with pytest.raises(tiered.StartupError) as info:
        async with run:
            pass
    assert "user (tier 1)" in str(info.value)
    assert run.statuses()["user"] == "failed"


class Stuck(tiered.Driver):
    """Its autostart and its stop never return; its stop has 50 ms."""

    name = "stuck"
    tier = 0
    stop_timeout = 0.05

    async def initialize(self, ctx: tiered.Context) -> None:
        pass

    async def autostart(self, ctx: tiered.Context) -> None:
        await anyio.sleep_forever()

    async def stop(self, ctx: tiered.Context) -> None:
        await anyio.sleep_forever()


class Breaks(tiered.Driver):
    """Its autostart fails while stuck's still runs."""

    name = "breaks"
    tier = 0

    async def initialize(self, ctx: tiered.Context) -> None:
        pass

    async def autostart(self, ctx: tiered.Context) -> None:
        await anyio.sleep(0.01)
        raise RuntimeError("breaks broke in autostart")


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize(
    "backend",
    [
        pytest.param("asyncio"),
        pytest.param("uvloop"),
        "trio",
    ],
)
def test_a_stop_that_times_out_in_the_rollback_is_a_failure(
    backend: str, schedule: str
) -> None:
    """stuck's stop overruns its 50 ms in the rollback: a DriverTimeout, stuck failed."""
    rt = runtime(Stuck(), Breaks(), schedule=schedule)
    run = rt.run()

    async def start() -> tiered.StartupError:
        return await failed_start(run)

    options = {"use_uvloop": True} if backend == "uvloop" else {}
    error = anyio.run(
        start,
        backend="trio" if backend == "trio" else "asyncio",
        backend_options=options,
    )
    assert sorted(noted_names(error)) == ["breaks", "stuck"]
    timeouts = [e for e in error.exceptions if isinstance(e, tiered.DriverTimeout)]
    assert len(timeouts) == 1
    assert "stuck (tier 0) did not finish stop" in str(timeouts[0])
    assert run.statuses() == {"stuck": "failed", "breaks": "failed"}
