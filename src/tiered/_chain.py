"""The critical chain of a report: what start-up waited on.

Two readings, one per schedule (``Report.schedule``):

* ``"tiers"``: per tier, the driver whose ``initialize`` ended last (every
  ``autostart`` of the tier waited for it at the barrier), then the one
  whose ``autostart`` ended last (the next tier waited for it);
* ``"dependencies"``: there is no barrier, so the chain follows the
  requirements, as ``systemd-analyze critical-chain`` does: from the driver
  that came up last, back at each step to the requirement (or ``after``)
  that came up last before it began.

A driver restarted after start-up keeps only its latest start's phases
(``DriverRecord.restarts``); those lie after start-up and are left out, so
the chain never mixes a restart into the start-up it explains.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._report import ChainLink, DriverRecord, Report

__all__ = ["critical_chain", "target"]

#: times come from one clock, but sums of floats may differ in the last bit
_EPS = 1e-9


def critical_chain(report: Report) -> tuple[ChainLink, ...]:
    """The chain of ``report``, first link first."""
    if report.schedule == "dependencies":
        return _by_requirements(report)
    return _by_tiers(report)


def _by_tiers(report: Report) -> tuple[ChainLink, ...]:
    from ._report import ChainLink

    by_name = {r.name: r for r in report.drivers}
    chain: list[ChainLink] = []
    for tier in report.tiers:
        # a tier that came up: only what ended by its barrier (not a restart)
        until = tier.end + _EPS if tier.end is not None else float("inf")
        for phase in ("initialize", "autostart"):
            best: ChainLink | None = None
            for name in tier.drivers:
                times = by_name[name].phases.get(phase)
                if times is None or times[1] is None or times[1] > until:
                    continue
                if best is None or times[1] > best.end:
                    best = ChainLink(tier.index, name, phase, times[0], times[1])
            if best is not None:
                chain.append(best)
    return tuple(chain)


def target(report: Report) -> tuple[DriverRecord, bool] | None:
    """Where a dependency chain ends, and whether that driver failed.

    The required driver whose failure stopped start-up (the first to fail),
    or else the driver that came up last by ``ready_at``.
    """
    failed = [
        r
        for r in report.drivers
        if not r.optional and r.failed_in in ("initialize", "autostart")
    ]
    if failed and report.ready_at is None:
        first = min(failed, key=lambda r: _end_of(r, r.failed_in or ""))
        return first, True
    until = (report.ready_at if report.ready_at is not None else float("inf")) + _EPS
    up = [r for r in report.drivers if r.up_at is not None and r.up_at <= until]
    if not up:
        return None
    return max(up, key=lambda r: r.up_at or 0.0), False


def _end_of(record: DriverRecord, phase: str) -> float:
    times = record.phases.get(phase)
    if times is None or times[1] is None:
        return float("inf")
    return times[1]


def _by_requirements(report: Report) -> tuple[ChainLink, ...]:
    found = target(report)
    if found is None:
        return ()
    by_name = {r.name: r for r in report.drivers}
    steps: list[DriverRecord] = []
    current: DriverRecord | None = found[0]
    seen: set[str] = set()
    while current is not None and current.name not in seen:
        seen.add(current.name)
        steps.append(current)
        began = current.began_at
        if began is None:
            break
        before = [
            by_name[n]
            for n in (*current.requires, *current.after)
            if n in by_name
            and (up := by_name[n].up_at) is not None
            and up <= began + _EPS
        ]
        current = max(before, key=lambda r: r.up_at or 0.0) if before else None
    return tuple(link for r in reversed(steps) for link in _links(r))


def _links(record: DriverRecord) -> list[ChainLink]:
    from ._report import ChainLink

    links = []
    for phase in ("initialize", "autostart"):
        times = record.phases.get(phase)
        if times is not None and times[1] is not None:
            links.append(ChainLink(record.tier, record.name, phase, times[0], times[1]))
    return links
