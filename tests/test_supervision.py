"""Supervision: a driver that fails after start-up, restarted with its dependents.

A driver fails after start-up when one of its background tasks
(``ctx.start_soon``) raises.  With ``restart=`` it is restarted with every
driver that requires it, transitively (``_supervisor``); without, an optional
subtree is contained and anything else stops the run (``_policy``).  The
contract is in tiered.Restart's docstring and docs/api.md.

Behaviour tests run on asyncio, uvloop and trio (``anyio``), with crashes set
off by the test (``Member.crash``, tests/support/supervision.py) so that a real
clock cannot race them with start-up.  Timing tests (backoff, the window,
give-up, phases) run on trio's ``autojump_clock``, where times are exact.
Stops during a restart, ``run.get``, the run's state and a real signal are in
tests/test_supervision_stops.py; random plans in
tests/test_properties_supervision.py.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING, Any

import anyio
import pytest
import trio

import tiered
from support.supervision import Interrupt, Member, until
from tiered.testing import FaultyDriver, InjectedFault, Recorder

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from trio.testing import MockClock

FAST = tiered.Restart(max_restarts=3, window=60.0, delay=0.001)
SCHEDULES = pytest.mark.parametrize("schedule", ["tiers", "dependencies"])


def incidents(run: tiered.Run) -> list[tuple[str, str | None, object]]:
    """The report's events after start-up: (kind, driver, value)."""
    return [(e.kind, e.driver, e.value) for e in run.report.events]


def begins(recorder: Recorder, phase: str, since: int = 0) -> list[str]:
    """Who began ``phase``, in order, from event ``since`` on."""
    return [
        e.driver
        for e in recorder.events[since:]
        if e.phase == phase and e.kind == "begin"
    ]


# -- what restarts, and in what order (every backend) ----------------------------


@pytest.mark.anyio
async def test_a_leaf_is_restarted_and_the_run_goes_on() -> None:
    """A leaf whose background task fails is restarted; the run stays live, its events say so."""
    recorder = Recorder()
    runtime = tiered.Runtime("t")
    runtime.add(Member("secrets", recorder, tier=0))
    storage = runtime.add(
        Member("storage", recorder, tier=1, requires=("secrets",), restart=FAST)
    )
    async with runtime.run() as run:
        storage.crash()
        await until(lambda: storage.lives == 2 and run.ready)
        assert run.get("storage") is storage
        assert run.live
        record = run.report.driver("storage")
        assert (record.status, record.restarts) == ("running", 1)
        assert run.report.driver("secrets").restarts == 0
        assert incidents(run) == [
            ("failure", "storage", "background"),
            ("restart", "storage", 0.001),
        ]
        failure, restart = run.report.events
        assert failure.detail is not None
        assert "ConnectionError: storage lost its backend in life 1" in failure.detail
        assert restart.detail is not None
        assert restart.detail.startswith("restart 1 of 3 in 0.001s: driver 'storage'")
    recorder.assert_restarted("storage", times=1)
    recorder.assert_restarted("secrets", times=0)
    recorder.assert_stopped_once_per_life()
    recorder.assert_never_running_without("storage", "secrets")


@pytest.mark.anyio
@SCHEDULES
async def test_dependents_stop_first_then_start_after(schedule: str) -> None:
    """storage fails: qemu, network, storage stop; storage, network, qemu start; after= stays."""
    recorder = Recorder()
    runtime = tiered.Runtime("t", schedule=schedule)

    def add(name: str, tier: int, **options: Any) -> Member:
        return runtime.add(Member(name, recorder, tier=tier, **options))

    add("secrets", 0)
    storage = add("storage", 1, requires=("secrets",), restart=FAST)
    add("network", 2, requires=("storage",))
    add("qemu", 3, requires=("network",))
    add("logs", 2, after=("storage",))  # only after: not restarted with it
    add("audit", 3, requires=("secrets",))  # not a dependent
    async with runtime.run() as run:
        crash = len(recorder.events)
        storage.crash()
        await until(lambda: storage.lives == 2 and run.ready)
        restarted = recorder.events[crash:]
        assert run.report.driver("qemu").restarts == 1
        assert run.report.driver("logs").restarts == 0
    stops_and_starts = [
        (e.driver, e.phase)
        for e in restarted
        if e.kind == "begin" and e.phase in ("stop", "initialize")
    ]
    assert stops_and_starts == [
        ("qemu", "stop"),
        ("network", "stop"),
        ("storage", "stop"),
        ("storage", "initialize"),
        ("network", "initialize"),
        ("qemu", "initialize"),
    ]
    for name, times in [("storage", 1), ("network", 1), ("qemu", 1), ("logs", 0)]:
        recorder.assert_restarted(name, times=times)
    recorder.assert_restarted("audit", times=0)
    recorder.assert_never_running_without("network", "storage")
    recorder.assert_never_running_without("qemu", "network")
    recorder.assert_never_running_without("qemu", "storage")
    recorder.assert_stopped_once_per_life()


@pytest.mark.anyio
async def test_a_generator_driver_is_called_anew() -> None:
    """Each life calls the generator function again; dependents get the new value."""
    runtime = tiered.Runtime("t")
    made: list[dict[str, int]] = []
    lost: list[anyio.Event] = []
    seen: list[object] = []

    @runtime.driver(tier=0, restart=FAST)
    async def pool(ctx: tiered.Context) -> AsyncIterator[dict[str, int]]:
        value = {"life": len(made) + 1}
        made.append(value)
        gone = anyio.Event()
        lost.append(gone)

        async def watch() -> None:
            await gone.wait()
            msg = "the pool went away"
            raise ConnectionError(msg)

        ctx.start_soon(watch)
        yield value

    @runtime.driver(tier=1, requires=(pool,))
    async def user(ctx: tiered.Context) -> AsyncIterator[None]:
        seen.append(ctx.get(pool))
        yield None

    async with runtime.run() as run:
        lost[0].set()
        await until(lambda: len(made) == 2 and run.ready)
        assert run.get(pool) is made[1]
    assert made == [{"life": 1}, {"life": 2}]
    assert seen[0] is made[0]
    assert seen[1] is made[1]


@pytest.mark.anyio
async def test_a_class_driver_is_initialized_again_on_the_same_instance() -> None:
    """A Driver instance gets initialize again (and stop once per life); it stays the value."""
    recorder = Recorder()
    runtime = tiered.Runtime("t")
    storage = runtime.add(Member("storage", recorder, restart=FAST))
    qemu = runtime.add(Member("qemu", recorder, requires=("storage",)))
    async with runtime.run() as run:
        storage.crash()
        await until(lambda: qemu.lives == 2 and run.ready)
        assert run.get("storage") is storage
        assert (storage.lives, storage.stops) == (2, 1)
    assert (storage.lives, storage.stops) == (2, 2)
    assert qemu.seen == [(storage,), (storage,)]


@pytest.mark.anyio
async def test_two_failures_restart_one_after_the_other() -> None:
    """Two drivers fail at once: each is restarted, one transaction after the other."""
    recorder = Recorder()
    runtime = tiered.Runtime("t")
    x = runtime.add(Member("x", recorder, tier=0, restart=FAST))
    y = runtime.add(Member("y", recorder, tier=0, restart=FAST))
    async with runtime.run() as run:
        x.crash()
        y.crash()
        await until(lambda: x.lives == 2 and y.lives == 2 and run.ready)
        assert [r.restarts for r in run.report.drivers] == [1, 1]
    # whichever failed first is restarted first; the other one keeps running
    # until that restart is over, then stops
    first, second = [e.driver for e in recorder.events if e.kind == "fail"]
    ends = [
        i
        for i, e in enumerate(recorder.events)
        if e.driver == first and e.phase == "initialize" and e.kind == "end"
    ]
    second_stops = next(
        i
        for i, e in enumerate(recorder.events)
        if e.driver == second and e.phase == "stop"
    )
    assert ends[1] < second_stops, recorder.format()
    recorder.assert_stopped_once_per_life()


@pytest.mark.anyio
@SCHEDULES
async def test_a_dependent_of_two_failed_drivers_waits_for_both(schedule: str) -> None:
    """z requires x and y; y fails while x's restart waits: z never runs while y is down.

    A bug once: y's restart did not count z (down for x's restart), so x's
    restart started z again and y was then stopped under it.
    """
    recorder = Recorder()
    runtime = tiered.Runtime("t", schedule=schedule)
    slow = tiered.Restart(delay=0.2)
    x = runtime.add(Member("x", recorder, tier=0, restart=slow))
    y = runtime.add(Member("y", recorder, tier=0, restart=slow))
    z = runtime.add(Member("z", recorder, tier=1, requires=("x", "y")))
    async with runtime.run() as run:
        x.crash()
        await until(lambda: recorder.count("x", "stop") == 1)  # in x's delay
        y.crash()
        await until(lambda: x.lives == 2 and y.lives == 2 and run.ready)
        assert run.statuses() == {"x": "running", "y": "running", "z": "running"}
        assert z.lives == 2  # once, after both
    recorder.assert_never_running_without("z", "x")
    recorder.assert_never_running_without("z", "y")
    recorder.assert_stopped_once_per_life()


@pytest.mark.anyio
async def test_no_restart_begins_once_the_run_has_failed() -> None:
    """b (no restart) fails, then a (restart, required by b) at once: a is not stopped under b.

    A bug once: a's restart stopped a while b, failed but not stopped yet,
    still ran on it; the run's shutdown stops both, in order.  (When a fails
    first, b fails while a's restart holds it, which the restart takes care
    of: the run goes on.)
    """
    for _ in range(10):  # trio orders the two crashes at random
        recorder = Recorder()
        runtime = tiered.Runtime("t")
        a = runtime.add(Member("a", recorder, tier=0, restart=FAST))
        b = runtime.add(Member("b", recorder, tier=1, requires=("a",)))
        run = runtime.run()
        error: tiered.ShutdownError | None = None
        try:
            async with run:
                b.crash()
                a.crash()

                def restarted(a: Member = a, run: tiered.Run = run) -> bool:
                    return a.lives == 2 and run.ready

                await until(restarted)
        except tiered.ShutdownError as exc:
            error = exc
        first = next(e.driver for e in recorder.events if e.kind == "fail")
        if first == "b":
            assert error is not None
            assert error.message == "runtime 't' stopped with errors (b)"
            assert a.lives == 1
        else:
            assert error is None
        recorder.assert_never_running_without("b", "a")
        recorder.assert_stopped_once_per_life()


@pytest.mark.trio
@SCHEDULES
async def test_a_dependent_blocked_in_its_restart_is_not_left_restarting(
    autojump_clock: MockClock, schedule: str
) -> None:
    """stats restarts, but cache (which it requires) was contained meanwhile: stats is skipped.

    A bug once (tiers): stats stayed "restarting" for the rest of the run,
    and its never-begun life counted as a restart.
    """
    recorder = Recorder()
    runtime = tiered.Runtime("t", schedule=schedule)
    runtime.add(Member("cache", recorder, optional=True, script={1: 1.2}))
    policy = tiered.Restart(delay=0.5)
    stats = Member(
        "stats", recorder, requires=("cache",), optional=True, restart=policy
    )
    stats.script[1] = 1.0  # crashes first; cache fails in its delay
    runtime.add(stats)
    async with runtime.run() as run:
        await trio.sleep(3.0)
        assert (run.state, run.live) == ("running", True)
        record = run.report.driver("stats")
        assert (record.status, record.restarts) == ("skipped", 0)
        assert record.reason is not None
        assert record.reason.startswith("requires 'cache' (tier 0), which failed")
    assert run.statuses() == {"cache": "failed", "stats": "skipped"}


HANGS = """
import anyio, tiered

runtime = tiered.Runtime("t")
go = []


def driver(name, tier, optional):
    @runtime.driver(name=name, tier=tier, optional=optional)
    async def hooks(ctx):
        async def watch():
            await go[0].wait()
            raise ConnectionError(name)

        ctx.start_soon(watch)
        yield None


driver("required", 0, False)
driver("optional", 1, True)


async def main():
    go.append(anyio.Event())
    try:
        async with runtime.run():
            go[0].set()
            await anyio.sleep_forever()
    except tiered.ShutdownError as exc:
        print(exc.message)


anyio.run(main)
"""


def test_a_containment_during_another_stop_never_hangs() -> None:
    """A required and an optional driver fail at once: the run stops, it does not hang.

    A core bug once (reported from here): the optional driver's containment
    and the shutdown both took it to stop (``_schedule.Stop.take``), and the
    shutdown never heard that it ended, so it waited forever, shielded.  In
    a child process, so that a hang fails the test instead of the suite.
    """
    try:
        out = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(HANGS)],
            capture_output=True,
            text=True,
            timeout=5.0,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the run hung: its shutdown never ended")
    assert out.stdout.strip() == "runtime 't' stopped with errors (required)"


# -- without restart ------------------------------------------------------------------


@pytest.mark.anyio
async def test_without_restart_an_optional_subtree_is_contained() -> None:
    """An optional driver and its optional dependents stop, recorded failed; the run goes on."""
    recorder = Recorder()
    runtime = tiered.Runtime("t")
    cache = runtime.add(Member("cache", recorder, tier=0, optional=True))
    runtime.add(Member("stats", recorder, tier=1, requires=("cache",), optional=True))
    runtime.add(Member("api", recorder, tier=1))
    async with runtime.run() as run:
        cache.crash()
        await until(lambda: recorder.count("cache", "stop", "end") == 1)
        assert run.statuses() == {
            "cache": "failed",
            "stats": "failed",
            "api": "running",
        }
        assert (run.state, run.ready, run.live) == ("running", True, True)
        assert incidents(run) == [
            ("failure", "cache", "background"),
            ("failure", "cache", "contained"),
        ]
        record = run.report.driver("stats")
        assert record.reason is not None
        assert record.reason.startswith("requires cache (tier 0), which failed")
    assert run.statuses() == {"cache": "failed", "stats": "failed", "api": "stopped"}
    recorder.assert_stopped_in_reverse("cache", "stats")
    recorder.assert_stopped_exactly_once()
    recorder.assert_restarted("cache", times=0)


@pytest.mark.anyio
@pytest.mark.parametrize("optional", [False, True])
async def test_without_restart_a_required_subtree_stops_the_run(optional: bool) -> None:
    """A failure the run cannot contain cancels the body; leaving raises ShutdownError."""
    recorder = Recorder()
    runtime = tiered.Runtime("t")
    # optional or not, storage has a required dependent: the run cannot go on
    storage = runtime.add(Member("storage", recorder, tier=0, optional=optional))
    runtime.add(Member("qemu", recorder, tier=1, requires=("storage",)))
    reached = False
    run = runtime.run()

    async def body() -> None:
        nonlocal reached
        async with run:
            storage.crash()
            await anyio.sleep_forever()  # the run cancels the body
            reached = True  # pragma: no cover - never reached

    with pytest.raises(tiered.ShutdownError) as info:
        await body()
    assert not reached
    assert info.value.message == "runtime 't' stopped with errors (storage)"
    [error] = info.value.exceptions
    assert isinstance(error, ConnectionError)
    assert "driver 'storage' (tier 0), phase background" in error.__notes__
    [failure] = info.value.failures
    assert (failure.driver, failure.tier, failure.phase) == ("storage", 0, "background")
    assert (run.state, run.live) == ("stopped", False)
    assert run.statuses() == {"storage": "failed", "qemu": "stopped"}
    recorder.assert_stopped_in_reverse()
    recorder.assert_stopped_exactly_once()


@pytest.mark.anyio
async def test_a_failure_during_startup_is_never_retried() -> None:
    """A background task that fails while later tiers start fails the start-up, restart or not."""
    recorder = Recorder()
    runtime = tiered.Runtime("t")
    storage = runtime.add(
        FaultyDriver(
            "storage", tier=0, restart=FAST, crash_after=0.0, recorder=recorder
        )
    )
    runtime.add(FaultyDriver("qemu", tier=1, hang_in="initialize", recorder=recorder))
    run = runtime.run()
    with pytest.raises(tiered.StartupError) as info:
        async with run:
            pytest.fail("start-up should have failed")  # pragma: no cover
    [error] = info.value.exceptions
    assert isinstance(error, InjectedFault)
    assert "driver 'storage' (tier 0), phase background" in error.__notes__
    assert storage.lives == 1
    assert run.report.driver("storage").restarts == 0
    assert run.report.events == ()
    recorder.assert_stopped_exactly_once()


# -- backoff, window, give-up (trio's virtual clock: exact times) ----------------------


@pytest.mark.trio
async def test_backoff_doubles_from_delay_up_to_max_delay(
    autojump_clock: MockClock,
) -> None:
    """The k-th restart waits min(delay * 2**(k-1), max_delay): 0.1, 0.2, 0.4, 0.8, 1, 1."""
    recorder = Recorder()
    runtime = tiered.Runtime("t")
    policy = tiered.Restart(max_restarts=10, window=1000.0, delay=0.1, max_delay=1.0)
    a = runtime.add(
        FaultyDriver("a", restart=policy, crash_after=5.0, recorder=recorder)
    )
    async with runtime.run() as run:
        await trio.sleep(35.0)  # lives begin at 0, 5.1, 10.3, 15.7, 21.5, 27.5, 33.5
        assert a.lives == 7
    lives = [
        e.at for e in recorder.events if e.phase == "initialize" and e.kind == "begin"
    ]
    # each life crashes 5 s after it began; the next begins after the delay
    waits = [later - (earlier + 5.0) for earlier, later in itertools.pairwise(lives)]
    assert waits == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0], abs=1e-9)
    restarts = [e for e in run.report.events if e.kind == "restart"]
    assert [e.value for e in restarts] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    assert [e.detail.split(":")[0] for e in restarts if e.detail] == [
        f"restart {k} of 10 in {d:g}s"
        for k, d in enumerate([0.1, 0.2, 0.4, 0.8, 1, 1], 1)
    ]
    assert run.report.driver("a").restarts == 6


@pytest.mark.trio
async def test_failures_older_than_window_are_forgotten(
    autojump_clock: MockClock,
) -> None:
    """Failures 5 s apart with window=4: every restart waits delay, the budget never runs out."""
    runtime = tiered.Runtime("t")
    policy = tiered.Restart(max_restarts=1, window=4.0, delay=0.1)
    a = runtime.add(FaultyDriver("a", restart=policy, crash_after=5.0, crash_times=6))
    async with runtime.run() as run:
        await trio.sleep(33.0)  # lives begin every 5.1 s, the 7th at 30.6
        assert (a.lives, run.ready, run.live) == (7, True, True)
    restarts = [e for e in run.report.events if e.kind == "restart"]
    assert [e.value for e in restarts] == [0.1] * 6
    assert all(e.detail and e.detail.startswith("restart 1 of 1 in") for e in restarts)


@pytest.mark.trio
async def test_a_quiet_period_longer_than_window_resets_the_backoff(
    autojump_clock: MockClock,
) -> None:
    """Three quick failures double the delay; after 20 quiet seconds (window 10) it is delay again."""
    recorder = Recorder()
    runtime = tiered.Runtime("t")
    policy = tiered.Restart(max_restarts=3, window=10.0, delay=0.1)
    script = {1: 1.0, 2: 1.0, 3: 1.0, 4: 20.0, 5: 1.0}
    a = runtime.add(Member("a", recorder, restart=policy, script=script))
    async with runtime.run() as run:
        await trio.sleep(30.0)  # lives begin at 0, 1.1, 2.3, 3.7, 23.8 and 25
        assert a.lives == 6
    restarts = [e.value for e in run.report.events if e.kind == "restart"]
    # 1.0 s apart: 0.1, 0.2, 0.4; after 20 s: 0.1; the next within the window: 0.2
    assert restarts == pytest.approx([0.1, 0.2, 0.4, 0.1, 0.2])


@pytest.mark.trio
async def test_the_give_up_log_line_names_the_driver_once(
    autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """It used to read "a (tier 0) gave up restarting a (tier 0) after ..."."""
    runtime = tiered.Runtime("t")
    policy = tiered.Restart(max_restarts=1, window=60.0, delay=0.1)
    runtime.add(FaultyDriver("a", restart=policy, crash_after=1.0))
    with pytest.raises(tiered.ShutdownError):
        async with runtime.run():
            await trio.sleep_forever()
    [line] = [r.getMessage() for r in caplog.records if "gave up" in r.getMessage()]
    assert line.startswith(
        "a (tier 0) gave up restarting after 1 restart(s) within 60s: "
    )
    assert line.count("a (tier 0)") == 1, line


@pytest.mark.trio
async def test_run_gave_up_says_why_before_the_run_stops_being_live(
    autojump_clock: MockClock,
) -> None:
    """``run.gave_up``: None while restarts go on, the reason once live turns false.

    What tiered.asgi reads to say why a served run stopped, rather than the
    ShutdownError's message.
    """
    runtime = tiered.Runtime("t")
    policy = tiered.Restart(max_restarts=1, window=60.0, delay=0.1)
    runtime.add(FaultyDriver("a", restart=policy, crash_after=1.0))
    seen: list[tuple[str, bool, str | None]] = []
    run = runtime.run()

    def on(event: tiered.RunEvent) -> None:
        if event.kind in ("state", "restart", "gave-up"):
            seen.append((event.kind, run.live, run.gave_up))

    async def body() -> None:
        async with run:
            run.listen(on)
            await trio.sleep_forever()

    with pytest.raises(tiered.ShutdownError):
        await body()
    why = "gave up restarting a (tier 0) after 1 restart(s) within 60s"
    assert ("restart", True, None) in seen
    assert all(gave_up is None for _, live, gave_up in seen if live)
    assert run.gave_up == why
    first_not_live = next(s for s in seen if not s[1])
    assert first_not_live == ("state", False, why)
    assert ("gave-up", False, why) in seen


@pytest.mark.trio
async def test_a_dependents_failure_in_a_restart_is_not_charged_as_the_drivers_own(
    autojump_clock: MockClock,
) -> None:
    """a crashes, is restarted, and b (which requires it) fails its restart: tiered gives up on a.

    a is failed, but its record keeps no error or phase of b's: it used to
    read ``failed_in="initialize"`` with b's ValueError, though a's
    initialize went well.
    """
    runtime = tiered.Runtime("t")
    lives = {"a": 0, "b": 0}

    @runtime.driver(tier=0, restart=tiered.Restart(max_restarts=1, delay=0.1))
    async def a(ctx: tiered.Context) -> AsyncIterator[None]:
        lives["a"] += 1
        if lives["a"] == 1:

            async def crash() -> None:
                await trio.sleep(1)
                raise ConnectionError("a lost")

            ctx.start_soon(crash)
        yield

    @runtime.driver(requires=[a])
    async def b(ctx: tiered.Context) -> AsyncIterator[None]:
        lives["b"] += 1
        if lives["b"] == 2:
            raise ValueError("b refuses")
        yield

    run = runtime.run()

    async def body() -> None:
        async with run:
            await trio.sleep(10)

    with pytest.raises(tiered.ShutdownError):
        await body()
    record_a, record_b = run.report.driver("a"), run.report.driver("b")
    assert (record_a.status, record_a.failed_in, record_a.error) == (
        "failed",
        None,
        None,
    )
    assert record_a.reason == (
        "its restart failed: driver 'b' (tier 1), phase initialize: ValueError: b refuses"
    )
    assert record_a.up_at == pytest.approx(1.1)  # its latest start went well
    assert (record_b.failed_in, record_b.error) == (
        "initialize",
        "ValueError: b refuses",
    )
    assert run.gave_up == "gave up restarting a (tier 0) after 1 restart(s) within 60s"


@pytest.mark.trio
async def test_a_contained_give_up_does_not_stop_the_run(
    autojump_clock: MockClock,
) -> None:
    """An optional driver that gives up is contained: the run goes on, gave_up stays None."""
    runtime = tiered.Runtime("t")
    policy = tiered.Restart(max_restarts=1, window=60.0, delay=0.1)
    runtime.add(FaultyDriver("a", restart=policy, crash_after=1.0, optional=True))
    async with runtime.run() as run:
        await trio.sleep(10.0)
        assert run.live
        assert run.gave_up is None
        assert run.statuses()["a"] == "failed"


@pytest.mark.trio
async def test_giving_up_stops_the_run_through_the_body(
    autojump_clock: MockClock,
) -> None:
    """Past max_restarts: the body is cancelled, every driver stops, ShutdownError says so."""
    recorder = Recorder()
    runtime = tiered.Runtime("t")
    policy = tiered.Restart(max_restarts=3, window=60.0, delay=0.1)
    runtime.add(FaultyDriver("a", restart=policy, crash_after=1.0, recorder=recorder))
    runtime.add(FaultyDriver("b", requires=("a",), recorder=recorder))
    run = runtime.run()
    cancelled: list[tuple[float, str, bool]] = []

    async def body() -> None:
        async with run:
            began = trio.current_time()
            try:
                await trio.sleep_forever()
            finally:
                cancelled.append((trio.current_time() - began, run.state, run.live))

    with pytest.raises(tiered.ShutdownError) as info:
        await body()
    # crashes at 1, 2.1, 3.3 and 4.7 (restarts after 0.1, 0.2, 0.4): gave up at 4.7
    [(when, state, live)] = cancelled
    assert when == pytest.approx(4.7)
    assert (state, live) == ("running", False)
    assert info.value.message == (
        "runtime 't' stopped: it gave up restarting a (tier 0) after 3 restart(s) "
        "within 60s (a)"
    )
    [error] = info.value.exceptions
    assert isinstance(error, InjectedFault)
    assert "crashes in life 4" in str(error)
    assert "tiered gave up restarting a (tier 0) after 3 restart(s) within 60s" in (
        error.__notes__
    )
    assert (run.state, run.ready, run.live) == ("stopped", False, False)
    assert [k for k, _, _ in incidents(run)] == [
        *["failure", "restart"] * 3,
        "failure",
        "gave-up",
    ]
    gave_up = run.report.events[-1]
    assert (gave_up.driver, gave_up.value) == ("a", 3)
    assert gave_up.time == pytest.approx(4.7)
    assert [(r.name, r.status, r.restarts) for r in run.report.drivers] == [
        ("a", "failed", 3),
        ("b", "stopped", 3),
    ]
    recorder.assert_stopped_once_per_life()
    recorder.assert_stopped_in_reverse()


@pytest.mark.trio
@pytest.mark.parametrize("who", ["a", "b"])
async def test_a_restart_whose_start_fails_counts_as_a_failure(
    autojump_clock: MockClock, who: str
) -> None:
    """Life 2 of a (or of b, which requires it) fails to start: one more failure of a."""
    recorder = Recorder()
    runtime = tiered.Runtime("t")
    policy = tiered.Restart(max_restarts=3, window=60.0, delay=0.1)
    a = runtime.add(Member("a", recorder, restart=policy, script={1: 1.0}))
    b = runtime.add(Member("b", recorder, requires=("a",), restart=policy))
    (a if who == "a" else b).script[2] = "fail"
    async with runtime.run() as run:
        await until(lambda: a.lives == 3 and run.ready, limit=100)
        assert incidents(run) == [
            ("failure", "a", "background"),
            ("restart", "a", 0.1),
            ("failure", who, "initialize"),
            ("restart", "a", 0.2),  # the second restart within the window
        ]
        assert [e.time for e in run.report.events] == pytest.approx([1, 1, 1.1, 1.1])
        # a life that never began is no restart: b's first, when a failed
        restarts = {r.name: r.restarts for r in run.report.drivers}
        assert restarts == {"a": 2, "b": 2 if who == "b" else 1}
        assert restarts == {n: recorder.lives(n) - 1 for n in "ab"}
    recorder.assert_stopped_once_per_life()
    recorder.assert_never_running_without("b", "a")


@pytest.mark.trio
async def test_a_failed_restart_past_the_budget_gives_up(
    autojump_clock: MockClock,
) -> None:
    """max_restarts=1: the one restart fails to start, so the supervisor gives up."""
    recorder = Recorder()
    runtime = tiered.Runtime("t")
    policy = tiered.Restart(max_restarts=1, window=60.0, delay=0.1)
    runtime.add(Member("a", recorder, restart=policy, script={1: 1.0, 2: "fail"}))
    with pytest.raises(tiered.ShutdownError, match=r"after 1 restart\(s\)") as info:
        async with runtime.run():
            await trio.sleep_forever()
    [error] = info.value.exceptions
    assert isinstance(error, OSError)
    assert str(error) == "a cannot start in life 2"


@pytest.mark.trio
async def test_dependents_restarted_with_another_use_none_of_their_budget(
    autojump_clock: MockClock,
) -> None:
    """b is restarted three times with a; its own first failure still waits its delay."""
    recorder = Recorder()
    runtime = tiered.Runtime("t")
    a_policy = tiered.Restart(max_restarts=5, window=1000.0, delay=0.1)
    b_policy = tiered.Restart(max_restarts=1, window=1000.0, delay=0.5)
    a = runtime.add(
        Member("a", recorder, restart=a_policy, script={1: 1.0, 2: 1.0, 3: 1.0})
    )
    b = runtime.add(
        Member("b", recorder, requires=("a",), restart=b_policy, script={4: 1.0})
    )
    async with runtime.run() as run:
        await until(lambda: b.lives == 5 and run.ready, limit=100)
        assert run.live
        assert (run.report.driver("a").restarts, run.report.driver("b").restarts) == (
            3,
            4,
        )
    [own] = [e for e in run.report.events if e.kind == "restart" and e.driver == "b"]
    assert own.value == 0.5
    assert own.detail is not None
    assert own.detail.startswith("restart 1 of 1 in 0.5s")
    assert a.lives == 4


@pytest.mark.trio
async def test_the_report_keeps_the_phases_of_the_latest_start(
    autojump_clock: MockClock,
) -> None:
    """After a restart the record's phases are those of the new life; ready_at stays."""
    runtime = tiered.Runtime("t")
    runtime.add(
        FaultyDriver(
            "a",
            restart=tiered.Restart(delay=0.5),
            delay={"initialize": 2.0, "autostart": 1.0},
            crash_after=5.0,
            crash_times=1,
        )
    )
    run = runtime.run()
    async with run:
        # up at 3; crash at 7 (5 s after initialize); the new life begins at 7.5
        await trio.sleep(8.0)
        assert run.report.driver("a").phases == {
            "initialize": (7.5, 9.5),
            "autostart": (9.5, 10.5),
        }
        assert run.report.ready_at == 3.0
    assert run.report.driver("a").phases["stop"] == (11.0, 11.0)


@pytest.mark.trio
async def test_an_optional_subtree_that_gives_up_is_contained(
    autojump_clock: MockClock,
) -> None:
    """Giving up on an optional driver whose dependents are optional: they stop, the run lives."""
    runtime = tiered.Runtime("t")
    policy = tiered.Restart(max_restarts=1, delay=0.1)
    runtime.add(FaultyDriver("cache", optional=True, restart=policy, crash_after=1.0))
    runtime.add(FaultyDriver("stats", requires=("cache",), optional=True))
    runtime.add(FaultyDriver("api"))
    async with runtime.run() as run:
        await trio.sleep(10.0)
        assert run.statuses() == {
            "cache": "failed",
            "stats": "failed",
            "api": "running",
        }
        assert (run.state, run.live) == ("running", True)
        assert "gave-up" in [k for k, _, _ in incidents(run)]


@pytest.mark.trio
async def test_an_interrupt_in_a_restart_stops_the_run_at_once(
    autojump_clock: MockClock,
) -> None:
    """A hook that raises an interrupt while it restarts is not retried: the run stops.

    A bug once: the restart counted it as a failed start and tried again,
    with backoff, until it gave up.
    """
    recorder = Recorder()
    runtime = tiered.Runtime("t")
    policy = tiered.Restart(max_restarts=5, delay=0.5)
    runtime.add(Member("a", recorder, restart=policy, script={1: 1.0, 2: "interrupt"}))
    runtime.add(Member("b", recorder, requires=("a",)))
    run = runtime.run()
    began = trio.current_time()
    with pytest.raises(Interrupt):
        async with run:
            await trio.sleep_forever()
    assert trio.current_time() - began == pytest.approx(1.5)
    assert recorder.lives("a") == 2
    # b was stopped for the restart and never began again
    assert run.statuses() == {"a": "failed", "b": "cancelled"}
    assert run.report.driver("b").restarts == 0
    recorder.assert_stopped_once_per_life()


@pytest.mark.trio
async def test_a_stop_that_fails_during_a_restart_is_an_incident_not_a_failure(
    autojump_clock: MockClock,
) -> None:
    """b's stop fails while a restarts: recorded, the restart goes on; only the final stop raises."""
    recorder = Recorder()
    runtime = tiered.Runtime("t")
    a = runtime.add(Member("a", recorder, restart=FAST, script={1: 1.0}))
    runtime.add(FaultyDriver("b", requires=("a",), fail_in="stop", recorder=recorder))

    async def body() -> None:
        async with runtime.run() as run:
            await until(lambda: a.lives == 2 and run.ready)
            assert ("failure", "b", "stop") in incidents(run)
            assert run.statuses() == {"a": "running", "b": "running"}

    with pytest.raises(tiered.ShutdownError) as info:
        await body()
    assert len(info.value.exceptions) == 1  # the stop at the end, not the first
    assert recorder.count("b", "stop", "fail") == 2


# -- the delay's arithmetic, and restart= checked -------------------------------------


def test_the_delay_never_overflows() -> None:
    """delay * 2**(k-1) is capped for any k: 2.0**1024 once raised OverflowError."""
    policy = tiered.Restart(max_restarts=10**9, window=math.inf, delay=0.1)
    assert [policy.delay_for(k) for k in (1, 2, 3, 9, 10)] == [
        0.1,
        0.2,
        0.4,
        25.6,
        30.0,
    ]
    for k in (1024, 1025, 1030, 1074, 1075, 10**6):
        assert policy.delay_for(k) == 30.0
    assert tiered.Restart(delay=0.0, max_delay=0.0).delay_for(5000) == 0.0
    uncapped = tiered.Restart(delay=1.0, max_delay=math.inf)
    assert uncapped.delay_for(1024) == 2.0**1023
    assert uncapped.delay_for(1025) == math.inf


@pytest.mark.trio
async def test_a_thousand_restarts_within_the_window_keep_going(
    autojump_clock: MockClock,
) -> None:
    """1,030 crashes, none forgotten (window inf): the 1,025th delay is computed like the rest."""
    runtime = tiered.Runtime("t")
    policy = tiered.Restart(
        max_restarts=10**6, window=math.inf, delay=0.0, max_delay=0.0
    )
    a = runtime.add(FaultyDriver("a", restart=policy, crash_after=0.01))
    async with runtime.run() as run:
        await until(lambda: a.lives > 1030, limit=100)
        assert run.live
    assert run.report.driver("a").restarts >= 1030


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"max_restarts": -1}, "Restart(max_restarts=-1): the number of restarts"),
        ({"max_restarts": 2.0}, "Restart(max_restarts=2.0): "),
        ({"max_restarts": True}, "Restart(max_restarts=True): "),
        ({"max_restarts": "3"}, "Restart(max_restarts='3'): "),
        ({"window": 0}, "Restart(window=0); it is a number of seconds > 0"),
        ({"window": -60.0}, "Restart(window=-60.0); "),
        ({"window": math.nan}, "Restart(window=nan); "),
        ({"window": "60"}, "Restart(window='60'); "),
        ({"delay": -0.1}, "Restart(delay=-0.1); it is a number of seconds >= 0"),
        ({"delay": None}, "Restart(delay=None); "),
        ({"delay": math.inf}, "Restart(delay=inf): the first delay must be finite"),
        ({"max_delay": -1}, "Restart(max_delay=-1); "),
        ({"max_delay": math.nan}, "Restart(max_delay=nan); "),
        (
            {"delay": 5.0, "max_delay": 1.0},
            "Restart(delay=5.0, max_delay=1.0): max_delay caps the delay",
        ),
    ],
)
def test_restart_refuses_a_bad_field(fields: dict[str, Any], message: str) -> None:
    """Every field of Restart is checked: a ConfigError naming the field and the rule."""
    with pytest.raises(tiered.ConfigError) as info:
        tiered.Restart(**fields)
    assert str(info.value).startswith(message)
    assert isinstance(info.value, ValueError)


def test_restart_accepts_the_edges_and_stays_frozen() -> None:
    """0 restarts, no delay, windows and caps without limit are fine; fields are floats, frozen."""
    policy = tiered.Restart(
        max_restarts=0, window=math.inf, delay=0, max_delay=math.inf
    )
    assert (policy.window, policy.delay, policy.max_delay) == (math.inf, 0.0, math.inf)
    assert type(tiered.Restart(window=60, delay=1, max_delay=2).window) is float
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.delay = 1.0  # type: ignore[misc]
    with pytest.raises(tiered.ConfigError, match="delay=-1"):
        dataclasses.replace(policy, delay=-1)


@pytest.mark.parametrize(
    "value",
    [
        "always",
        "ON-FAILURE",
        "on_failure",
        3,
        True,
        tiered.Restart,
        {"max_restarts": 1},
    ],
)
def test_restart_accepts_on_failure_and_refuses_anything_else(value: object) -> None:
    """restart='on-failure' means Restart(); anything but None, it and a Restart is refused."""
    runtime = tiered.Runtime("t")

    @runtime.driver(restart="on-failure")
    async def good(ctx: tiered.Context) -> AsyncIterator[None]:
        yield None

    runtime.add(FaultyDriver("member", restart=tiered.Restart(delay=1.0)))
    plan = runtime.check()
    assert plan.drivers["good"].restart == tiered.Restart()
    assert plan.drivers["member"].restart == tiered.Restart(delay=1.0)
    shown = f"has restart={value!r}; use restart='on-failure'"
    given: Any = value  # what a user without a type checker may pass
    with pytest.raises(tiered.ConfigError) as info:

        @runtime.driver(restart=given)
        async def bad(ctx: tiered.Context) -> AsyncIterator[None]:
            yield None  # pragma: no cover

    assert shown in str(info.value)
    with pytest.raises(tiered.ConfigError) as info:
        tiered.Runtime("u").add(FaultyDriver("x", restart=given))
    assert shown in str(info.value)
