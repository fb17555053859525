"""What :mod:`tiered.otel` gathers from a run's events before it makes spans.

A run's report tells phases and statuses; its events tell when a driver
failed and when a restart began.  These records put the two together: a
:class:`Fault` is one failure and the phase it happened in, an
:class:`Attempt` one restart attempt and the phases its drivers ran.  Pure
data and small functions, no OpenTelemetry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ._report import PHASES

if TYPE_CHECKING:
    from opentelemetry.trace import SpanContext
    from opentelemetry.util.types import AttributeValue

    from ._report import DriverRecord, Report

__all__ = [
    "SLACK",
    "START_PHASES",
    "Attempt",
    "Attributes",
    "Fault",
    "Interval",
    "failed_phase",
    "restart_members",
]

START_PHASES = ("initialize", "autostart")

#: how long after a phase ended a failure is still that phase's: a hook's
#: failure is reported just after the phase's end was read, with no await in
#: between, but a loaded machine may preempt the process there; later than
#: this it was a background task's (one that crashes sooner is shown on the
#: phase it followed)
SLACK = 0.1

Attributes = dict[str, "AttributeValue"]


@dataclass(frozen=True, slots=True)
class Fault:
    """A driver's failure as the run's events told it: when, which phase, what."""

    time: float
    driver: str
    text: str  # "Type: message", as the report describes errors
    phase: str | None = None  # the phase it failed in, None if in none
    start: float | None = None  # that phase's start: which run of the phase


@dataclass(frozen=True, slots=True)
class Interval:
    """One run of one phase of one driver."""

    phase: str
    start: float
    end: float | None


def failed_phase(record: DriverRecord, now: float) -> tuple[str | None, float | None]:
    """The phase of ``record`` a failure reported at ``now`` belongs to.

    Read when the failure is reported: the phase that began last is the one
    under way, or the one that just ended (a hook that raised).  Past
    :data:`SLACK` after its end, the failure was a background task's.
    """
    best: tuple[float, int, str] | None = None
    for phase, (start, _) in record.phases.items():
        if start <= now:
            key = (start, PHASES.index(phase), phase)
            if best is None or key > best:
                best = key
    if best is None:
        return None, None
    start, _, phase = best
    end = record.phases[phase][1]
    if end is not None and now > end + SLACK:
        return None, None
    return phase, start


def restart_members(report: Report, root: str) -> list[str]:
    """``root`` and the drivers that restart with it, in start order.

    Those that require it, transitively, and are restarting now (the
    supervisor marks them all before it announces the restart).
    """
    dependents: dict[str, list[str]] = {r.name: [] for r in report.drivers}
    for r in report.drivers:
        for name in r.requires:
            dependents.setdefault(name, []).append(r.name)
    found = {root}
    todo = [root]
    while todo:
        for name in dependents.get(todo.pop(), ()):
            if name not in found:
                found.add(name)
                todo.append(name)
    return [
        r.name
        for r in report.drivers
        if r.name == root or (r.name in found and r.status == "restarting")
    ]


@dataclass(slots=True)
class Attempt:
    """One restart attempt: from its announcement until its drivers are up again."""

    root: str
    tier: int
    start: float
    number: int
    members: list[str]
    delay: float | None = None
    detail: str | None = None
    cause: Fault | None = None
    previous: SpanContext | None = None
    gave_up: str | None = None
    faults: list[Fault] = field(default_factory=list)
    settled: set[str] = field(default_factory=set)
    intervals: dict[str, list[Interval]] = field(default_factory=dict)
    records: dict[str, DriverRecord] = field(default_factory=dict)

    def absorb(self, record: DriverRecord) -> None:
        """Keep the phases ``record`` shows that ran in this attempt.

        Called at every event of a member: a restart's next start forgets
        the phases of the life before (``Slot.arm``), so what is not kept
        here is lost.
        """
        self.records[record.name] = record
        kept = self.intervals.setdefault(record.name, [])
        for phase, (start, end) in record.phases.items():
            if start < self.start:
                continue
            for i, old in enumerate(kept):
                if old.phase == phase and old.start == start:
                    if old.end is None and end is not None:
                        kept[i] = Interval(phase, start, end)
                    break
            else:
                kept.append(Interval(phase, start, end))
