"""The spans of :mod:`tiered.otel`, made after the fact from a run's report.

Every span here is started and ended at once, with the times the run
recorded (``start_time``/``end_time`` in nanoseconds since the epoch), and
its parent is given as an explicit context: no span is ever made current, so
nothing that runs later (a driver's background task, a request) can become a
child of a start-up that is long over (the trap of clj-otel#18;
tests/test_otel.py::test_background_spans_are_not_children_of_startup).

Three kinds of trace, each with a root span of its own:

* ``startup NAME``: a ``tier K`` span per tier (tiers schedule), under it an
  ``initialize D`` and ``autostart D`` span per driver; a failed start-up
  ends with a ``rollback NAME`` span holding the ``stop D`` spans;
* ``restart D``: one per restart attempt, with the ``stop``, ``initialize``
  and ``autostart`` spans of the drivers that restarted with ``D``;
* ``shutdown NAME``: the ``stop D`` spans of the shutdown.

The restart and shutdown roots link to the start-up root.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opentelemetry import trace as otel
from opentelemetry.context import Context
from opentelemetry.trace import Link, Status, StatusCode

from ._exceptions import describe
from ._otel_data import SLACK, START_PHASES, Interval
from ._report import PHASES

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from opentelemetry.trace import Span, Tracer

    from ._exceptions import Failure
    from ._otel_data import Attempt, Attributes, Fault
    from ._report import DriverRecord, Report

__all__ = ["SpanMaker"]


class SpanMaker:
    """Makes the spans of one run, each with its times, none of them current."""

    def __init__(
        self,
        tracer: Tracer,
        ns: Callable[[float], int],
        common: Attributes,
    ) -> None:
        self.tracer = tracer
        self.ns = ns
        self.common = common

    # -- the pieces ----------------------------------------------------------------

    def open(
        self,
        name: str,
        start: float,
        parent: Span | None,
        attributes: Attributes,
        links: Sequence[Link] = (),
    ) -> Span:
        # an empty Context for a root: never a child of whatever is current
        context = Context() if parent is None else otel.set_span_in_context(parent)
        return self.tracer.start_span(
            name,
            context=context,
            attributes={**self.common, **attributes},
            links=links,
            start_time=self.ns(start),
            record_exception=False,
            set_status_on_exception=False,
        )

    def close(self, span: Span, end: float) -> None:
        span.end(end_time=self.ns(end))

    def exception(self, span: Span, fault: Fault, extra: Attributes) -> None:
        """An event like ``Span.record_exception``'s, from the report's text."""
        kind, _, message = fault.text.partition(": ")
        attributes: Attributes = {"exception.type": kind, **extra}
        if message:
            attributes["exception.message"] = message
        span.add_event("exception", attributes, timestamp=self.ns(fault.time))

    def phase(
        self,
        parent: Span,
        record: DriverRecord,
        interval: Interval,
        faults: Iterable[Fault],
        fallback_end: float,
    ) -> None:
        """The span of one phase of one driver, its failures and its skip."""
        attributes: Attributes = {
            "tiered.driver": record.name,
            "tiered.tier": record.tier,
            "tiered.phase": interval.phase,
            "tiered.status": record.status,
            "tiered.optional": record.optional,
        }
        if record.reason:
            attributes["tiered.reason"] = record.reason
        span = self.open(
            f"{interval.phase} {record.name}", interval.start, parent, attributes
        )
        end = interval.end if interval.end is not None else fallback_end
        last = None
        for fault in faults:
            self.exception(span, fault, {})
            last = fault
        if last is not None:
            span.set_status(Status(StatusCode.ERROR, last.text))
        elif record.status == "skipped" and interval.phase in START_PHASES:
            span.add_event(
                "skipped",
                {"tiered.reason": record.reason or "skipped"},
                timestamp=self.ns(end),
            )
        self.close(span, end)

    def blocked(self, span: Span, record: DriverRecord, at: float) -> None:
        """A driver skipped without running: a "skipped" event on ``span``, at ``at``.

        An optional driver whose requirement did not start has no phase
        span: the tier's span (or the root's) tells it, when the tier began.
        """
        if record.status == "skipped" and not any(
            p in record.phases for p in START_PHASES
        ):
            attributes: Attributes = {
                "tiered.driver": record.name,
                "tiered.reason": record.reason or "skipped",
            }
            span.add_event("skipped", attributes, timestamp=self.ns(at))

    # -- the traces ------------------------------------------------------------------

    def startup(self, report: Report, faults: Sequence[Fault], end: float) -> Span:
        """The start-up trace; returns its root, already ended."""
        failed = report.ready_at is None
        root_end = end if report.ready_at is None else report.ready_at
        root = self.open(
            f"startup {report.name}",
            0.0,
            None,
            {
                "tiered.status": "failed" if failed else "running",
                "tiered.drivers": len(report.drivers),
            },
        )
        by_name = {r.name: r for r in report.drivers}
        by_driver = _by_driver(faults)
        settled = _settled_at(report, faults)
        rollback = None
        if failed:
            rollback = self.open(f"rollback {report.name}", settled, root, {})
        containers: list[tuple[Span, list[DriverRecord], float, float]] = []
        if report.tiers:
            for tier in report.tiers:
                members = [by_name[n] for n in tier.drivers]
                # a tier that did not come up was under way until the start
                # gave up: until every start had settled
                tier_end = settled if tier.end is None else tier.end
                span = self.open(
                    f"tier {tier.index}",
                    tier.start,
                    root,
                    {"tiered.tier": tier.index, "tiered.drivers": tier.drivers},
                )
                if tier.end is None:
                    span.set_status(
                        Status(StatusCode.ERROR, f"tier {tier.index} did not come up")
                    )
                containers.append((span, members, tier.start, tier_end))
        else:
            containers.append((root, list(report.drivers), 0.0, root_end))
        for span, members, span_start, span_end in containers:
            for record in members:
                mine = by_driver.get(record.name, [])
                placed = self._driver(span, rollback, record, mine, settled, end)
                # a failure outside the driver's phases: within the tier's
                # time (a requirement that did not start: DependencyError) on
                # the tier, later (a background task that crashed) on the root
                for fault in mine:
                    if fault not in placed:
                        inside = fault.time <= span_end + SLACK
                        where = span if inside else root
                        self.exception(where, fault, {"tiered.driver": record.name})
                self.blocked(span, record, span_start)
            if span is not root:
                self.close(span, span_end)
        if rollback is not None:
            self.close(rollback, end)
        if failed:
            names = [r.name for r in report.drivers if _failed_required(r)]
            what = ", ".join(names) if names else "cancelled"
            root.set_status(Status(StatusCode.ERROR, f"failed to start: {what}"))
        self.close(root, root_end)
        return root

    def _driver(
        self,
        span: Span,
        rollback: Span | None,
        record: DriverRecord,
        faults: list[Fault],
        settled: float,
        end: float,
    ) -> list[Fault]:
        """The phase spans of one driver in the start-up; the faults they took."""
        placed: list[Fault] = []
        for phase, (start, stop) in record.phases.items():
            if phase == "reload":
                continue
            parent = span
            if phase == "stop" and rollback is not None:
                # a driver that will not run stops at once, during start-up;
                # every other stop is the rollback's
                at_once = record.status == "skipped" or (
                    record.status == "failed" and record.optional
                )
                if not (at_once and start <= settled):
                    parent = rollback
            mine = [f for f in faults if f.phase == phase and f.start == start]
            placed += mine
            self.phase(parent, record, Interval(phase, start, stop), mine, end)
        return placed

    def restart(
        self, attempt: Attempt, end: float, outcome: str, links: Sequence[Link]
    ) -> Span:
        """The trace of one restart attempt; returns its root, already ended."""
        root = self.open(
            f"restart {attempt.root}",
            attempt.start,
            None,
            {
                "tiered.driver": attempt.root,
                "tiered.tier": attempt.tier,
                "tiered.restart.attempt": attempt.number,
                "tiered.restart.drivers": tuple(attempt.members),
                "tiered.restart.outcome": outcome,
                **(
                    {"tiered.restart.delay": attempt.delay}
                    if attempt.delay is not None
                    else {}
                ),
            },
            links,
        )
        if attempt.cause is not None:
            self.exception(root, attempt.cause, {"tiered.driver": attempt.root})
        if attempt.detail is not None:
            root.add_event(
                "restart scheduled",
                {"tiered.detail": attempt.detail},
                timestamp=self.ns(attempt.start),
            )
        faults = _by_driver(attempt.faults)
        for name in attempt.members:
            record = attempt.records.get(name)
            if record is None:
                continue
            mine = faults.get(name, [])
            placed: list[Fault] = []
            for interval in sorted(attempt.intervals.get(name, ()), key=_by_start):
                these = [
                    f
                    for f in mine
                    if f.phase == interval.phase and f.start == interval.start
                ]
                placed += these
                self.phase(root, record, interval, these, end)
            for fault in mine:
                if fault not in placed:
                    self.exception(root, fault, {"tiered.driver": name})
        if attempt.gave_up is not None:
            root.add_event(
                "gave up", {"tiered.detail": attempt.gave_up}, timestamp=self.ns(end)
            )
        if outcome in ("failed", "gave-up"):
            why = attempt.gave_up or f"the restart of {attempt.root} failed"
            root.set_status(Status(StatusCode.ERROR, why))
        self.close(root, end)
        return root

    def shutdown(
        self,
        report: Report,
        end: float,
        failures: Sequence[Failure],
        message: str | None,
        links: Sequence[Link],
    ) -> Span:
        """The shutdown trace; returns its root, already ended.

        The failures are the run's own (``run.shutdown_error()``): real
        exceptions, recorded with their tracebacks.
        """
        begin = report.stopping_at if report.stopping_at is not None else end
        root = self.open(
            f"shutdown {report.name}",
            begin,
            None,
            {"tiered.status": "failed" if failures else "stopped"},
            links,
        )
        stops = sorted(
            (
                (r.phases["stop"], r)
                for r in report.drivers
                if "stop" in r.phases and r.phases["stop"][0] >= begin
            ),
            key=lambda item: item[0][0],
        )
        failed = {(f.driver, f.phase): f for f in failures}
        shown: set[tuple[str, str]] = set()
        for (start, stop), record in stops:
            failure = failed.get((record.name, "stop"))
            span_end = stop if stop is not None else end
            span = self.open(
                f"stop {record.name}",
                start,
                root,
                {
                    "tiered.driver": record.name,
                    "tiered.tier": record.tier,
                    "tiered.phase": "stop",
                    "tiered.status": record.status,
                    "tiered.optional": record.optional,
                    "tiered.restarts": record.restarts,
                },
            )
            if failure is not None:
                shown.add((record.name, "stop"))
                span.record_exception(failure.error, timestamp=self.ns(span_end))
                span.set_status(Status(StatusCode.ERROR, describe(failure.error)))
            self.close(span, span_end)
        when = _incident_times(report)
        for failure in failures:
            if (failure.driver, failure.phase) in shown:
                continue
            root.record_exception(
                failure.error,
                {
                    "tiered.driver": failure.driver,
                    "tiered.tier": failure.tier,
                    "tiered.phase": failure.phase,
                },
                timestamp=self.ns(when.get(failure.driver, begin)),
            )
        if message is not None:
            root.set_status(Status(StatusCode.ERROR, message))
        self.close(root, end)
        return root


# -- helpers -----------------------------------------------------------------------


def _by_start(interval: Interval) -> tuple[float, int]:
    return interval.start, PHASES.index(interval.phase)


def _by_driver(faults: Iterable[Fault]) -> dict[str, list[Fault]]:
    out: dict[str, list[Fault]] = {}
    for fault in faults:
        out.setdefault(fault.driver, []).append(fault)
    return out


def _start_end(record: DriverRecord) -> float:
    """When the start of ``record`` was over: its last start phase's end."""
    ends = [
        e for p, (s, e) in record.phases.items() if p in START_PHASES and e is not None
    ]
    return max(ends, default=0.0)


def _settled_at(report: Report, faults: Sequence[Fault]) -> float:
    """When every start of a start-up was over (a rollback begins then)."""
    times = [_start_end(r) for r in report.drivers]
    times += [f.time for f in faults]
    times += [t.start for t in report.tiers]
    return max(times, default=0.0)


def _failed_required(record: DriverRecord) -> bool:
    return record.status == "failed" and not record.optional


def _incident_times(report: Report) -> Mapping[str, float]:
    """When each driver last failed after start-up, by the report's incidents."""
    return {e.driver: e.time for e in report.events if e.driver is not None}
