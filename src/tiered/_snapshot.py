"""A run's :class:`Report`, read from its slots: a fresh, frozen snapshot each time.

One-way: the run's rooms write their slots; this reads them and builds pure
data, which holds names, statuses, times and error descriptions, never a
driver's value (tests/test_report.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._exceptions import describe
from ._report import DriverRecord, Report, TierRecord

if TYPE_CHECKING:
    from ._core import Core
    from ._slot import Slot

__all__ = ["build_report"]


def build_report(core: Core) -> Report:
    """Everything the report shows, as of now."""
    return Report(
        name=core.name,
        drivers=tuple(_record(slot) for slot in core.order),
        tiers=tuple(
            TierRecord(index=t.index, drivers=t.names, start=t.start, end=t.end)
            for t in core.tiers
        ),
        ready_at=core.ready_at,
        stopping_at=core.stopping_at,
        stopped_at=core.stopped_at,
        schedule=core.schedule_name,
        max_concurrent_starts=core.max_concurrent_starts,
        events=tuple(core.journal.incidents),
        events_dropped=core.journal.dropped,
    )


def _record(slot: Slot) -> DriverRecord:
    d = slot.d
    failed_in = _failed_in(slot)
    return DriverRecord(
        name=slot.name,
        tier=slot.tier,
        status=slot.status,
        optional=d.optional,
        phases=_phases(slot),
        error=describe(slot.error) if slot.error is not None else None,
        reason=slot.reason,
        status_text=slot.status_text,
        requires=d.requires,
        after=d.after,
        restarts=slot.restarts,
        eligible_at=slot.eligible_at,
        failed_in=failed_in,
        up_at=_up_at(slot, failed_in),
    )


def _failed_in(slot: Slot) -> str | None:
    """The phase of the driver's own failure, as its Failure record says."""
    if slot.outcome != "failed" or slot.error is None:
        return None  # not failed, or failed because a requirement did
    return slot.failed_in


def _up_at(slot: Slot, failed_in: str | None) -> float | None:
    """When the latest start was over with the driver up, or None."""
    if slot.init_end is None or slot.outcome in ("skipped", "cancelled"):
        return None
    if failed_in in ("initialize", "autostart"):
        return None
    if slot.d.spec.has_autostart:  # None while at the barrier or in autostart
        return slot.auto_end
    return slot.init_end


def _phases(slot: Slot) -> dict[str, tuple[float, float | None]]:
    """The report's phases of a driver, in the order they run."""
    phases: dict[str, tuple[float, float | None]] = {}
    if slot.init_at is not None:
        phases["initialize"] = (slot.init_at, slot.init_end)
    if slot.auto_at is not None:
        phases["autostart"] = (slot.auto_at, slot.auto_end)
    if slot.reload_at is not None:
        phases["reload"] = (slot.reload_at, slot.reload_end)
    if slot.stop_at is not None:
        phases["stop"] = (slot.stop_at, slot.stop_end)
    return phases
