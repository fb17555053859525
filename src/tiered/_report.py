"""``Report``: what happened in a run, as data that renders to text, JSON, SVG.

Times are seconds since the run began, read from ``anyio.current_time()``, so
a trio ``MockClock`` drives them.  Nothing here holds a driver's value: only
names, statuses, times and error descriptions (tests/test_report.py pins that
a secret handed between drivers never reaches a report).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._journal import RunEvent

__all__ = ["ChainLink", "DriverRecord", "Report", "TierRecord"]

Status = Literal[
    "pending",
    "starting",
    "running",
    "restarting",
    "failed",
    "skipped",
    "cancelled",
    "stopped",
]
PHASES = ("initialize", "autostart", "reload", "stop")

#: a wait shorter than this is noise of the clock, not worth a word
_NOTICE = 0.0005


@dataclass(frozen=True, slots=True)
class DriverRecord:
    """One driver in a :class:`Report`.

    Attributes:
        name: the driver's name.
        tier: its tier.
        status: ``"pending"`` (its tier has not begun), ``"starting"``,
            ``"running"``, ``"restarting"``, ``"failed"``, ``"skipped"``,
            ``"cancelled"`` (its start was cancelled: a sibling failed, or
            from outside) or ``"stopped"``.
        optional: whether its failure is tolerated.
        phases: phase name (``"initialize"``, ``"autostart"``, ``"reload"``,
            ``"stop"``) to ``(start, end)``; a phase not run is absent, one
            still running has ``end`` None.
        error: ``"ExceptionType: message"`` of its failure, if any.
        reason: why it was skipped or cancelled, if it was.
        status_text: the last ``ctx.status()`` it set.
        requires: the names of the drivers it requires.
        after: the names of the drivers it starts after.
        restarts: how many times it was restarted in this run; ``phases``
            are those of its latest start.
        eligible_at: when it could begin (its tier began, or what it
            requires and is after was up), in seconds since the run began;
            ``initialize`` may begin later, waiting for a place under
            ``max_concurrent_starts``.
        failed_in: the phase its own failure happened in (``"initialize"``,
            ``"autostart"``, ``"stop"`` or ``"background"``), or None: it did
            not fail, or failed because a requirement did.
        up_at: when its latest start was over and it was up (the end of
            its ``autostart``, or of its ``initialize`` without one), or None
            if it did not come up.
    """

    name: str
    tier: int
    status: Status
    optional: bool
    phases: Mapping[str, tuple[float, float | None]]
    error: str | None = None
    reason: str | None = None
    status_text: str | None = None
    requires: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    restarts: int = 0
    eligible_at: float | None = None
    failed_in: str | None = None
    up_at: float | None = None

    def duration(self, phase: str) -> float | None:
        """Seconds ``phase`` took; None if it did not run or has not ended."""
        times = self.phases.get(phase)
        if times is None or times[1] is None:
            return None
        return times[1] - times[0]

    @property
    def startup(self) -> float:
        """Seconds of ``initialize`` plus ``autostart`` (what blame sorts by)."""
        return (self.duration("initialize") or 0.0) + (
            self.duration("autostart") or 0.0
        )

    @property
    def began_at(self) -> float | None:
        """When its ``initialize`` began, or None if it never did."""
        times = self.phases.get("initialize")
        return None if times is None else times[0]

    @property
    def waited(self) -> float | None:
        """Seconds from :attr:`eligible_at` to its ``initialize``, or None.

        The wait for a place under ``max_concurrent_starts``: 0 without a
        limit.  The wait for requirements is :attr:`eligible_at` itself
        (seconds since the run began), which blame and the text report show
        beside the time the driver's own hooks took.
        """
        began = self.began_at
        if began is None or self.eligible_at is None:
            return None
        return max(began - self.eligible_at, 0.0)

    @property
    def timed_out(self) -> bool:
        """Whether its failure was a timeout (:class:`~tiered.DriverTimeout`)."""
        return self.error is not None and self.error.startswith("DriverTimeout")

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as :meth:`Report.to_json` writes it."""
        return {
            "name": self.name,
            "tier": self.tier,
            "status": self.status,
            "optional": self.optional,
            "phases": {k: list(v) for k, v in self.phases.items()},
            "error": self.error,
            "reason": self.reason,
            "status_text": self.status_text,
            "requires": list(self.requires),
            "after": list(self.after),
            "restarts": self.restarts,
            "eligible_at": self.eligible_at,
            "waited": self.waited,
            "failed_in": self.failed_in,
            "up_at": self.up_at,
        }


@dataclass(frozen=True, slots=True)
class TierRecord:
    """One tier: its drivers, when it began and when its barrier passed.

    ``end`` stays None for a tier whose barrier never passed (start-up
    failed in it, or it is still starting): that tier is not up.
    """

    index: int
    drivers: tuple[str, ...]
    start: float
    end: float | None

    @property
    def duration(self) -> float | None:
        """Seconds from the tier's first initialize to its barrier."""
        return None if self.end is None else self.end - self.start

    @property
    def up(self) -> bool:
        """Whether its barrier passed."""
        return self.end is not None


@dataclass(frozen=True, slots=True)
class ChainLink:
    """One step of the critical chain: a phase start-up waited on.

    Attributes:
        tier: the driver's tier.
        name: the driver's name.
        phase: ``"initialize"`` or ``"autostart"``.
        start: when the phase began.
        end: when it ended.
    """

    tier: int
    name: str
    phase: str
    start: float
    end: float

    @property
    def duration(self) -> float:
        """Seconds the phase took."""
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Report:
    """What happened in one run; a frozen snapshot taken by ``run.report``.

    Example::

        async with runtime.run() as run:
            report = run.report  # the start-up: every tier is up here
            print(report.to_text())  # tiers, blame, critical chain
            slowest = report.blame()[0]
            print(slowest.name, slowest.startup)
        # read after the block, it holds the stop phases too
        Path("timeline.svg").write_text(run.report.to_svg())

    Attributes:
        name: the runtime's name.
        drivers: one record per driver, in tier then declaration order.
        tiers: the tiers that began, in start order (none under
            ``schedule="dependencies"``, which has no barriers).
        ready_at: when every tier was up, or None.
        stopping_at: when the shutdown began, or None.
        stopped_at: when the run ended, or None.
        schedule: ``"tiers"`` or ``"dependencies"``.
        events: what happened after start-up: failures, restarts and
            give-ups, as :class:`RunEvent` records, in time order; the
            latest 1,000 of them.
        events_dropped: how many earlier ones are no longer kept (a
            driver that fails and is restarted for as long as the daemon
            runs would otherwise grow the record without end).
    """

    name: str
    drivers: tuple[DriverRecord, ...]
    tiers: tuple[TierRecord, ...]
    ready_at: float | None = None
    stopping_at: float | None = None
    stopped_at: float | None = None
    schedule: str = "tiers"
    events: tuple[RunEvent, ...] = ()
    max_concurrent_starts: int | None = None
    events_dropped: int = 0

    def driver(self, name: str) -> DriverRecord:
        """The record of the driver ``name``.

        Raises:
            KeyError: no driver of that name.
        """
        for record in self.drivers:
            if record.name == name:
                return record
        raise KeyError(name)

    def blame(self) -> tuple[DriverRecord, ...]:
        """Drivers that started, slowest start-up (initialize + autostart) first."""
        started = [r for r in self.drivers if "initialize" in r.phases]
        return tuple(sorted(started, key=lambda r: -r.startup))

    def critical_chain(self) -> tuple[ChainLink, ...]:
        """What start-up waited on, first link first.

        Under ``schedule="tiers"``, tier by tier: the driver whose
        ``initialize`` ended last (every autostart of the tier waited for
        it), then the one whose ``autostart`` ended last (the next tier
        waited for it), when the tier has autostarts.

        Under ``schedule="dependencies"``, along the requirements, as
        ``systemd-analyze critical-chain`` does: from the driver that came up
        last (or the required driver whose failure stopped start-up) back,
        at each step, to the requirement or ``after`` that came up last
        before it began; each driver gives its ``initialize`` and
        ``autostart`` links.
        """
        from ._chain import critical_chain

        return critical_chain(self)

    # -- renderings ------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain data: what :meth:`to_json` writes."""
        return {
            "name": self.name,
            "schedule": self.schedule,
            "ready_at": self.ready_at,
            "stopping_at": self.stopping_at,
            "stopped_at": self.stopped_at,
            "tiers": [
                {
                    "index": t.index,
                    "drivers": list(t.drivers),
                    "start": t.start,
                    "end": t.end,
                    "up": t.up,
                }
                for t in self.tiers
            ],
            "drivers": [r.to_dict() for r in self.drivers],
            "blame": [
                {"name": r.name, "startup": r.startup, "waited": r.waited}
                for r in self.blame()
            ],
            "critical_chain": [
                {
                    "tier": c.tier,
                    "name": c.name,
                    "phase": c.phase,
                    "start": c.start,
                    "end": c.end,
                }
                for c in self.critical_chain()
            ],
            "events": [
                {
                    "kind": e.kind,
                    "time": e.time,
                    "driver": e.driver,
                    "tier": e.tier,
                    "value": e.value,
                    "detail": e.detail,
                }
                for e in self.events
            ],
            "events_dropped": self.events_dropped,
        }

    def to_json(self, *, indent: int | None = None) -> str:
        """The report as JSON (times in seconds, None as null)."""
        import json  # only when a report is written

        return json.dumps(self.to_dict(), indent=indent)

    def format_blame(self, limit: int | None = None) -> str:
        """Like ``systemd-analyze blame``: one line per driver, slowest first.

        Each line gives the time of the driver's own hooks, then what it
        waited for before them: its requirements (``schedule="dependencies"``)
        and a place under ``max_concurrent_starts``.  systemd's blame counts
        the waiting in, which makes a quick unit that waited look slow.
        """
        from ._reporttext import format_blame

        return format_blame(self, limit)

    def format_critical_chain(self) -> str:
        """Like ``systemd-analyze critical-chain``: what start-up waited on.

        Per tier under ``schedule="tiers"``; along the requirements, first
        to last, under ``schedule="dependencies"``.
        """
        from ._reporttext import format_critical_chain

        return format_critical_chain(self)

    def format_events(self) -> str:
        """The failures, restarts and give-ups after start-up, one line each."""
        from ._reporttext import format_events

        return format_events(self)

    def to_text(self) -> str:
        """A human summary: tiers, blame, the critical chain, then what happened after start-up."""
        from ._reporttext import to_text

        return to_text(self)

    def __str__(self) -> str:
        return self.to_text()

    def to_svg(self) -> str:
        """A timeline like ``systemd-analyze plot``: a bar per driver and phase.

        Rows are grouped by tier; under ``schedule="tiers"`` each tier's
        barrier is a dashed line.  When the run has stopped, the time it
        spent running is cut out of the axis (a break mark shows where), so
        start-up and shutdown both stay readable; what happened meanwhile
        (reloads, failures, restarts) gets a scale of its own in the cut.
        """
        from ._svg import render_svg  # only when a timeline is drawn

        return render_svg(self)


def record_note(r: DriverRecord, report: Report | None = None) -> str | None:
    """Why a driver is not fine, in one line: its failure, or its reason.

    ``failed in initialize: OSError: ...``, the reason it was skipped or
    cancelled, or ``never began`` for a driver still pending once the run is
    over; None when there is nothing to say.
    """
    if r.error:
        return f"failed in {r.failed_in}: {r.error}" if r.failed_in else r.error
    if r.reason:
        return r.reason
    if r.status == "pending" and report is not None and report.stopped_at is not None:
        return "never began"
    return None


def record_suffix(r: DriverRecord, report: Report | None = None) -> str:
    """The note of a record as the text report appends it: ``  [...]``."""
    note = record_note(r, report)
    return f"  [{note}]" if note else ""


def place_wait(limit: int | None) -> str:
    """What a driver waited for between becoming eligible and beginning.

    A place under ``max_concurrent_starts`` when there is a limit; without
    one only a busy event loop delays a driver (a sibling that blocks it),
    and naming the limit would point the wrong way.
    """
    if limit is not None:
        return "for max_concurrent_starts"
    return "to begin (the event loop was busy)"


def waits(r: DriverRecord, schedule: str, limit: int | None = None) -> str:
    """What a driver waited for before its hooks, as text; "" if nothing.

    ``waited 2.000s for requirements, 0.700s for max_concurrent_starts``:
    the first part only under ``schedule="dependencies"`` (in tiers mode the
    tier is the wait) and for the first start (a restart's eligibility is
    counted from the restart, not from the run's start).
    """
    parts = []
    if (
        schedule == "dependencies"
        and r.restarts == 0
        and r.eligible_at is not None
        and r.began_at is not None
        and r.eligible_at > _NOTICE
    ):
        parts.append(f"{r.eligible_at:.3f}s for requirements")
    waited = r.waited
    if waited is not None and waited > _NOTICE:
        parts.append(f"{waited:.3f}s {place_wait(limit)}")
    return "waited " + ", ".join(parts) if parts else ""


def tier_label(report: Report, index: int, tier: TierRecord | None) -> str:
    """``tier 1 (4.000s)``, ``tier 1 (not up)``, ``tier 2 (not begun)`` or ``tier 0``.

    Under ``schedule="dependencies"`` a tier only groups drivers: no barrier,
    so no time of its own.
    """
    if report.schedule == "dependencies":
        return f"tier {index}"
    if tier is None:
        return f"tier {index} (not begun)"
    if tier.duration is None:
        return f"tier {index} (not up)"
    return f"tier {index} ({tier.duration:.3f}s)"


def groups(
    report: Report,
) -> list[tuple[int, TierRecord | None, list[DriverRecord]]]:
    """The drivers by tier, lowest first: every tier with drivers, begun or not."""
    by_tier: dict[int, list[DriverRecord]] = {}
    for record in report.drivers:
        by_tier.setdefault(record.tier, []).append(record)
    begun = {t.index: t for t in report.tiers}
    return [(k, begun.get(k), by_tier[k]) for k in sorted(by_tier)]


def failure_cause(report: Report) -> DriverRecord | None:
    """The required driver whose failure stopped start-up, if it did."""
    if report.ready_at is not None:
        return None
    from ._chain import target

    found = target(report)
    return found[0] if found is not None and found[1] else None
