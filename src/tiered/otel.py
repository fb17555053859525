"""A run's start-up, restarts and shutdown as OpenTelemetry traces.

Install the extra (``pip install 'tiered[otel]'``: ``opentelemetry-api``
only) and call :func:`trace` on a run before entering it::

    run = runtime.run()
    tiered.otel.trace(run)  # the global tracer provider, when spans are made
    async with run:
        ...

or let the environment decide, as ``tiered run`` and ``serve()`` do with
:func:`trace_from_environment`.  Each run then makes three kinds of trace:
``startup NAME`` (a span per tier, and per phase of each driver), one
``restart D`` per restart of a driver, and ``shutdown NAME`` (a span per
``stop``).  Spans carry the times the run recorded and are made after the
fact, once start-up (a restart, the shutdown) is over, so no span is ever
current: work done later never becomes part of the start-up, and a tracer
provider that a driver of tier 0 sets up still receives the whole start-up.
docs/telemetry.md shows the traces and their attributes.

``import tiered`` does not import this module, nor OpenTelemetry.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from opentelemetry import trace as otel
from opentelemetry.trace import Link

from . import __version__
from ._exceptions import UsageError
from ._otel_data import Attempt, Attributes, Fault, failed_phase, restart_members
from ._otel_spans import SpanMaker

if TYPE_CHECKING:
    from opentelemetry.trace import SpanContext, TracerProvider

    from ._journal import RunEvent
    from ._report import Report
    from ._run import Run

__all__ = ["Tracing", "trace", "trace_from_environment"]

#: the instrumentation scope of every span made here
SCOPE = "tiered"


def trace(run: Run, *, tracer_provider: TracerProvider | None = None) -> Tracing:
    """Turn ``run`` into OpenTelemetry traces; call it before ``async with run``.

    Example::

        run = runtime.run()
        tiered.otel.trace(run, tracer_provider=provider)
        async with run:
            ...

    Args:
        run: a run that has not been entered yet.
        tracer_provider: where the spans go; None takes the global provider
            at the moment spans are made (the end of start-up, of a restart,
            of the shutdown), so one that a driver sets during start-up is
            the one that receives them.

    Returns:
        a :class:`Tracing`: the start-up's span context once known, and
        :meth:`Tracing.close` to stop.

    Raises:
        UsageError: ``run`` was entered already.
    """
    if run.state != "new":
        msg = (
            f"tiered.otel.trace(): the run of {run.plan.name!r} is {run.state}; "
            "call it before `async with run`, so it sees the whole start-up"
        )
        raise UsageError(msg)
    return Tracing(run, tracer_provider)


def trace_from_environment(run: Run) -> bool:
    """Trace ``run`` as the OpenTelemetry environment variables say, if the SDK is here.

    Sets up a tracer provider from ``OTEL_TRACES_EXPORTER``,
    ``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_SERVICE_NAME`` and the rest of
    the SDK's variables (the runtime's name is the service name when none is
    given), sets it as the global provider, and traces ``run`` with it.  A
    global provider set already is used instead.  Without the SDK it logs
    one warning and traces nothing: the command line never needs the SDK.

    Returns:
        whether the run is traced.
    """
    from ._otel_env import provider_from_environment

    provider = provider_from_environment(run.plan.name)
    if provider is None:
        return False
    trace(run, tracer_provider=provider)
    return True


class Tracing:
    """The tracing of one run, as :func:`trace` returns it.

    It listens to the run's events (``run.listen``) and, when start-up, a
    restart or the shutdown is over, reads the run's report and makes the
    spans of what happened.
    """

    def __init__(self, run: Run, tracer_provider: TracerProvider | None) -> None:
        self._run = run
        self._provider = tracer_provider
        self._base: int | None = None  # the wall clock at run time 0, in ns
        self._startup: SpanContext | None = None
        self._started = False  # the start-up trace is made
        #: failures seen outside restarts, in time order
        self._faults: list[Fault] = []
        #: a background failure that a restart is about to answer, by driver
        self._causes: dict[str, Fault] = {}
        self._attempts: dict[str, Attempt] = {}  # open, by the failed driver
        self._member_of: dict[str, Attempt] = {}
        self._counts: dict[str, int] = {}
        self._previous: dict[str, SpanContext] = {}
        self._unlisten = run.listen(self._event)

    @property
    def startup(self) -> SpanContext | None:
        """The span context of the start-up's root span, once start-up is over.

        For links from spans of your own to the start-up that preceded them.
        """
        return self._startup

    def close(self) -> None:
        """Stop tracing the run: what is not over yet makes no spans."""
        self._unlisten()

    # -- the events ----------------------------------------------------------------

    def _event(self, event: RunEvent) -> None:
        if self._base is None:
            # the one mapping of the run's clock to the wall clock: every
            # span's times are the run's, shifted by it
            self._base = time.time_ns() - round(event.time * 1e9)
        kind = event.kind
        if kind == "driver":
            self._driver(event)
        elif kind == "failure":
            self._failure(event)
        elif kind == "restart":
            self._restart(event)
        elif kind == "gave-up":
            self._gave_up(event)
        elif kind == "state":
            self._state(event)

    def _driver(self, event: RunEvent) -> None:
        name = event.driver
        assert name is not None
        detail = event.detail
        # the supervisor marks each driver of a restart with a detail of
        # this form (tiered._supervisor); every other detail is a failure
        mark = detail is not None and detail.startswith("restarting: ")
        failure = detail is not None and not mark
        attempt = self._member_of.get(name)
        if attempt is None and not failure:
            return  # the common case costs nothing more
        record = self._run.report.driver(name)
        if failure:
            assert detail is not None
            phase, start = failed_phase(record, event.time)
            fault = Fault(event.time, name, detail, phase, start)
            (self._faults if attempt is None else attempt.faults).append(fault)
        if attempt is not None:
            attempt.absorb(record)
            if not mark and event.value != "restarting":
                attempt.settled.add(name)
                if attempt.settled.issuperset(attempt.members):
                    self._finish(attempt, event.time, "running")

    def _failure(self, event: RunEvent) -> None:
        name = event.driver
        if name is None or event.value != "background" or name in self._member_of:
            return
        detail = event.detail or ""
        prefix = f"driver {name!r} (tier {event.tier}), phase background: "
        text = detail.removeprefix(prefix)
        self._causes[name] = Fault(event.time, name, text)

    def _restart(self, event: RunEvent) -> None:
        name = event.driver
        assert name is not None
        old = self._attempts.get(name)
        if old is not None:  # its start failed; this is the next attempt
            self._finish(old, event.time, "failed")
        report = self._run.report
        count = self._counts[name] = self._counts.get(name, 0) + 1
        attempt = Attempt(
            root=name,
            tier=report.driver(name).tier,
            start=event.time,
            number=count,
            members=restart_members(report, name),
            delay=float(event.value) if isinstance(event.value, int | float) else None,
            detail=event.detail,
            cause=self._causes.pop(name, None),
            previous=self._previous.get(name),
        )
        self._attempts[name] = attempt
        for member in attempt.members:
            self._member_of[member] = attempt
            attempt.absorb(report.driver(member))

    def _gave_up(self, event: RunEvent) -> None:
        name = event.driver
        assert name is not None
        attempt = self._attempts.get(name)
        if attempt is None:  # gave up on this failure at once: no attempt began
            cause = self._causes.pop(name, None)
            attempt = Attempt(
                root=name,
                tier=event.tier if event.tier is not None else 0,
                start=event.time if cause is None else cause.time,
                number=self._counts.get(name, 0) + 1,
                members=[name],
                cause=cause,
                previous=self._previous.get(name),
            )
        attempt.gave_up = event.detail
        self._finish(attempt, event.time, "gave-up")

    def _state(self, event: RunEvent) -> None:
        state = event.value
        if state == "running":
            if not self._started:
                self._started = True
                self._make_startup(self._run.report, event.time)
            elif self._run.state == "running":  # the restarts are over
                for attempt in list(self._attempts.values()):
                    self._finish(attempt, event.time, "running")
        elif state in ("stopping", "stopped"):
            for attempt in list(self._attempts.values()):
                self._finish(attempt, event.time, "abandoned")
            if state == "stopped":
                self.close()
                report = self._run.report
                if not self._started:
                    self._started = True
                    self._make_startup(report, event.time)
                elif report.stopping_at is not None:
                    self._make_shutdown(report, event.time)

    # -- the spans -------------------------------------------------------------------

    def _maker(self, report: Report) -> SpanMaker:
        tracer = otel.get_tracer(SCOPE, __version__, tracer_provider=self._provider)
        base = self._base or 0

        def ns(t: float) -> int:
            return base + round(t * 1e9)

        common: Attributes = {
            "tiered.runtime": report.name,
            "tiered.schedule": report.schedule,
        }
        return SpanMaker(tracer, ns, common)

    def _links(self, *contexts: SpanContext | None) -> list[Link]:
        return [Link(c) for c in contexts if c is not None and c.is_valid]

    def _make_startup(self, report: Report, end: float) -> None:
        faults = [f for f in self._faults if f.time <= end]
        root = self._maker(report).startup(report, faults, end)
        self._startup = root.get_span_context()

    def _finish(self, attempt: Attempt, end: float, outcome: str) -> None:
        if self._attempts.get(attempt.root) is attempt:
            del self._attempts[attempt.root]
        report = self._run.report
        for member in attempt.members:
            if self._member_of.get(member) is attempt:
                del self._member_of[member]
            attempt.absorb(report.driver(member))
        links = self._links(self._startup, attempt.previous)
        root = self._maker(report).restart(attempt, end, outcome, links)
        self._previous[attempt.root] = root.get_span_context()

    def _make_shutdown(self, report: Report, end: float) -> None:
        error = self._run.shutdown_error()
        failures = error.failures if error is not None else ()
        message = error.message if error is not None else None
        self._maker(report).shutdown(
            report, end, failures, message, self._links(self._startup)
        )
