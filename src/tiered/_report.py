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


@dataclass(frozen=True, slots=True)
class DriverRecord:
    """One driver in a :class:`Report`.

    Attributes:
        name: the driver's name.
        tier: its tier.
        status: ``"pending"`` (its tier has not begun), ``"starting"``,
            ``"running"``, ``"failed"``, ``"skipped"``, ``"cancelled"`` (its
            start was cancelled: a sibling failed, or from outside) or
            ``"stopped"``.
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
        }


@dataclass(frozen=True, slots=True)
class TierRecord:
    """One tier: its drivers, when it began and when its barrier passed."""

    index: int
    drivers: tuple[str, ...]
    start: float
    end: float | None

    @property
    def duration(self) -> float | None:
        """Seconds from the tier's first initialize to its barrier."""
        return None if self.end is None else self.end - self.start


@dataclass(frozen=True, slots=True)
class ChainLink:
    """One step of the critical chain: the driver a tier's barrier waited on."""

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
        tiers: the tiers that began, in start order.
        ready_at: when every tier was up, or None.
        stopping_at: when the shutdown began, or None.
        stopped_at: when the run ended, or None.
        schedule: ``"tiers"`` or ``"dependencies"``.
        events: what happened after start-up: failures, restarts and
            give-ups, as :class:`RunEvent` records, in time order.
    """

    name: str
    drivers: tuple[DriverRecord, ...]
    tiers: tuple[TierRecord, ...]
    ready_at: float | None = None
    stopping_at: float | None = None
    stopped_at: float | None = None
    schedule: str = "tiers"
    events: tuple[RunEvent, ...] = ()

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
        """What start-up waited on, tier by tier.

        Per tier: the driver whose ``initialize`` ended last (every autostart
        of the tier waited for it), then the one whose ``autostart`` ended
        last (the next tier waited for it), when the tier has autostarts.
        """
        by_name = {r.name: r for r in self.drivers}
        chain: list[ChainLink] = []
        for tier in self.tiers:
            for phase in ("initialize", "autostart"):
                best: ChainLink | None = None
                for name in tier.drivers:
                    times = by_name[name].phases.get(phase)
                    if times is None or times[1] is None:
                        continue
                    if best is None or times[1] > best.end:
                        best = ChainLink(tier.index, name, phase, times[0], times[1])
                if best is not None:
                    chain.append(best)
        return tuple(chain)

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
                }
                for t in self.tiers
            ],
            "drivers": [r.to_dict() for r in self.drivers],
            "blame": [{"name": r.name, "startup": r.startup} for r in self.blame()],
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
        }

    def to_json(self, *, indent: int | None = None) -> str:
        """The report as JSON (times in seconds, None as null)."""
        import json  # only when a report is written

        return json.dumps(self.to_dict(), indent=indent)

    def format_blame(self, limit: int | None = None) -> str:
        """Like ``systemd-analyze blame``: one line per driver, slowest first."""
        lines = [
            f"{r.startup:9.3f}s  {r.name} (tier {r.tier}){record_suffix(r)}"
            for r in self.blame()[:limit]
        ]
        return "\n".join(lines)

    def format_critical_chain(self) -> str:
        """Like ``systemd-analyze critical-chain``: per tier, what it waited on."""
        lines: list[str] = []
        ends = {t.index: t.end for t in self.tiers}
        current = None
        for link in self.critical_chain():
            if link.tier != current:
                current = link.tier
                end = ends.get(link.tier)
                up = f"up @{end:.3f}s" if end is not None else "not up"
                lines.append(f"tier {link.tier} {up}")
            lines.append(
                f"  └─ {link.name} {link.phase} +{link.duration:.3f}s (@{link.start:.3f}s)"
            )
        return "\n".join(lines)

    def to_text(self) -> str:
        """A human summary: tiers, then blame, then the critical chain."""
        if self.ready_at is not None:
            head = f"runtime {self.name!r} was up in {self.ready_at:.3f}s"
        else:
            head = f"runtime {self.name!r} did not come up"
        lines = [head, ""]
        by_name = {r.name: r for r in self.drivers}
        for tier in self.tiers:
            took = f"{tier.duration:.3f}s" if tier.duration is not None else "-"
            lines.append(f"tier {tier.index} ({took})")
            for name in tier.drivers:
                r = by_name[name]
                phases = "  ".join(
                    f"{p} {d:.3f}s"
                    for p in ("initialize", "autostart", "stop")
                    if (d := r.duration(p)) is not None
                )
                lines.append(f"  {r.name:<20} {r.status:<9} {phases}{record_suffix(r)}")
        blame = self.format_blame()
        if blame:
            lines += ["", "blame:", blame]
        chain = self.format_critical_chain()
        if chain:
            lines += ["", "critical chain:", chain]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()

    def to_svg(self) -> str:
        """A timeline like ``systemd-analyze plot``: a bar per driver and phase.

        Rows are grouped by tier, with the tier's barrier drawn as a dashed
        line.  When the run has stopped, the time it spent running is cut out
        of the axis so start-up and shutdown both stay readable.
        """
        from ._svg import render_svg  # only when a timeline is drawn

        return render_svg(self)


def record_suffix(r: DriverRecord) -> str:
    """The error or reason of a record, as the text report and the SVG append it."""
    if r.error:
        return f"  [{r.error}]"
    if r.reason:
        return f"  [{r.reason}]"
    return ""
