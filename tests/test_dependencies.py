"""The ``"dependencies"`` schedule and ``after=`` at run time (issue 12).

What docs/concepts.md and ``Runtime``'s docstring promise: with
``schedule="dependencies"`` a driver begins once what it requires and is
after is up, with no barrier between tiers; it stops once every driver that
requires it or is after it has stopped.  ``after=`` orders without giving a
value.  The behaviours both schedules share run in both (``SCHEDULES``).

Orderings are pinned on asyncio, uvloop and trio with events a hook waits
for, so a wrong order deadlocks (``fail_after``, or pytest-timeout for a
deadlock in a shielded stop, ends the test).  The plan's side of ``after=``:
tests/test_dependencies_plan.py; times and ``max_concurrent_starts``:
tests/test_dependencies_timing.py; core bugs found here:
tests/test_dependencies_bugs.py; random plans: tests/test_properties_dag.py.
The drivers: tests/support/probes.py.
"""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel
import pytest

import tiered
from support.probes import (
    NEEDS,
    SCHEDULES,
    Probe,
    before,
    diamond,
    failed_start,
    forever,
    noted_names,
    runtime,
    setting,
    sleep,
    start_and_stop,
    wait_for,
)
from support.recorder import Recorder

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from trio.testing import MockClock


# -- choosing the schedule ------------------------------------------------------


@pytest.mark.anyio
async def test_the_schedule_comes_from_the_runtime_or_the_run() -> None:
    """Runtime(schedule=) is the default, run(schedule=) overrides it; the report says."""
    rec = Recorder()
    rt = runtime(Probe(rec, "a", 0), schedule="dependencies")
    assert rt.schedule == "dependencies"
    run = rt.run()
    assert run.schedule == "dependencies"
    assert (await start_and_stop(run)).schedule == "dependencies"
    run = rt.run(schedule="tiers")
    assert run.schedule == "tiers"
    assert (await start_and_stop(run)).schedule == "tiers"
    assert rt.run(schedule="dependencies").schedule == "dependencies"


def test_an_unknown_schedule_is_a_config_error() -> None:
    """A schedule other than tiers or dependencies is refused, naming both."""
    with pytest.raises(tiered.ConfigError, match=r"'tiers'.*'dependencies'"):
        tiered.Runtime("x", schedule="dag")
    rt = tiered.Runtime("x")
    with pytest.raises(tiered.ConfigError, match=r"runtime\.run\(schedule='fast'\)"):
        rt.run(schedule="fast")


@pytest.mark.anyio
async def test_a_run_with_no_drivers_starts_in_dependencies_mode() -> None:
    """An empty runtime starts and stops at once, with no tiers in its report."""
    report = await start_and_stop(tiered.Runtime("empty").run(schedule="dependencies"))
    assert report.tiers == ()
    assert report.ready_at is not None
    assert math.isfinite(report.ready_at)


# -- start order -------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_driver_begins_while_an_unrelated_slower_driver_initializes() -> None:
    """needs_fast (tier 1) begins while slow (tier 0) still initializes: no barrier."""
    rec = Recorder()
    began = anyio.Event()
    rt = runtime(
        Probe(rec, "slow", 0, init=wait_for(began)),  # waits for needs_fast
        Probe(rec, "fast", 0),
        Probe(rec, "needs_fast", 1, requires=("fast",), init=setting(began)),
        schedule="dependencies",
    )
    report = await start_and_stop(rt.run())
    assert before(rec, ("auto-", "fast"), ("init+", "needs_fast"))
    assert before(rec, ("auto-", "needs_fast"), ("init-", "slow"))
    assert {r.name: r.status for r in report.drivers} == dict.fromkeys(
        ("slow", "fast", "needs_fast"), "running"
    )


@pytest.mark.anyio
async def test_autostart_follows_its_own_initialize_without_a_barrier() -> None:
    """A driver autostarts while a sibling of its tier is still in initialize."""
    rec = Recorder()
    autostarted = anyio.Event()
    rt = runtime(
        Probe(rec, "quick", 0, auto=setting(autostarted)),
        Probe(rec, "sibling", 0, init=wait_for(autostarted)),
        schedule="dependencies",
    )
    await start_and_stop(rt.run())
    assert before(rec, ("auto+", "quick"), ("init-", "sibling"))


@pytest.mark.anyio
async def test_a_driver_that_needs_nothing_begins_at_once_whatever_its_tier() -> None:
    """A tier 3 driver without requires or after begins with tier 0."""
    rec = Recorder()
    began = anyio.Event()
    rt = runtime(
        Probe(rec, "base", 0, init=wait_for(began)),
        Probe(rec, "high", 3, init=setting(began)),
        schedule="dependencies",
    )
    report = await start_and_stop(rt.run())
    assert before(rec, ("init+", "high"), ("init-", "base"))
    # taken up in the same instant as base
    assert report.driver("high").eligible_at == report.driver("base").eligible_at


@pytest.mark.anyio
@pytest.mark.parametrize("schedule", SCHEDULES)
async def test_nothing_begins_before_its_requirements_and_afters_are_up(
    schedule: str,
) -> None:
    """Each driver's initialize begins after the autostart of all it needs ended."""
    rec = Recorder()
    report = await start_and_stop(runtime(*diamond(rec)).run(schedule=schedule))
    for name, needs in NEEDS.items():
        for need in needs:
            assert before(rec, ("auto-", need), ("init+", name)), (name, need)
            eligible = report.driver(name).eligible_at
            up = report.driver(need).phases["autostart"][1]
            assert eligible is not None
            assert up is not None
            assert eligible >= up, (name, need, eligible, up)
    assert all(r.status == "running" for r in report.drivers)


@pytest.mark.anyio
@pytest.mark.parametrize("schedule", SCHEDULES)
async def test_requirements_values_are_there_and_stay_until_the_stop(
    schedule: str,
) -> None:
    """ctx.get of a requirement gives its value in initialize and in stop."""
    seen: list[tuple[str, object]] = []
    rt = tiered.Runtime("values", schedule=schedule)

    @rt.driver(tier=0)
    async def store(ctx: tiered.Context) -> AsyncIterator[dict[str, str]]:
        yield {"key": "k1"}

    @rt.driver(tier=0)
    async def other(ctx: tiered.Context) -> AsyncIterator[str]:
        yield "other"

    @rt.driver(requires=[store], after=[other])
    async def user(ctx: tiered.Context) -> AsyncIterator[str]:
        seen.append(("initialize", ctx.get(store)["key"]))
        yield "user"
        seen.append(("stop", ctx.get(store)["key"]))

    async with rt.run() as run:
        assert run.get(user) == "user"
        assert run.plan.drivers["user"].tier == 1  # inferred from both
    assert seen == [("initialize", "k1"), ("stop", "k1")]


# -- stop and rollback order --------------------------------------------------------


def check_reverse_order(rec: Recorder, needs: dict[str, tuple[str, ...]]) -> None:
    """Every driver stopped once, and after everything that needs it."""
    for name in rec.names("init-"):
        assert rec.count("stop+", name) == 1, (name, rec.events)
        assert rec.count("stop-", name) == 1, (name, rec.events)
    for name, targets in needs.items():
        for target in targets:
            if rec.has("stop+", name) and rec.has("stop+", target):
                assert before(rec, ("stop-", name), ("stop+", target)), (
                    f"{target} stopped before {name}, which needs it: {rec.events}"
                )


@pytest.mark.anyio
@pytest.mark.parametrize("schedule", SCHEDULES)
async def test_stop_runs_in_reverse_dependency_order_exactly_once(
    schedule: str,
) -> None:
    """What requires or is after a driver has stopped before it stops, each once."""
    rec = Recorder()
    probes = diamond(rec)
    for p in probes:
        p.waits["stop"] = sleep(0.01)
    await start_and_stop(runtime(*probes).run(schedule=schedule))
    check_reverse_order(rec, NEEDS)
    assert rec.names("stop+") == {"a", "b", "c", "d", "e"}


@pytest.mark.anyio
async def test_unrelated_drivers_stop_concurrently() -> None:
    """z (tier 2) and a (tier 0), unrelated, stop at once; b still stops before a."""
    rec = Recorder()
    a_stops, z_stops = anyio.Event(), anyio.Event()

    async def a_stop(ctx: tiered.Context) -> None:
        a_stops.set()
        await z_stops.wait()  # z must have begun its stop too

    async def z_stop(ctx: tiered.Context) -> None:
        z_stops.set()
        await a_stops.wait()  # tier by tier, z would wait here for ever

    rt = runtime(
        Probe(rec, "a", 0, stop=a_stop),
        Probe(rec, "b", 1, requires=("a",)),
        Probe(rec, "z", 2, stop=z_stop),
        schedule="dependencies",
    )
    await start_and_stop(rt.run())
    assert before(rec, ("stop-", "b"), ("stop+", "a"))
    assert rec.count("stop-", "a") == rec.count("stop-", "z") == 1


@pytest.mark.anyio
@pytest.mark.parametrize("schedule", SCHEDULES)
async def test_rollback_stops_what_started_in_reverse_dependency_order(
    schedule: str,
) -> None:
    """A failure rolls back what started, in reverse order, each driver once."""
    rec = Recorder()
    probes = diamond(rec)
    for p in probes:
        p.waits["stop"] = sleep(0.01)
    bad = Probe(rec, "bad", 3, requires=("d",), after=("e",), fail="init")
    error = await failed_start(runtime(*probes, bad).run(schedule=schedule))
    assert noted_names(error) == ["bad"]
    assert "bad (tier 3)" in str(error)
    check_reverse_order(rec, NEEDS)
    assert rec.names("stop+") == {"a", "b", "c", "d", "e"}
    assert not rec.has("stop+", "bad")


# -- transactional start ------------------------------------------------------------


@pytest.mark.anyio
async def test_a_required_failure_cancels_what_starts_in_every_tier() -> None:
    """bad (tier 1) failing cancels slow (tier 0) and mid (tier 1); nothing new begins."""
    rec = Recorder()
    mid_began = anyio.Event()
    run = runtime(
        Probe(rec, "slow", 0, init=forever),
        Probe(rec, "fast", 0),
        Probe(rec, "mid", 1, requires=("fast",), init=setting(mid_began), auto=forever),
        Probe(rec, "bad", 1, requires=("fast",), init=wait_for(mid_began), fail="init"),
        Probe(rec, "on_slow", 2, requires=("slow",)),
        Probe(rec, "on_mid", 2, requires=("mid",)),
        Probe(rec, "on_bad", 2, after=("bad",)),
        schedule="dependencies",
    ).run()
    error = await failed_start(run)
    assert noted_names(error) == ["bad"]
    assert str(error).startswith("runtime 'dag' failed to start: bad (tier 1)")
    statuses = run.statuses()
    assert statuses == {
        "slow": "cancelled",
        "fast": "stopped",
        "mid": "stopped",  # initialized, cancelled in autostart: stopped
        "bad": "failed",
        "on_slow": "pending",
        "on_mid": "pending",
        "on_bad": "pending",
    }
    failed_at = rec.first("init!", "bad")
    assert failed_at is not None
    assert not [e for e in rec.events[failed_at:] if e[0] in ("init+", "auto+")]
    assert rec.has("init!", "slow")
    assert rec.has("auto!", "mid")
    assert before(rec, ("stop-", "mid"), ("stop+", "fast"))
    assert rec.count("stop+", "fast") == rec.count("stop+", "mid") == 1
    assert not rec.has("stop+", "slow")


def race_runtime(schedule: str) -> tiered.Runtime:
    """opt's background task fails in the very step its tier comes up.

    One event wakes slow's initialize (the last of tier 0) and then opt's
    background task: tier 0 comes up, user (tier 1) cannot start without
    opt, and the rollback's stop takes opt just before the stop that
    contains opt's failure does.  Two stops of one driver once hung the
    rollback for ever (fixed in _schedule.Stop; found here in dependency
    mode, pinned in both).
    """
    rt = tiered.Runtime("race", schedule=schedule)
    go = anyio.Event()

    @rt.driver(tier=0)
    async def trigger(ctx: tiered.Context) -> AsyncIterator[None]:
        await anyio.lowlevel.checkpoint()
        go.set()
        yield None

    @rt.driver(tier=0)
    async def slow(ctx: tiered.Context) -> AsyncIterator[None]:
        await go.wait()
        yield None

    @rt.driver(tier=0, optional=True)
    async def opt(ctx: tiered.Context) -> AsyncIterator[None]:
        async def boom() -> None:
            await go.wait()
            raise RuntimeError("opt's connection dropped")

        ctx.start_soon(boom)
        yield None

    @rt.driver(tier=1, requires=[opt])
    async def user(ctx: tiered.Context) -> AsyncIterator[None]:
        yield None

    return rt


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("backend", ["asyncio", "uvloop", "trio"])
def test_a_background_failure_as_its_tier_comes_up_never_hangs(
    backend: str, schedule: str
) -> None:
    """The race above ends, ten times over, with user failed, on every backend."""
    errors: list[BaseException | None] = []
    statuses: list[str] = []

    async def start() -> None:
        # ten times: trio orders the tasks it wakes at random, and loses
        # the race about every other time
        for _ in range(10):
            run = race_runtime(schedule).run()
            try:
                async with run:
                    pass
                errors.append(None)
            except BaseException as exc:  # handed to the test's thread
                errors.append(exc)
            statuses.append(run.statuses()["user"])

    def target() -> None:
        options = {"use_uvloop": True} if backend == "uvloop" else {}
        name = "trio" if backend == "trio" else "asyncio"
        anyio.run(start, backend=name, backend_options=options)

    # a deadlock in a shielded rollback defeats any timeout inside the loop,
    # so the loop runs in a thread that is given up on (it runs in ms)
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(1.0)
    assert not thread.is_alive(), "the run never ended"
    assert statuses == ["failed"] * 10
    if schedule == "tiers":  # user had not begun: it cannot, so start-up fails
        assert all(isinstance(e, tiered.StartupError) for e in errors), errors
        assert all(noted_names(e) == ["user"] for e in errors if e is not None)
    # dependencies: user was up, so opt's failure is contained, and what that
    # means for a required user is tests/test_dependencies_bugs.py's


@pytest.mark.anyio
@pytest.mark.parametrize("schedule", SCHEDULES)
async def test_a_failed_optional_requirement_skips_or_fails_its_dependents(
    schedule: str,
) -> None:
    """A failed driver's optional dependents are skipped; a required one fails start-up."""
    rec = Recorder()
    run = runtime(
        Probe(rec, "flaky", 0, optional=True, fail="init"),
        Probe(rec, "extra", 1, requires=("flaky",), optional=True),
        Probe(rec, "core", 1, requires=("flaky",)),
        schedule=schedule,
    ).run()
    error = await failed_start(run)
    assert noted_names(error) == ["core"]
    [exc] = error.exceptions
    assert isinstance(exc, tiered.DependencyError)
    assert "core (tier 1) cannot start: it requires flaky (tier 0)" in str(exc)
    report = run.report
    assert report.driver("flaky").status == "failed"
    assert report.driver("core").status == "failed"
    assert report.driver("extra").status in ("skipped", "pending")
    assert not rec.has("init+", "core")
    assert not rec.has("init+", "extra")


@pytest.mark.anyio
@pytest.mark.parametrize("schedule", SCHEDULES)
async def test_skips_and_optional_failures_let_the_run_start(schedule: str) -> None:
    """Skipped and failed optional drivers do not stop start-up; dependents skip."""
    rec = Recorder()
    run = runtime(
        Probe(rec, "kvm", 0, skip="init"),
        Probe(rec, "gpu", 0, optional=True, fail="auto"),
        Probe(rec, "net", 0),
        Probe(rec, "vms", 1, requires=("kvm",), optional=True),
        Probe(rec, "api", 1, requires=("net",), after=("gpu", "kvm")),
        schedule=schedule,
    ).run()
    async with run:
        assert run.statuses() == {
            "kvm": "skipped",
            "gpu": "failed",
            "net": "running",
            "vms": "skipped",
            "api": "running",
        }
        assert run.ready
    assert rec.count("stop+", "gpu") == 1  # initialized: stopped at once
    assert before(rec, ("stop-", "gpu"), ("init+", "api"))
    assert run.report.driver("vms").reason == (
        "requires 'kvm' (tier 0), which skipped: kvm does not apply"
    )


# -- after= -------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("schedule", SCHEDULES)
async def test_ctx_get_of_an_after_target_is_a_dependency_error(schedule: str) -> None:
    """after gives no value: ctx.get of it says to move it to requires."""
    rt = tiered.Runtime("after", schedule=schedule)
    errors: list[Exception] = []

    @rt.driver(tier=0)
    async def network(ctx: tiered.Context) -> AsyncIterator[str]:
        yield "net"

    @rt.driver(tier=1, after=[network])
    async def storage(ctx: tiered.Context) -> AsyncIterator[None]:
        try:
            ctx.get(network)
        except tiered.DependencyError as exc:
            errors.append(exc)
        yield None

    async with rt.run():
        pass
    [exc] = errors
    assert str(exc) == (
        "storage (tier 1) asked for 'network', which it is only after; after= "
        "orders drivers without giving their values: move it to "
        "requires=('network',) to use it"
    )


#: how the after-target goes wrong: (fail=, skip=) of its Probe
AFTER_TARGET_FAULTS: dict[str, tuple[str | None, str | None]] = {
    "fails in initialize": ("init", None),
    "fails in autostart": ("auto", None),
    "skips in initialize": (None, "init"),
    "skips in autostart": (None, "auto"),
}


@pytest.mark.anyio
@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("fault", list(AFTER_TARGET_FAULTS))
async def test_an_after_target_that_fails_optional_or_skips_leaves_its_dependent_be(
    schedule: str, fault: str
) -> None:
    """The dependent of a failed or skipped after-target starts, once it is over."""
    rec = Recorder()
    fail, skip = AFTER_TARGET_FAULTS[fault]
    target = Probe(rec, "target", 0, optional=True, fail=fail, skip=skip)
    run = runtime(
        target, Probe(rec, "dependent", 1, after=("target",)), schedule=schedule
    ).run()
    async with run:
        assert run.statuses()["dependent"] == "running"
        assert run.statuses()["target"] in ("failed", "skipped")
    for kind in ("init!", "auto!"):
        if rec.has(kind, "target"):
            assert before(rec, (kind, "target"), ("init+", "dependent"))
    assert run.report.driver("dependent").status == "stopped"


@pytest.mark.trio
@pytest.mark.parametrize("schedule", SCHEDULES)
async def test_an_after_target_that_times_out_leaves_its_dependent_be(
    schedule: str, autojump_clock: MockClock
) -> None:
    """An optional after-target that hangs: its dependent begins when it timed out."""
    rec = Recorder()
    run = runtime(
        Probe(rec, "target", 0, optional=True, init=forever, start_timeout=7),
        Probe(rec, "dependent", 1, after=("target",)),
        schedule=schedule,
    ).run()
    async with run:
        assert run.statuses() == {"target": "failed", "dependent": "running"}
        assert run.report.driver("dependent").phases["initialize"][0] == 7.0


@pytest.mark.anyio
async def test_a_required_after_target_that_fails_fails_the_run_alone() -> None:
    """A required after-target's failure fails start-up; its dependent never begins."""
    rec = Recorder()
    run = runtime(
        Probe(rec, "target", 0, fail="auto"),
        Probe(rec, "dependent", 1, after=("target",)),
        schedule="dependencies",
    ).run()
    error = await failed_start(run)
    assert noted_names(error) == ["target"]
    assert run.statuses() == {"target": "failed", "dependent": "pending"}
    assert not rec.has("init+", "dependent")
    assert rec.count("stop+", "target") == 1  # it had initialized
