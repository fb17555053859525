"""The report as data, text, JSON and SVG; logging of transitions."""

from __future__ import annotations

import json
import logging
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel
import pytest
import trio

import tiered
from support.reports import failing, report_of
from support.reports import virtd as small_virtd

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from trio.testing import MockClock

SVG = "{http://www.w3.org/2000/svg}"
#: the value that must never leak
SECRET = "AQBcephx-key-4f8e0d7c9b"


def virtd() -> tiered.Runtime:
    """Three tiers; storage gets a CephX-like key from secrets."""
    rt = tiered.Runtime("virtd", stop_timeout=5)

    @rt.driver(tier=0)
    async def secrets(ctx: tiered.Context) -> AsyncIterator[dict[str, str]]:
        await trio.sleep(1)
        yield {"ceph": SECRET}
        await trio.sleep(0.5)

    @rt.driver(tier=0)
    async def network(ctx: tiered.Context) -> AsyncIterator[None]:
        await trio.sleep(2)
        yield

    class Storage(tiered.Driver):
        requires = (secrets,)

        async def initialize(self, ctx: tiered.Context) -> None:
            self.key = ctx.get(secrets)["ceph"]
            await trio.sleep(1)

        async def autostart(self, ctx: tiered.Context) -> None:
            ctx.status("pool rbd active")
            await trio.sleep(3)

    rt.add(Storage())

    @rt.driver(requires=(Storage, network))
    async def qemu(ctx: tiered.Context) -> AsyncIterator[None]:
        await trio.sleep(0.5)
        yield

    @rt.driver(tier=0, optional=True)
    async def broken(ctx: tiered.Context) -> AsyncIterator[None]:
        if ctx.name == "broken":
            raise OSError("no such device")
        yield  # pragma: no cover

    return rt


async def full_report() -> tiered.Report:
    """The report of one full virtd run (on the test's virtual clock)."""
    run = virtd().run()
    async with run:
        await trio.sleep(100)
    return run.report


@pytest.mark.trio
async def test_records_and_tiers(autojump_clock: MockClock) -> None:
    """One record per driver in tier order, with statuses and tier durations."""
    report = await full_report()
    assert [(r.name, r.tier, r.status) for r in report.drivers] == [
        ("secrets", 0, "stopped"),
        ("network", 0, "stopped"),
        ("broken", 0, "failed"),
        ("storage", 1, "stopped"),
        ("qemu", 2, "stopped"),
    ]
    assert [t.duration for t in report.tiers] == pytest.approx([2.0, 4.0, 0.5])
    assert report.ready_at == pytest.approx(6.5)
    assert report.driver("storage").status_text == "pool rbd active"
    assert report.driver("broken").error == "OSError: no such device"
    assert "stop" not in report.driver("broken").phases
    assert "autostart" not in report.driver("secrets").phases


@pytest.mark.trio
async def test_blame_and_critical_chain(autojump_clock: MockClock) -> None:
    """blame() is slowest first; the chain names what each barrier waited on."""
    report = await full_report()
    assert [r.name for r in report.blame()][:2] == ["storage", "network"]
    chain = report.critical_chain()
    assert [(c.tier, c.name, c.phase) for c in chain] == [
        (0, "network", "initialize"),
        (1, "storage", "initialize"),
        (1, "storage", "autostart"),
        (2, "qemu", "initialize"),
    ]
    assert [c.duration for c in chain] == pytest.approx([2.0, 1.0, 3.0, 0.5])
    text = report.to_text()
    assert "runtime 'virtd' was up in 6.500s" in text
    assert "tier 1 up @6.000s" in text
    assert "└─ storage autostart +3.000s (@3.000s)" in text


@pytest.mark.trio
async def test_json_round_trips(autojump_clock: MockClock) -> None:
    """to_json() is plain JSON with the same facts."""
    report = await full_report()
    data = json.loads(report.to_json())
    assert data["name"] == "virtd"
    assert data["ready_at"] == pytest.approx(6.5)
    by_name = {d["name"]: d for d in data["drivers"]}
    assert by_name["storage"]["phases"]["autostart"] == pytest.approx([3.0, 6.0])
    assert data["critical_chain"][0]["name"] == "network"
    assert [t["index"] for t in data["tiers"]] == [0, 1, 2]


@pytest.mark.trio
async def test_svg_is_a_timeline_grouped_by_tier(autojump_clock: MockClock) -> None:
    """to_svg() is well-formed SVG: one bar per driver and phase, tier labels."""
    report = await full_report()
    root = ET.fromstring(report.to_svg())
    assert root.tag == f"{SVG}svg"
    bars = [r for r in root.iter(f"{SVG}rect") if "bar" in r.get("class", "").split()]
    expected = sum(
        1 for r in report.drivers for t in r.phases.values() if t[1] is not None
    )
    assert len(bars) == expected
    labels = [t.text for t in root.iter(f"{SVG}text") if t.text]
    assert {"tier 0 (2.000s)", "tier 1 (4.000s)", "tier 2 (0.500s)"} <= set(labels)
    # the run was up for ~100 s: that stretch is cut out of the axis
    assert any(label.startswith("up for ") for label in labels)


@pytest.mark.trio
async def test_secret_values_never_reach_the_report(
    autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A value handed between drivers is not in the text, JSON, SVG or logs."""
    caplog.set_level(logging.DEBUG)
    report = await full_report()
    for rendering in (
        report.to_text(),
        report.to_json(),
        report.to_svg(),
        repr(report),
    ):
        assert SECRET not in rendering
    assert SECRET not in caplog.text


@pytest.mark.trio
async def test_one_log_record_per_transition_with_duration(
    autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """At INFO a driver logs once when it is up (with its start-up time) and once when stopped."""
    caplog.set_level(logging.INFO, logger="tiered")
    async with virtd().run():
        pass
    storage = [
        r for r in caplog.records if getattr(r, "tiered_driver", None) == "storage"
    ]
    messages = [r.getMessage() for r in storage]
    assert messages == [
        "storage (tier 1): pool rbd active",
        "storage (tier 1) is up (4.000s)",
        "storage (tier 1) stopped",
    ]
    durations = [getattr(r, "tiered_duration", None) for r in storage]
    assert durations[1] == pytest.approx(4.0)
    assert all(r.name == "tiered" for r in storage)
    broken = [
        r for r in caplog.records if getattr(r, "tiered_driver", None) == "broken"
    ]
    assert [r.levelno for r in broken] == [logging.WARNING]
    caplog.clear()
    caplog.set_level(logging.DEBUG, logger="tiered")
    async with virtd().run():
        pass
    debug = [
        r.getMessage()
        for r in caplog.records
        if getattr(r, "tiered_driver", None) == "storage" and r.levelno == logging.DEBUG
    ]
    assert debug == ["storage (tier 1) initialized (1.000s)"]


def test_report_before_the_run_lists_pending_drivers() -> None:
    """A run not entered yet reports every driver as pending."""
    run = virtd().run()
    assert {r.status for r in run.report.drivers} == {"pending"}
    assert run.report.tiers == ()
    ET.fromstring(run.report.to_svg())  # still renders


# -- a start-up that failed (issue 17) --------------------------------------------


@pytest.mark.trio
async def test_a_tier_whose_barrier_never_passed_is_not_up_anywhere(
    autojump_clock: MockClock,
) -> None:
    """The failed tier has end None and says "not up" in the chain, text and JSON."""
    report = await report_of(failing())
    assert [(t.index, t.end, t.up) for t in report.tiers] == [
        (0, 1.0, True),
        (1, None, False),
    ]
    text = report.to_text()
    assert text.splitlines()[0] == (
        "runtime 'virtd' did not come up: storage (tier 1) failed in initialize"
    )
    assert "tier 1 (not up)" in text.splitlines()
    assert "tier 1 up" not in text
    assert report.format_critical_chain().splitlines() == [
        "tier 0 up @1.000s",
        "  └─ secrets initialize +1.000s (@0.000s)",
        "tier 1 not up: storage failed in initialize",
        "  └─ storage initialize +1.500s (@1.000s)",
    ]
    tiers = json.loads(report.to_json())["tiers"]
    assert [(t["end"], t["up"]) for t in tiers] == [(1.0, True), (None, False)]


@pytest.mark.anyio
async def test_drivers_of_tiers_that_never_began_are_listed() -> None:
    """A pending tier 2 and 3 after a failed tier 1 appear, each driver "never began"."""
    rt = tiered.Runtime("virtd")

    @rt.driver(tier=0)
    async def base(ctx: tiered.Context) -> AsyncIterator[None]:
        yield

    @rt.driver(tier=1)
    async def storage(ctx: tiered.Context) -> AsyncIterator[None]:
        await anyio.lowlevel.checkpoint()
        if ctx.name:  # always: the yield below stays reachable for mypy
            raise OSError("pool offline")
        yield  # pragma: no cover

    @rt.driver(tier=2)
    async def qemu(ctx: tiered.Context) -> AsyncIterator[None]:
        yield  # pragma: no cover

    @rt.driver(tier=3, requires=(qemu,))
    async def lxc(ctx: tiered.Context) -> AsyncIterator[None]:
        yield  # pragma: no cover

    run = rt.run()
    with pytest.raises(tiered.StartupError):
        async with run:
            pass  # pragma: no cover
    report = run.report
    assert [(r.name, r.status, dict(r.phases)) for r in report.drivers[2:]] == [
        ("qemu", "pending", {}),
        ("lxc", "pending", {}),
    ]
    lines = report.to_text().splitlines()
    for tier, name in ((2, "qemu"), (3, "lxc")):
        head = lines.index(f"tier {tier} (not begun)")
        assert lines[head + 1] == f"  {name:<20} pending  [never began]"


@pytest.mark.anyio
async def test_a_cancelled_driver_names_the_driver_that_failed() -> None:
    """A sibling cancelled by a failure says which driver failed, in text and JSON."""
    rt = tiered.Runtime("virtd")

    @rt.driver(tier=1)
    async def storage(ctx: tiered.Context) -> AsyncIterator[None]:
        await anyio.lowlevel.checkpoint()
        if ctx.name:  # always: the yield below stays reachable for mypy
            raise OSError("pool offline")
        yield  # pragma: no cover

    @rt.driver(tier=1)
    async def network(ctx: tiered.Context) -> AsyncIterator[None]:
        await anyio.Event().wait()  # until cancelled
        yield  # pragma: no cover

    run = rt.run()
    with pytest.raises(tiered.StartupError):
        async with run:
            pass  # pragma: no cover
    record = run.report.driver("network")
    assert (record.status, record.reason) == (
        "cancelled",
        "cancelled: storage (tier 1) failed",
    )
    assert "[cancelled: storage (tier 1) failed]" in run.report.to_text()
    by_name = {d["name"]: d for d in json.loads(run.report.to_json())["drivers"]}
    assert by_name["network"]["reason"] == "cancelled: storage (tier 1) failed"


@pytest.mark.anyio
async def test_failed_in_names_the_phase_of_each_failure() -> None:
    """failed_in says initialize, autostart, stop or background; None otherwise."""
    rt = tiered.Runtime("virtd")
    crash_now = anyio.Event()

    @rt.driver(tier=0, optional=True)
    async def early(ctx: tiered.Context) -> AsyncIterator[None]:
        if ctx.name:  # always: the yield below stays reachable for mypy
            raise OSError("no device")
        yield  # pragma: no cover

    class Late(tiered.Driver):
        name, tier, optional = "late", 0, True

        async def initialize(self, ctx: tiered.Context) -> None:
            pass

        async def autostart(self, ctx: tiered.Context) -> None:
            raise RuntimeError("cannot autostart")

    rt.add(Late())

    @rt.driver(tier=0)
    async def stopper(ctx: tiered.Context) -> AsyncIterator[None]:
        yield
        raise RuntimeError("cannot stop")

    @rt.driver(tier=0, optional=True)
    async def watcher(ctx: tiered.Context) -> AsyncIterator[None]:
        async def crash() -> None:
            await crash_now.wait()  # once the run is up: after start-up
            raise ConnectionError("lost")

        ctx.start_soon(crash)
        yield

    @rt.driver(tier=0)
    async def skipper(ctx: tiered.Context) -> AsyncIterator[None]:
        if ctx.name:  # always: the yield below stays reachable for mypy
            raise tiered.Skip("not here")
        yield  # pragma: no cover

    async def until_contained(run: tiered.Run) -> None:
        contained = anyio.Event()

        def on(event: tiered.RunEvent) -> None:
            # its containment's stop is over (leaving before that hangs the
            # run: tests/test_supervision.py::
            # test_a_containment_during_another_stop_never_hangs)
            if event.kind == "driver" and event.driver == "watcher":
                contained.set()

        run.listen(on)
        crash_now.set()
        with anyio.fail_after(10):
            await contained.wait()

    report = await report_of(rt, until_contained)  # leaving raises ShutdownError
    assert {r.name: r.failed_in for r in report.drivers} == {
        "early": "initialize",
        "late": "autostart",
        "stopper": "stop",
        "watcher": "background",
        "skipper": None,
    }
    assert "[failed in autostart: RuntimeError: cannot autostart]" in report.to_text()
    by_name = {d["name"]: d for d in json.loads(report.to_json())["drivers"]}
    assert by_name["stopper"]["failed_in"] == "stop"


@pytest.mark.trio
async def test_a_timeout_is_recorded_as_one(autojump_clock: MockClock) -> None:
    """A hook past its start_timeout: failed_in its phase, timed_out True."""
    rt = tiered.Runtime("virtd", start_timeout=2)

    @rt.driver(tier=0)
    async def storage(ctx: tiered.Context) -> AsyncIterator[None]:
        await trio.sleep(10)
        yield  # pragma: no cover

    record = (await report_of(rt)).driver("storage")
    assert (record.failed_in, record.timed_out) == ("initialize", True)
    assert record.phases["initialize"] == (0.0, 2.0)
    assert not (await report_of(failing())).driver("storage").timed_out


@pytest.mark.trio
async def test_up_at_is_when_a_driver_came_up(autojump_clock: MockClock) -> None:
    """up_at: the end of autostart, or of initialize; None if it never came up."""
    report = await report_of(small_virtd())
    assert {r.name: r.up_at for r in report.drivers} == {
        "secrets": 1.0,
        "network": 2.0,
        "broken": None,  # failed
        "nodedev": None,  # skipped
        "storage": 6.0,  # its autostart's end
        "qemu": 6.5,
    }
    failed = await report_of(failing())
    assert [failed.driver(n).up_at for n in ("secrets", "storage", "network")] == [
        1.0,
        None,  # failed
        None,  # cancelled
    ]


@pytest.mark.trio
async def test_up_at_waits_for_the_barrier(autojump_clock: MockClock) -> None:
    """Read while its tier still starts, a driver done with initialize is not up yet."""
    rt = tiered.Runtime("virtd")
    seen: list[float | None] = []

    class Quick(tiered.Driver):
        name, tier = "quick", 0

        async def initialize(self, ctx: tiered.Context) -> None:
            await trio.sleep(1)

        async def autostart(self, ctx: tiered.Context) -> None:
            await trio.sleep(0.5)

    rt.add(Quick())

    @rt.driver(tier=0)
    async def slow(ctx: tiered.Context) -> AsyncIterator[None]:
        await trio.sleep(2)
        seen.append(run.report.driver("quick").up_at)  # quick is at the barrier
        yield

    run = rt.run()
    async with run:
        assert run.report.driver("quick").up_at == 2.5
    assert seen == [None]


@pytest.mark.anyio
async def test_phase_times_are_finer_than_a_millisecond() -> None:
    """A 0.3 ms hook takes about 0.3 ms in the report, on every backend.

    uvloop's loop clock counts whole milliseconds: the report said 0.000s or
    0.001s for such a hook, and a trace shifted its spans by up to 1 ms.
    """
    import time

    runtime = tiered.Runtime("fine")

    @runtime.driver
    async def busy(ctx: tiered.Context) -> AsyncIterator[None]:
        until = time.perf_counter() + 0.0003
        while time.perf_counter() < until:  # busy, without an await
            pass
        yield

    async with runtime.run() as run:
        pass
    began, ended = run.report.driver("busy").phases["initialize"]
    assert ended is not None
    assert 0.0003 <= ended - began < 0.005
    assert round((ended - began) * 1000, 6) % 1 != 0, (began, ended)
