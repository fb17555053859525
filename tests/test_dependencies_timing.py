"""Times of the dependencies schedule, ``max_concurrent_starts``, the report, reload, restart.

Times are pinned on trio's ``autojump_clock`` (pytest-trio), where they are
exact: a driver whose requirements are fast starts long before a slow
unrelated driver finishes; timeouts count from when a driver begins, not
while it waits for its requirements or for a place under
``max_concurrent_starts``.  The count of hooks at once is pinned on all
three backends.  Orderings: tests/test_dependencies.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import pytest
import trio

import tiered
from support.probes import (
    SCHEDULES,
    STUCK,
    Probe,
    before,
    diamond,
    failed_start,
    forever,
    runtime,
    sleep,
    start_and_stop,
)
from support.recorder import Recorder

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from trio.testing import MockClock


# -- max_concurrent_starts ----------------------------------------------------------


class Gauge:
    """Counts the hooks running now, and the most at once."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0

    def hook(self, seconds: float) -> Callable[[tiered.Context], Awaitable[None]]:
        async def body(ctx: tiered.Context) -> None:
            self.now += 1
            self.peak = max(self.peak, self.now)
            try:
                await anyio.sleep(seconds)
            finally:
                self.now -= 1

        return body


@pytest.mark.anyio
@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("limit", [1, 2, 3, None])
async def test_at_most_max_concurrent_starts_hooks_run_at_once(
    schedule: str, limit: int | None
) -> None:
    """Never more than N hooks at once; a tier of 5 still starts under a limit of 1."""
    rec = Recorder()
    gauge = Gauge()
    probes = [
        Probe(rec, f"t0_{i}", 0, init=gauge.hook(0.005), auto=gauge.hook(0.005))
        for i in range(5)
    ] + [
        Probe(rec, f"t1_{i}", 1, requires=("t0_0",), init=gauge.hook(0.005))
        for i in range(3)
    ]
    run = runtime(*probes, schedule=schedule, max_concurrent_starts=limit).run()
    async with run:
        assert run.ready
        assert set(run.statuses().values()) == {"running"}
    # the drivers of tier 0 begin together, so the first places fill up (and
    # without a limit all five initialize at once)
    if limit is None:
        assert gauge.peak >= 5
    else:
        assert gauge.peak == limit
    assert gauge.now == 0


@pytest.mark.trio
@pytest.mark.parametrize("schedule", SCHEDULES)
async def test_a_tier_wider_than_the_limit_starts_in_waves(
    schedule: str, autojump_clock: MockClock
) -> None:
    """Six 1 s drivers under a limit of 2 are up at 3 s; what waits holds no place."""
    rec = Recorder()
    rt = runtime(
        *(Probe(rec, f"d{i}", 0, init=sleep(1)) for i in range(6)),
        schedule=schedule,
        max_concurrent_starts=2,
    )
    async with rt.run() as run:
        report = run.report
    assert report.ready_at == 3.0
    starts = sorted(r.phases["initialize"][0] for r in report.drivers)
    assert starts == [0.0, 0.0, 1.0, 1.0, 2.0, 2.0]
    assert {r.eligible_at for r in report.drivers} == {0.0}


@pytest.mark.trio
@pytest.mark.parametrize("schedule", SCHEDULES)
async def test_waiting_for_a_place_is_not_charged_to_start_timeout(
    schedule: str, autojump_clock: MockClock
) -> None:
    """Three drivers of 4 s + 4 s, one place, start_timeout 10: all up at 24 s."""
    rec = Recorder()
    rt = runtime(
        *(Probe(rec, f"d{i}", 0, init=sleep(4), auto=sleep(4)) for i in range(3)),
        schedule=schedule,
        max_concurrent_starts=1,
        start_timeout=10,
    )
    async with rt.run() as run:
        assert set(run.statuses().values()) == {"running"}
        assert run.report.ready_at == 24.0
        # its autostart waited for a place too, and that was not charged either
        assert max(r.phases["autostart"][1] or 0 for r in run.report.drivers) == 24.0


# -- timing: the schedule's point ----------------------------------------------------


def fast_and_slow(rec: Recorder) -> tiered.Runtime:
    return runtime(
        Probe(rec, "slow", 0, init=sleep(10)),
        Probe(rec, "fast", 0, init=sleep(1)),
        Probe(rec, "needs_fast", 1, requires=("fast",), init=sleep(0.5)),
    )


@pytest.mark.trio
async def test_a_fast_chain_is_up_long_before_a_slow_unrelated_driver(
    autojump_clock: MockClock,
) -> None:
    """needs_fast begins at t=1 and is up at 1.5, while slow takes until 10."""
    run = fast_and_slow(Recorder()).run(schedule="dependencies")
    async with run:
        report = run.report
    record = report.driver("needs_fast")
    assert record.eligible_at == 1.0
    assert record.phases["initialize"] == (1.0, 1.5)
    assert report.ready_at == 10.0


@pytest.mark.trio
async def test_the_tiers_schedule_makes_the_same_driver_wait_for_the_barrier(
    autojump_clock: MockClock,
) -> None:
    """The same plan in tiers mode: needs_fast waits for slow, up at 10.5."""
    run = fast_and_slow(Recorder()).run(schedule="tiers")
    async with run:
        report = run.report
    assert report.driver("needs_fast").eligible_at == 10.0
    assert report.driver("needs_fast").phases["initialize"] == (10.0, 10.5)
    assert report.ready_at == 10.5


@pytest.mark.trio
async def test_start_up_takes_the_longest_chain_not_each_tiers_slowest(
    autojump_clock: MockClock,
) -> None:
    """a 1 s -> c 5 s and b 5 s -> d 1 s: up at 6 s (tiers: 10 s)."""
    rec = Recorder()
    rt = runtime(
        Probe(rec, "a", 0, init=sleep(1)),
        Probe(rec, "b", 0, init=sleep(5)),
        Probe(rec, "c", 1, requires=("a",), init=sleep(5)),
        Probe(rec, "d", 1, after=("b",), init=sleep(1)),
    )
    async with rt.run(schedule="dependencies") as run:
        assert run.report.ready_at == 6.0
    async with rt.run(schedule="tiers") as run:
        assert run.report.ready_at == 10.0


@pytest.mark.trio
async def test_waiting_for_a_requirement_does_not_count_against_start_timeout(
    autojump_clock: MockClock,
) -> None:
    """A driver waiting 50 s for its requirement, start_timeout 10, is up at 55."""
    rec = Recorder()
    rt = runtime(
        Probe(rec, "db", 0, init=sleep(50), start_timeout=60),
        Probe(rec, "app", 1, requires=("db",), init=sleep(5), start_timeout=10),
        schedule="dependencies",
    )
    async with rt.run() as run:
        assert run.statuses() == {"db": "running", "app": "running"}
        assert run.report.driver("app").phases["initialize"] == (50.0, 55.0)


@pytest.mark.trio
async def test_start_timeout_counts_from_when_the_driver_begins(
    autojump_clock: MockClock,
) -> None:
    """A driver that begins at 50 with start_timeout 10 times out at 60, not at 10."""
    rec = Recorder()
    run = runtime(
        Probe(rec, "db", 0, init=sleep(50), start_timeout=60),
        Probe(rec, "app", 1, after=("db",), init=forever, start_timeout=10),
        schedule="dependencies",
    ).run()
    error = await failed_start(run, within=1000)  # virtual seconds
    [exc] = error.exceptions
    assert isinstance(exc, tiered.DriverTimeout)
    assert "app (tier 1) did not finish initialize within its start_timeout of 10s" in (
        str(exc)
    )
    assert run.report.driver("app").phases["initialize"] == (50.0, 60.0)
    assert trio.current_time() == 60.0


# -- the report ---------------------------------------------------------------------


@pytest.mark.trio
async def test_tiers_still_group_the_text_report_in_dependencies_mode(
    autojump_clock: MockClock,
) -> None:
    """to_text lists each driver under its tier, lowest first, and names the schedule."""
    rec = Recorder()
    run = runtime(
        Probe(rec, "slow", 0, init=sleep(10)),
        Probe(rec, "fast", 0, init=sleep(1)),
        Probe(rec, "x", 2, requires=("fast",), init=sleep(2)),
        Probe(rec, "y", 1, requires=("fast",), init=sleep(4)),
        schedule="dependencies",
    ).run()
    async with run:
        report = run.report
    assert report.schedule == "dependencies"
    assert [(r.name, r.tier) for r in report.drivers] == [
        ("slow", 0),
        ("fast", 0),
        ("y", 1),
        ("x", 2),
    ]
    lines = report.to_text().splitlines()
    heads = [i for i, line in enumerate(lines) if line.startswith("tier ")]
    grouped = {
        lines[i].split()[1]: [line.split()[0] for line in lines[i + 1 : j]]
        for i, j in zip(heads, [*heads[1:], lines.index("", heads[-1])], strict=True)
    }
    assert grouped == {"0": ["slow", "fast"], "1": ["y"], "2": ["x"]}
    assert "dependencies" in "\n".join(lines[: heads[0]])
    svg = report.to_svg()
    assert all(f">{name}<title>" in svg for name in ("slow", "fast", "x", "y"))


@pytest.mark.anyio
async def test_the_report_records_requires_after_and_eligible_at() -> None:
    """DriverRecord.requires and .after are the plan's; eligible_at is in the JSON too."""
    rec = Recorder()
    rt = runtime(*diamond(rec), schedule="dependencies")
    report = await start_and_stop(rt.run())
    c = report.driver("c")
    assert (c.requires, c.after) == (("a",), ("b",))
    assert report.driver("e").after == ("a",)
    data = c.to_dict()
    assert (data["requires"], data["after"]) == (["a"], ["b"])
    assert data["eligible_at"] == c.eligible_at
    assert c.eligible_at is not None
    assert c.eligible_at <= c.phases["initialize"][0]
    assert '"schedule": "dependencies"' in report.to_json()


@pytest.mark.trio
async def test_eligible_at_is_when_the_last_need_is_over_not_the_last_to_report(
    autojump_clock: MockClock,
) -> None:
    """A need whose start is over late, though its hook ended early, sets eligible_at.

    ``skipper`` skips itself at 0.01 but its background task takes 1 s to end,
    so its start is over at 1.01; ``quick`` is up at 0.1.  ``late`` (after
    both) begins at 1.01, and that is when it became eligible.  It used to say
    0.01, the end of ``skipper``'s hook, the last need to report, and blame a
    1 s wait on nothing.
    """

    async def background() -> None:
        try:
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await trio.sleep(1.0)

    rt = tiered.Runtime("t", schedule="dependencies")

    @rt.driver(tier=0, optional=True)
    async def skipper(ctx: tiered.Context) -> AsyncIterator[None]:
        ctx.start_soon(background)
        await trio.sleep(0.01)  # the task has begun: its end takes 1 s
        if ctx.tier >= 0:  # always
            raise tiered.Skip("not on this host")
        yield  # pragma: no cover - never runs

    @rt.driver(tier=0)
    async def quick(ctx: tiered.Context) -> AsyncIterator[None]:
        await trio.sleep(0.1)
        yield

    @rt.driver(tier=1, after=("skipper", "quick"))
    async def late(ctx: tiered.Context) -> AsyncIterator[None]:
        yield

    async with rt.run() as run:
        pass
    record = run.report.driver("late")
    assert record.phases["initialize"][0] == pytest.approx(1.01)
    assert record.eligible_at == pytest.approx(1.01)
    assert record.waited == pytest.approx(0.0)


# -- reload and restart -------------------------------------------------------------


@pytest.mark.anyio
async def test_reload_runs_tier_by_tier_in_dependencies_mode() -> None:
    """run.reload() in dependencies mode: tier 1 reloads once tier 0 has reloaded."""
    rec = Recorder()
    rt = runtime(
        Probe(rec, "a", 0, reload=sleep(0.02)),
        Probe(rec, "b", 0, reload=sleep(0.01)),
        Probe(rec, "c", 1, after=("b",), reload=sleep(0.0)),
        Probe(rec, "d", 2, reload=sleep(0.0)),
        schedule="dependencies",
    )
    with anyio.fail_after(STUCK):
        async with rt.run() as run:
            assert await run.reload() == ()
    order = [n for k, n in rec.events if k == "reload-"]
    assert set(order[:2]) == {"a", "b"}
    assert order[2:] == ["c", "d"]
    assert before(rec, ("reload-", "a"), ("reload+", "c"))


class Flaky(tiered.Driver):
    """A driver whose background task fails once, ``fails_at`` seconds after start."""

    name = "flaky"
    tier = 0
    restart = tiered.Restart(max_restarts=3, delay=1.0)

    def __init__(
        self, rec: Recorder, *, optional: bool = False, again: bool = False
    ) -> None:
        self.rec = rec
        self.optional = optional
        self.again = again  # its restart fails in initialize
        self.lives = 0

    async def initialize(self, ctx: tiered.Context) -> None:
        self.lives += 1
        self.rec.add("init+", self.name)
        if self.lives == 2 and self.again:
            raise RuntimeError("flaky cannot come back")
        if self.lives == 1:
            ctx.start_soon(self.fail_later)

    async def fail_later(self) -> None:
        await trio.sleep(5)
        raise RuntimeError("flaky's connection dropped")

    async def stop(self, ctx: tiered.Context) -> None:
        self.rec.add("stop+", self.name)


@pytest.mark.trio
async def test_a_restart_in_dependencies_mode_restarts_what_requires_it(
    autojump_clock: MockClock,
) -> None:
    """flaky restarts with its dependent; a driver only after it keeps running."""
    rec = Recorder()
    rt = runtime(
        Flaky(rec),
        Probe(rec, "user", 1, requires=("flaky",)),
        Probe(rec, "later", 1, after=("flaky",)),
        schedule="dependencies",
    )
    async with rt.run() as run:
        await trio.sleep(10)
        assert run.statuses() == dict.fromkeys(("flaky", "user", "later"), "running")
        report = run.report
    assert report.driver("flaky").restarts == 1
    assert report.driver("user").restarts == 1
    assert report.driver("later").restarts == 0
    assert report.driver("flaky").phases["initialize"][0] == 6.0  # 5 s, then 1 s delay
    assert rec.count("init+", "user") == 2
    assert rec.count("init+", "later") == 1
    assert before(rec, ("stop-", "user"), ("stop+", "flaky"))


@pytest.mark.trio
@pytest.mark.parametrize("schedule", SCHEDULES)
async def test_a_dependent_blocked_in_a_restart_is_skipped_not_left_restarting(
    schedule: str, autojump_clock: MockClock
) -> None:
    """flaky (optional) fails again in its restart: its optional dependent is skipped."""
    rec = Recorder()
    rt = runtime(
        Flaky(rec, optional=True, again=True),
        Probe(rec, "user", 1, requires=("flaky",), optional=True),
        schedule=schedule,
    )
    async with rt.run() as run:
        await trio.sleep(10)
        assert run.statuses() == {"flaky": "failed", "user": "skipped"}
    assert run.statuses() == {"flaky": "failed", "user": "skipped"}
