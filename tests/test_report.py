"""The report as data, text, JSON and SVG; logging of transitions."""

from __future__ import annotations

import json
import logging
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

import pytest
import trio

import tiered

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
    bars = [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
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
