"""A pytest-trio suite for virtd, the small daemon of the testing guide.

Every test runs under trio with pytest-trio's ``autojump_clock``: when every
task sleeps, the clock jumps to the next deadline, so the daemon's seconds
of start-up and the 90 s timeouts pass in milliseconds, and every time in the
report is exact.  Run it with ``pytest examples/testing``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import pytest
import trio
import virtd

import tiered
from tiered.testing import FaultyDriver, InjectedFault, Recorder

if TYPE_CHECKING:
    from trio.testing import MockClock

pytestmark = pytest.mark.trio


@pytest.fixture
def tiered_runtime() -> tiered.Runtime:
    """virtd as it ships: what the ``tiered_run`` fixture runs for each test."""
    return virtd.build_runtime()


def statuses(run: tiered.Run) -> dict[str, str]:
    """Each driver's status, from the run's report."""
    return {record.name: record.status for record in run.report.drivers}


async def test_every_tier_comes_up(
    tiered_run: tiered.Run, autojump_clock: MockClock
) -> None:
    """Storage activated its pools and qemu reconnected every guest."""
    assert tiered_run.get(virtd.Storage).active == {"default", "images"}
    assert tiered_run.get(virtd.Qemu).guests == ["web", "db"]


async def test_startup_takes_six_and_a_half_seconds(
    tiered_run: tiered.Run, autojump_clock: MockClock
) -> None:
    """In virtual time the report's times are exact: 0.5 + 2 * 2 + 1 + 2 * 0.5 s."""
    report = tiered_run.report
    assert report.ready_at == pytest.approx(6.5)
    assert [f"{link.name}.{link.phase}" for link in report.critical_chain()] == [
        "secrets.initialize",
        "storage.initialize",
        "storage.autostart",
        "qemu.initialize",
        "qemu.autostart",
    ]


async def test_pools_are_active_before_qemu_starts(
    tiered_run: tiered.Run, autojump_clock: MockClock
) -> None:
    """The race libvirt's tiers fixed: no guest is reconnected before its pool."""
    report = tiered_run.report
    _, pools_up = report.driver("storage").phases["autostart"]
    qemu_begins, _ = report.driver("qemu").phases["initialize"]
    assert pools_up is not None
    assert pools_up <= qemu_begins


async def test_qemu_checks_on_guests_every_ten_seconds(
    tiered_run: tiered.Run, autojump_clock: MockClock
) -> None:
    """Thirty-five virtual seconds later, the background task checked three times."""
    await trio.sleep(35)
    assert tiered_run.get(virtd.Qemu).checks == 3


@pytest.mark.parametrize(
    "tiered_runtime",
    [virtd.build_runtime(FaultyDriver("exporter", tier=3, delay={"initialize": 85}))],
    ids=["slow-exporter"],
)
async def test_a_slow_driver_within_its_timeout_delays_startup(
    tiered_run: tiered.Run, autojump_clock: MockClock
) -> None:
    """An extra driver that takes 85 s is slow, not failed: 90 s is the limit."""
    assert tiered_run.report.ready_at == pytest.approx(6.5 + 85)
    assert statuses(tiered_run)["exporter"] == "running"


async def test_a_hung_driver_fails_startup_after_90_seconds(
    autojump_clock: MockClock,
) -> None:
    """A driver hung in tier 3 times out after 90 s; every tier below is stopped."""
    run = virtd.build_runtime(
        FaultyDriver("exporter", tier=3, hang_in="initialize")
    ).run()
    start = trio.current_time()
    with pytest.raises(tiered.StartupError) as info:
        async with run:
            pytest.fail("start-up should have failed")
    assert info.group_contains(tiered.DriverTimeout)
    # 6.5 s to bring tiers 0-2 up, 90 s of waiting, 1 s to unmount the pools
    assert trio.current_time() - start == pytest.approx(6.5 + 90 + 1)
    assert statuses(run) == {
        "secrets": "stopped",
        "storage": "stopped",
        "qemu": "stopped",
        "exporter": "failed",
    }


@pytest.mark.parametrize("phase", ["initialize", "autostart"])
async def test_a_failure_beside_storage_leaves_nothing_running(
    phase: Literal["initialize", "autostart"],
    tiered_recorder: Recorder,
    autojump_clock: MockClock,
) -> None:
    """A tier-1 sibling of storage fails: storage and secrets stop, qemu never starts."""
    nfs = FaultyDriver("nfs", tier=1, fail_in=phase, recorder=tiered_recorder)
    run = virtd.build_runtime(nfs).run()
    with pytest.raises(tiered.StartupError) as info:
        async with run:
            pytest.fail("start-up should have failed")
    assert info.group_contains(InjectedFault)
    report = run.report
    assert "stop" in report.driver("storage").phases
    assert "stop" in report.driver("secrets").phases
    assert report.driver("qemu").status == "pending"
    if phase == "initialize":
        tiered_recorder.assert_not_stopped("nfs")  # it never initialized
    else:
        tiered_recorder.assert_stopped_exactly_once("nfs")


async def test_a_stop_that_hangs_is_cut_after_90_seconds(
    autojump_clock: MockClock,
) -> None:
    """A hung stop fails after 90 s, and never keeps the other drivers running."""
    run = virtd.build_runtime(FaultyDriver("exporter", tier=3, hang_in="stop")).run()
    with pytest.raises(tiered.ShutdownError) as info:
        async with run:
            start = trio.current_time()
    assert info.group_contains(tiered.DriverTimeout)
    assert trio.current_time() - start == pytest.approx(90 + 1)
    assert statuses(run) == {
        "secrets": "stopped",
        "storage": "stopped",
        "qemu": "stopped",
        "exporter": "failed",
    }


async def test_drivers_added_around_virtd_start_and_stop_in_tier_order(
    tiered_recorder: Recorder, autojump_clock: MockClock
) -> None:
    """Probes below and above virtd's tiers: up in tier order, down in reverse."""
    below = FaultyDriver("config", tier=0, recorder=tiered_recorder)
    above = FaultyDriver("exporter", tier=3, recorder=tiered_recorder)
    async with virtd.build_runtime(below, above).run():
        tiered_recorder.assert_started_before("config", "exporter")
    tiered_recorder.assert_stopped_in_reverse()
    tiered_recorder.assert_stopped_exactly_once()
    assert tiered_recorder.stopped() == ["exporter", "config"]
