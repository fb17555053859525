"""The report of runs that wait and restart: dependency mode, the limit, supervision.

Issue 12 (``schedule="dependencies"``: the critical chain follows the
requirements; what a driver waited for is shown beside what it did) and
issue 13 (restarts: counts, the latest start's phases, the incidents in the
text and JSON; an optional driver contained rather than restarted).  Timings
on trio's ``autojump_clock``; what is about running on every backend.
"""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

import anyio
import pytest
import trio

import tiered
from support.reports import dependencies, report_of, restarting

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from trio.testing import MockClock

SVG = "{http://www.w3.org/2000/svg}"


# -- dependency mode (issue 12) ------------------------------------------------------


@pytest.mark.trio
async def test_the_dependency_chain_follows_the_requirements(
    autojump_clock: MockClock,
) -> None:
    """From qemu (up last) back through the requirement up last: storage, secrets."""
    report = await report_of(dependencies(), 1.0)
    assert report.schedule == "dependencies"
    assert [
        (c.tier, c.name, c.phase, c.start, c.end) for c in report.critical_chain()
    ] == [
        (0, "secrets", "initialize", 0.0, 1.0),
        (1, "storage", "initialize", 1.0, 2.0),
        (2, "qemu", "initialize", 2.0, 2.5),
    ]
    assert report.format_critical_chain().splitlines() == [
        "qemu (tier 2) up @2.500s",
        "  └─ secrets initialize +1.000s (@0.000s)",
        "  └─ storage initialize +1.000s (@1.000s)",
        "  └─ qemu initialize +0.500s (@2.000s)",
    ]
    assert "critical chain:\nqemu (tier 2) up @2.500s" in report.to_text()
    # the same plan under the barrier: per tier, the slowest of each
    run = dependencies().run(schedule="tiers")
    async with run:
        pass
    assert [(c.tier, c.name) for c in run.report.critical_chain()] == [
        (0, "nodedev"),
        (1, "storage"),
        (2, "qemu"),
    ]


@pytest.mark.trio
async def test_the_dependency_chain_follows_after(autojump_clock: MockClock) -> None:
    """A driver `after` a slow one: the chain goes back through the slow one."""
    rt = tiered.Runtime("virtd", schedule="dependencies")

    @rt.driver(tier=0)
    async def quick(ctx: tiered.Context) -> AsyncIterator[None]:
        await trio.sleep(1)
        yield

    @rt.driver(tier=0)
    async def slow(ctx: tiered.Context) -> AsyncIterator[None]:
        await trio.sleep(3)
        yield

    @rt.driver(requires=(quick,), after=(slow,))
    async def app(ctx: tiered.Context) -> AsyncIterator[None]:
        await trio.sleep(0.5)
        yield

    report = await report_of(rt, 1.0)
    assert [(c.name, c.start, c.end) for c in report.critical_chain()] == [
        ("slow", 0.0, 3.0),
        ("app", 3.0, 3.5),
    ]


@pytest.mark.trio
async def test_waiting_is_shown_beside_working(autojump_clock: MockClock) -> None:
    """waited (the limit) and eligible_at (requirements) show in records, blame, chain, JSON."""
    rt = tiered.Runtime("w", schedule="dependencies", max_concurrent_starts=1)
    for name in ("a", "b"):  # which of the two gets the one place first is trio's pick

        async def one(ctx: tiered.Context) -> AsyncIterator[None]:
            await trio.sleep(1)
            yield

        rt.driver(name=name, tier=0)(one)

    @rt.driver(requires=("a", "b"))
    async def c(ctx: tiered.Context) -> AsyncIterator[None]:
        await trio.sleep(0.5)
        yield

    report = await report_of(rt, 1.0)
    first, second = sorted(report.drivers[:2], key=lambda r: r.began_at or 0.0)
    assert [(r.eligible_at, r.began_at, r.waited) for r in (first, second)] == [
        (0.0, 0.0, 0.0),
        (0.0, 1.0, 1.0),
    ]
    last = report.driver("c")
    assert (last.eligible_at, last.began_at, last.waited) == (2.0, 2.0, 0.0)
    blame = report.format_blame().splitlines()
    limit = "waited 1.000s for max_concurrent_starts"
    assert f"    1.000s  {second.name} (tier 0)  {limit}" in blame
    assert "    0.500s  c (tier 1)  waited 2.000s for requirements" in blame
    line = "  c                    stopped   initialize 0.500s  stop 0.000s  waited 2.000s for requirements"
    assert line in report.to_text().splitlines()
    assert report.format_critical_chain().splitlines() == [
        "c (tier 1) up @2.500s",
        f"  └─ {second.name} initialize +1.000s (@1.000s, {limit})",
        "  └─ c initialize +0.500s (@2.000s)",
    ]
    data = json.loads(report.to_json())
    assert {d["name"]: d["waited"] for d in data["drivers"]} == {
        first.name: 0.0,
        second.name: 1.0,
        "c": 0.0,
    }


def test_both_waits_read_as_one_phrase() -> None:
    """A record that waited for requirements and then for a place says both, in that order."""
    record = tiered.DriverRecord(
        name="c",
        tier=1,
        status="running",
        optional=False,
        phases={"initialize": (2.0, 2.5)},
        eligible_at=1.0,
        requires=("a",),
    )
    report = tiered.Report(
        name="w",
        drivers=(record,),
        tiers=(),
        ready_at=2.5,
        schedule="dependencies",
        max_concurrent_starts=2,
    )
    assert record.waited == 1.0
    assert report.format_blame() == (
        "    0.500s  c (tier 1)  waited 1.000s for requirements, 1.000s for "
        "max_concurrent_starts"
    )
    # under the barrier the tier is the wait: only the limit's is said
    tiers = tiered.Report(
        name="w", drivers=(record,), tiers=(), ready_at=2.5, max_concurrent_starts=2
    )
    assert tiers.format_blame() == (
        "    0.500s  c (tier 1)  waited 1.000s for max_concurrent_starts"
    )
    # without a limit only a busy loop delays a driver: the limit is not named
    unlimited = tiered.Report(name="w", drivers=(record,), tiers=(), ready_at=2.5)
    assert unlimited.format_blame() == (
        "    0.500s  c (tier 1)  waited 1.000s to begin (the event loop was busy)"
    )


@pytest.mark.trio
async def test_a_failed_dependency_start_up_chains_to_the_failure(
    autojump_clock: MockClock,
) -> None:
    """In dependency mode the chain of a failed start-up ends at the driver that failed."""
    rt = tiered.Runtime("virtd", schedule="dependencies")

    @rt.driver(tier=0)
    async def secrets(ctx: tiered.Context) -> AsyncIterator[None]:
        await trio.sleep(1)
        yield

    @rt.driver(tier=0)
    async def network(ctx: tiered.Context) -> AsyncIterator[None]:
        await trio.sleep(10)  # pragma: no cover
        yield  # pragma: no cover

    @rt.driver(requires=(secrets,))
    async def storage(ctx: tiered.Context) -> AsyncIterator[None]:
        await trio.sleep(1.5)
        if ctx.name:  # always: the yield below stays reachable for mypy
            raise OSError("pool offline")
        yield  # pragma: no cover

    report = await report_of(rt)
    assert report.format_critical_chain().splitlines() == [
        "storage (tier 1) failed @2.500s",
        "  └─ secrets initialize +1.000s (@0.000s)",
        "  └─ storage initialize +1.500s (@1.000s)",
    ]
    assert report.to_text().startswith(
        "runtime 'virtd' did not come up: storage (tier 1) failed in initialize\n"
        "schedule: dependencies"
    )


# -- restarts (issue 13) -------------------------------------------------------------


@pytest.mark.trio
async def test_restarts_reach_the_text_json_and_records(
    autojump_clock: MockClock,
) -> None:
    """restarts, the latest start's phases, and the incidents listed with their times."""
    report = await report_of(restarting(), 30.0)
    storage, qemu = report.driver("storage"), report.driver("qemu")
    assert (storage.restarts, qemu.restarts) == (1, 1)
    assert storage.phases["initialize"] == pytest.approx((9.5, 10.5))
    assert [(e.kind, e.driver, e.value) for e in report.events] == [
        ("failure", "storage", "background"),
        ("restart", "storage", 2.0),
    ]
    assert [e.time for e in report.events] == pytest.approx([7.0, 7.0])
    text = report.to_text()
    assert text.split("after start-up:\n")[1].splitlines() == [
        "  @7.000s    failure  driver 'storage' (tier 1), phase background: "
        "ConnectionError: ceph backend lost",
        "  @7.000s    restart  storage (tier 1): restart 1 of 3 in 2s, with 1 "
        "driver(s) that require it",
        "  @10.500s   up       storage (tier 1) is up again (restart 1)",
        "  @11.000s   up       qemu (tier 2) is up again (restart 1)",
    ]
    assert "restarted 1x, latest start @9.500s" in text
    assert (
        "    1.000s  storage (tier 1)  restarted 1x (its latest start)"
        in report.format_blame().splitlines()
    )
    # the start-up's chain is not mixed up with the restart's phases
    assert [c.name for c in report.critical_chain()] == ["secrets"]
    assert "(restarted since: storage; the times of a first start are not kept)" in text
    events = json.loads(report.to_json())["events"]
    assert [(e["kind"], e["driver"], e["value"]) for e in events] == [
        ("failure", "storage", "background"),
        ("restart", "storage", 2.0),
    ]
    assert json.loads(report.to_json())["drivers"][1]["restarts"] == 1


@pytest.mark.trio
async def test_a_give_up_reaches_the_report(autojump_clock: MockClock) -> None:
    """Past max_restarts the give-up is an event, a text line and a failed record."""
    report = await report_of(restarting(give_up=True), 30.0)
    assert [e.kind for e in report.events] == [
        "failure",
        "restart",
        "failure",
        "gave-up",
    ]
    storage = report.driver("storage")
    assert (storage.status, storage.failed_in) == ("failed", "background")
    assert (
        "  @15.500s   gave-up  gave up restarting storage (tier 1) after 1 restart(s) "
        "within 60s"
    ) in report.to_text().splitlines()
    kinds = [e["kind"] for e in json.loads(report.to_json())["events"]]
    assert kinds == ["failure", "restart", "failure", "gave-up"]


@pytest.mark.anyio
async def test_a_restart_reaches_the_report_on_every_backend() -> None:
    """On asyncio, uvloop and trio, a restart leaves its events and count in the report."""
    rt = tiered.Runtime("virtd")
    lives = [0]

    @rt.driver(tier=0, restart=tiered.Restart(delay=0.01))
    async def storage(ctx: tiered.Context) -> AsyncIterator[None]:
        lives[0] += 1
        if lives[0] == 1:

            async def monitor() -> None:
                await anyio.sleep(0.01)
                raise ConnectionError("lost")

            ctx.start_soon(monitor)
        yield

    async with rt.run() as run:
        again = anyio.Event()

        def on(event: tiered.RunEvent) -> None:
            if event.kind == "state" and event.value == "running":
                again.set()

        run.listen(on)
        with anyio.fail_after(10):
            await again.wait()  # the run is running again: the restart is over
        report = run.report
    assert report.driver("storage").restarts == 1
    assert [e.kind for e in report.events] == ["failure", "restart"]
    assert report.driver("storage").up_at is not None
    assert "is up again (restart 1)" in report.to_text()


# -- failures contained, not restarted -------------------------------------------


@pytest.mark.trio
async def test_a_background_failure_during_start_up_is_failed_in_background(
    autojump_clock: MockClock,
) -> None:
    """An optional driver whose task raises while start-up runs: failed_in background."""
    rt = tiered.Runtime("virtd")

    @rt.driver(tier=0, optional=True)
    async def watcher(ctx: tiered.Context) -> AsyncIterator[None]:
        async def crash() -> None:
            raise ConnectionError("lost at once")

        ctx.start_soon(crash)
        yield

    @rt.driver(tier=0)
    async def slow(ctx: tiered.Context) -> AsyncIterator[None]:
        await trio.sleep(1)  # start-up still runs when watcher's task fails
        yield

    record = (await report_of(rt, 1.0)).driver("watcher")
    assert (record.status, record.failed_in) == ("failed", "background")
    assert record.error == "ConnectionError: lost at once"


@dataclasses.dataclass(frozen=True)
class _NoNotes(Exception):
    """An exception that takes no notes (``add_note`` raises FrozenInstanceError)."""


@pytest.mark.trio
async def test_failed_in_needs_no_note_on_the_exception(
    autojump_clock: MockClock,
) -> None:
    """An optional driver's background task raises what takes no notes: still failed_in background.

    The report reads the phase from the failure's record; it used to read it
    from the exception's note, and without one it said "initialize".
    """
    rt = tiered.Runtime("virtd")

    @rt.driver(tier=0, optional=True)
    async def watcher(ctx: tiered.Context) -> AsyncIterator[None]:
        async def crash() -> None:
            await trio.sleep(1)  # after start-up
            raise _NoNotes

        ctx.start_soon(crash)
        yield

    record = (await report_of(rt, 5.0)).driver("watcher")
    assert (record.status, record.failed_in) == ("failed", "background")
    assert record.error == "_NoNotes"


@pytest.mark.anyio
async def test_a_containment_after_start_up_is_listed_once_as_such() -> None:
    """The failure, then "contained": the optional subtree stops, the run goes on."""
    rt = tiered.Runtime("virtd")
    crash_now = anyio.Event()

    @rt.driver(tier=0, optional=True)
    async def watcher(ctx: tiered.Context) -> AsyncIterator[None]:
        async def crash() -> None:
            await crash_now.wait()
            raise ConnectionError("lost")

        ctx.start_soon(crash)
        yield

    async def until_contained(run: tiered.Run) -> None:
        stopped = anyio.Event()

        def on(event: tiered.RunEvent) -> None:
            if event.kind == "driver" and event.driver == "watcher":
                stopped.set()

        run.listen(on)
        crash_now.set()
        with anyio.fail_after(10):
            await stopped.wait()

    report = await report_of(rt, until_contained)
    lines = report.format_events().splitlines()
    assert [line.split()[1:] for line in lines] == [
        [
            "failure",
            "driver",
            "'watcher'",
            "(tier",
            "0),",
            "phase",
            "background:",
            "ConnectionError:",
            "lost",
        ],
        [
            "failure",
            "watcher",
            "(tier",
            "0)",
            "contained:",
            "it",
            "and",
            "the",
            "optional",
            "drivers",
            "that",
            "require",
            "it",
            "stop;",
            "the",
            "run",
            "goes",
            "on",
        ],
    ]
    root = ET.fromstring(report.to_svg())
    crosses = [
        el
        for el in root.iter(f"{SVG}path")
        if el.get("class") == "crash" and el.find(f"{SVG}title") is not None
    ]
    assert len(crosses) == 1  # one failure, one cross


@pytest.mark.trio
async def test_a_restart_loop_keeps_a_bounded_record(autojump_clock: MockClock) -> None:
    """A driver that fails every 2 s for hours keeps the latest 1,000 incidents and counts the rest.

    Its failures are further apart than ``window``, so it never gives up:
    before, ``report.events`` grew by two events a cycle for as long as the
    daemon ran.
    """
    from tiered.testing import FaultyDriver

    rt = tiered.Runtime("virtd")
    policy = tiered.Restart(max_restarts=1, window=1.0, delay=0.01)
    rt.add(FaultyDriver("storage", restart=policy, crash_after=2.0, crash_times=700))
    async with rt.run() as run:
        await trio.sleep(700 * 2.01 + 5)
        report = run.report
    assert report.driver("storage").restarts == 700
    assert len(report.events) == 1000
    assert report.events_dropped == 2 * 700 - 1000
    assert [e.kind for e in report.events[-2:]] == ["failure", "restart"]
    assert report.events[0].time < report.events[-1].time
    text = report.to_text()
    assert "(400 earlier event(s) not kept)" in text
    assert json.loads(report.to_json())["events_dropped"] == 400
