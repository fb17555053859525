"""tiered.otel: a run's start-up, restarts and shutdown as OpenTelemetry spans.

The spans go to the SDK's in-memory exporter through a SimpleSpanProcessor,
and are checked against the run's own report: names, parents, attributes
and times.  The exact timing checks run on trio's virtual clock
(``autojump_clock``), where every duration in the report is exact.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import anyio
import pytest
import trio
from opentelemetry import trace as otel
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import StatusCode

import tiered
import tiered.otel
from support.otel import (
    SkipsInAutostart,
    Sleeper,
    Spans,
    attrs,
    duration,
    exceptions,
    ids,
    offset,
    provider,
    reset_globals,
    three_tiers,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from trio.testing import MockClock


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    """An in-memory exporter; ``provider(exporter)`` feeds it."""
    found = InMemorySpanExporter()
    yield found
    found.shutdown()


@pytest.fixture
def fresh_globals() -> Iterator[None]:
    """The global tracer provider unset, before and after (it can be set only once)."""
    reset_globals()
    yield
    reset_globals()


# -- start-up ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_startup_trace_has_a_span_per_tier_and_phase(
    exporter: InMemorySpanExporter,
) -> None:
    """Start-up is one trace: a root, a span per tier, under each a span per driver phase."""
    run = three_tiers().run()
    tiered.otel.trace(run, tracer_provider=provider(exporter))
    before = time.time_ns()
    async with run:
        entered = time.time_ns()
        spans = Spans(exporter)  # made when start-up was over, before the body
        report = run.report
    root = spans.one("startup virtd")
    assert root.parent is None
    # the wall clock of when it happened, not of when the spans were made
    assert root.start_time is not None
    assert root.end_time is not None
    assert before <= root.start_time <= root.end_time <= entered
    assert attrs(root) == {
        "tiered.runtime": "virtd",
        "tiered.schedule": "tiers",
        "tiered.status": "running",
        "tiered.drivers": 4,
    }
    assert spans.names_under(root) == ["tier 0", "tier 1", "tier 2"]
    tier0, tier1, tier2 = spans.children(root)
    assert attrs(tier0)["tiered.drivers"] == ("secrets", "network")
    assert sorted(spans.names_under(tier0)) == [
        "autostart network",
        "autostart secrets",
        "initialize network",
        "initialize secrets",
    ]
    assert spans.names_under(tier1) == ["initialize storage", "autostart storage"]
    assert spans.names_under(tier2) == ["initialize qemu", "autostart qemu"]
    trace_ids = {ids(s).trace_id for s in spans.all}
    assert trace_ids == {ids(root).trace_id}
    assert len(spans.all) == 1 + 3 + 8
    storage = spans.one("initialize storage")
    assert attrs(storage) == {
        "tiered.runtime": "virtd",
        "tiered.schedule": "tiers",
        "tiered.driver": "storage",
        "tiered.tier": 1,
        "tiered.phase": "initialize",
        "tiered.status": "running",
        "tiered.optional": False,
    }
    # the times are the report's
    assert duration(root) == pytest.approx(report.ready_at, abs=1e-6)
    for record in report.drivers:
        for phase, (start, end) in record.phases.items():
            span = spans.one(f"{phase} {record.name}")
            assert end is not None
            assert duration(span) == pytest.approx(end - start, abs=1e-6)
            assert offset(span, root) == pytest.approx(start, abs=1e-6)
    for tier, span in zip(report.tiers, (tier0, tier1, tier2), strict=True):
        assert tier.end is not None
        assert offset(span, root) == pytest.approx(tier.start, abs=1e-6)
        assert duration(span) == pytest.approx(tier.end - tier.start, abs=1e-6)


@pytest.mark.anyio
async def test_dependencies_schedule_puts_phases_under_the_root(
    exporter: InMemorySpanExporter,
) -> None:
    """Without tiers (schedule="dependencies") the phase spans are the root's children."""
    run = three_tiers(schedule="dependencies").run()
    tiered.otel.trace(run, tracer_provider=provider(exporter))
    async with run:
        pass
    spans = Spans(exporter)
    root = spans.one("startup virtd")
    assert attrs(root)["tiered.schedule"] == "dependencies"
    assert not spans.named("tier 0")
    under = spans.names_under(root)
    assert "initialize storage" in under
    assert "autostart qemu" in under
    assert len(under) == 8


@pytest.mark.anyio
async def test_failed_startup_records_the_exception_and_the_rollback(
    exporter: InMemorySpanExporter,
) -> None:
    """A failed start-up: ERROR spans, an exception event, and the rollback's stops."""
    runtime = tiered.Runtime("virtd")
    runtime.add(Sleeper("secrets", 0, init=0.001, stop=0.001))
    runtime.add(SkipsInAutostart("lazy", 0))

    @runtime.driver(tier=1)
    async def storage(ctx: tiered.Context) -> AsyncIterator[None]:
        await anyio.sleep(0.002)
        if ctx.tier >= 0:  # always
            raise OSError("pool 'images' is offline")
        yield  # pragma: no cover - never runs

    @runtime.driver(tier=1)
    async def network(ctx: tiered.Context) -> AsyncIterator[None]:
        await anyio.sleep(10)  # cancelled when storage fails
        yield

    run = runtime.run()
    tiered.otel.trace(run, tracer_provider=provider(exporter))
    with pytest.raises(tiered.StartupError):
        async with run:
            pass
    spans = Spans(exporter)
    root = spans.one("startup virtd")
    assert root.status.status_code is StatusCode.ERROR
    assert root.status.description == "failed to start: storage"
    assert attrs(root)["tiered.status"] == "failed"
    tier1 = spans.one("tier 1")
    assert tier1.status.status_code is StatusCode.ERROR
    failed = spans.one("initialize storage")
    assert failed.status.status_code is StatusCode.ERROR
    assert exceptions(failed) == [
        {"exception.type": "OSError", "exception.message": "pool 'images' is offline"}
    ]
    assert attrs(failed)["tiered.status"] == "failed"
    cancelled = spans.one("initialize network")
    assert cancelled.status.status_code is StatusCode.UNSET
    assert attrs(cancelled)["tiered.status"] == "cancelled"
    assert "storage" in attrs(cancelled)["tiered.reason"]
    # the rollback stops what had started, after the start-up settled
    rollback = spans.one("rollback virtd")
    assert rollback.parent is not None
    assert rollback.parent.span_id == ids(root).span_id
    assert spans.names_under(rollback) == ["stop secrets"]
    # lazy skipped itself and stopped at once, during start-up: not the rollback's
    assert "stop lazy" in spans.names_under(spans.one("tier 0"))
    assert spans.one("initialize secrets").status.status_code is StatusCode.UNSET
    assert root.end_time == rollback.end_time
    assert not spans.named("shutdown virtd")  # there was no shutdown


@pytest.mark.anyio
async def test_skips_are_events(exporter: InMemorySpanExporter) -> None:
    """A driver that skips itself has a "skipped" event; so does one skipped for it."""
    runtime = tiered.Runtime("virtd")

    @runtime.driver(tier=0)
    async def kvm(ctx: tiered.Context) -> AsyncIterator[None]:
        if ctx.tier >= 0:  # always
            raise tiered.Skip("/dev/kvm is missing")
        yield  # pragma: no cover - never runs

    @runtime.driver(tier=1, requires=(kvm,), optional=True)
    async def guests(ctx: tiered.Context) -> AsyncIterator[None]:
        yield

    run = runtime.run()
    tiered.otel.trace(run, tracer_provider=provider(exporter))
    async with run:
        pass
    spans = Spans(exporter)
    own = spans.one("initialize kvm")
    assert [(e.name, dict(e.attributes or {})) for e in own.events] == [
        ("skipped", {"tiered.reason": "/dev/kvm is missing"})
    ]
    assert own.status.status_code is StatusCode.UNSET
    assert attrs(own)["tiered.status"] == "skipped"
    assert not spans.named("initialize guests")  # it never ran
    [event] = spans.one("tier 1").events
    assert event.name == "skipped"
    assert dict(event.attributes or {}) == {
        "tiered.driver": "guests",
        "tiered.reason": "requires 'kvm' (tier 0), which skipped: /dev/kvm is missing",
    }


@pytest.mark.anyio
async def test_a_required_driver_blocked_by_its_requirement(
    exporter: InMemorySpanExporter,
) -> None:
    """A required driver that cannot start records its DependencyError on its tier."""
    runtime = tiered.Runtime("virtd")

    @runtime.driver(tier=0, optional=True)
    async def kvm(ctx: tiered.Context) -> AsyncIterator[None]:
        await anyio.sleep(0.01)  # tier 1 begins later than the run
        if ctx.tier >= 0:  # always
            raise OSError("no kvm")
        yield  # pragma: no cover - never runs

    @runtime.driver(tier=1, requires=(kvm,))
    async def guests(ctx: tiered.Context) -> AsyncIterator[None]:
        yield

    run = runtime.run()
    tiered.otel.trace(run, tracer_provider=provider(exporter))
    with pytest.raises(tiered.StartupError):
        async with run:
            pass
    spans = Spans(exporter)
    optional = spans.one("initialize kvm")
    assert optional.status.status_code is StatusCode.ERROR
    assert exceptions(optional)[0]["exception.type"] == "OSError"
    [blocked] = exceptions(spans.one("tier 1"))
    assert blocked["exception.type"] == "DependencyError"
    assert blocked["tiered.driver"] == "guests"
    assert spans.one("startup virtd").status.description == "failed to start: guests"


@pytest.mark.trio
async def test_a_background_crash_during_startup_is_on_the_root(
    autojump_clock: MockClock, exporter: InMemorySpanExporter
) -> None:
    """A background task that crashes during start-up, after its driver's phases, is the root's event."""
    runtime = tiered.Runtime("virtd")

    @runtime.driver(tier=0)
    async def watcher(ctx: tiered.Context) -> AsyncIterator[None]:
        async def watch() -> None:
            await anyio.sleep(1.0)  # past SLACK: not its initialize's failure
            raise RuntimeError("the watch died")

        ctx.start_soon(watch)
        yield

    runtime.add(Sleeper("slow", 1, init=10.0))
    runtime.add(Sleeper("fast", 1, init=0.5))
    run = runtime.run()
    tiered.otel.trace(run, tracer_provider=provider(exporter))
    with pytest.raises(tiered.StartupError):
        async with run:
            pass
    spans = Spans(exporter)
    root = spans.one("startup virtd")
    assert exceptions(root) == [
        {
            "exception.type": "RuntimeError",
            "exception.message": "the watch died",
            "tiered.driver": "watcher",
        }
    ]
    assert root.status.description == "failed to start: watcher"
    own = spans.one("initialize watcher")
    assert own.status.status_code is StatusCode.UNSET
    assert exceptions(own) == []
    assert attrs(spans.one("initialize slow"))["tiered.status"] == "cancelled"
    # the tier that did not come up lasted until the start gave up: the crash
    tier1 = spans.one("tier 1")
    assert offset(tier1, root) == 0.0
    assert duration(tier1) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.anyio
async def test_traces_are_roots_whatever_span_is_current(
    exporter: InMemorySpanExporter,
) -> None:
    """A run entered inside a span of the caller still makes traces of their own."""
    made = provider(exporter)
    run = three_tiers().run()
    tiered.otel.trace(run, tracer_provider=made)
    with made.get_tracer("deploy").start_as_current_span("deploy") as deploy:
        async with run:
            pass
    spans = Spans(exporter)
    for name in ("startup virtd", "shutdown virtd"):
        span = spans.one(name)
        assert span.parent is None
        assert ids(span).trace_id != deploy.get_span_context().trace_id


# -- restarts ----------------------------------------------------------------------


def crashing_once(runtime: tiered.Runtime, crash_after: float) -> None:
    """storage (tier 1, restart on failure) crashes once; qemu requires it."""
    runtime.add(Sleeper("secrets", 0, stop=0.001))
    crashed: list[bool] = []

    @runtime.driver(tier=1, requires=("secrets",), restart=tiered.Restart(delay=0.01))
    async def storage(ctx: tiered.Context) -> AsyncIterator[str]:
        async def monitor() -> None:
            await anyio.sleep(crash_after)
            if not crashed:
                crashed.append(True)
                raise ConnectionError("lost the ceph monitor")
            await anyio.sleep_forever()

        await anyio.sleep(0.001)
        ctx.start_soon(monitor)
        yield "pools"
        await anyio.sleep(0.002)

    runtime.add(Sleeper("qemu", 2, init=0.001, stop=0.001, requires=("storage",)))

    @runtime.driver(tier=2, requires=("storage",), optional=True)
    async def gpu(ctx: tiered.Context) -> AsyncIterator[None]:
        if ctx.tier >= 0:  # always: skipped, so it does not restart with storage
            raise tiered.Skip("no GPU on this host")
        yield  # pragma: no cover - never runs


def restarted(run: tiered.Run) -> anyio.Event:
    """Set once storage is up again after its restart (listened after the tracing)."""
    done = anyio.Event()

    def listen(event: tiered.RunEvent) -> None:
        running = event.kind == "state" and event.value == "running"
        if running and run.report.driver("storage").restarts:
            done.set()

    run.listen(listen)
    return done


@pytest.mark.anyio
async def test_a_restart_is_a_trace_of_its_own(exporter: InMemorySpanExporter) -> None:
    """A restart: a root span linked to start-up, with the stops and starts of its drivers."""
    runtime = tiered.Runtime("virtd")
    crashing_once(runtime, crash_after=0.01)
    run = runtime.run()
    tracing = tiered.otel.trace(run, tracer_provider=provider(exporter))
    up_again = restarted(run)
    async with run:
        with anyio.fail_after(5):
            await up_again.wait()
        spans = Spans(exporter)
    startup = spans.one("startup virtd")
    assert tracing.startup == startup.get_span_context()
    restart = spans.one("restart storage")
    assert restart.parent is None
    assert ids(restart).trace_id != ids(startup).trace_id
    assert [link.context for link in restart.links] == [startup.get_span_context()]
    assert attrs(restart) == {
        "tiered.runtime": "virtd",
        "tiered.schedule": "tiers",
        "tiered.driver": "storage",
        "tiered.tier": 1,
        "tiered.restart.attempt": 1,
        "tiered.restart.drivers": ("storage", "qemu"),
        "tiered.restart.outcome": "running",
        "tiered.restart.delay": 0.01,
    }
    assert restart.status.status_code is StatusCode.UNSET
    # dependents stop first, then it; it starts again, then its dependents
    assert spans.names_under(restart) == [
        "stop qemu",
        "stop storage",
        "initialize storage",
        "initialize qemu",
        "autostart qemu",
    ]
    assert exceptions(restart) == [
        {
            "exception.type": "ConnectionError",
            "exception.message": "lost the ceph monitor",
            "tiered.driver": "storage",
        }
    ]
    for span in spans.children(restart):
        assert attrs(span)["tiered.status"] == "running"
        assert span.start_time is not None
        assert restart.start_time is not None
        assert span.start_time >= restart.start_time
        assert exceptions(span) == []
    _, stop, start, _, _ = spans.children(restart)
    assert stop.end_time is not None
    assert start.start_time is not None
    assert (start.start_time - stop.end_time) / 1e9 >= 0.009  # the backoff
    # the phases of the new start are the report's
    record = run.report.driver("storage")
    assert record.restarts == 1
    begin, end = record.phases["initialize"]
    assert end is not None
    assert duration(start) == pytest.approx(end - begin, abs=1e-6)
    assert offset(start, startup) == pytest.approx(begin, abs=1e-6)


@pytest.mark.anyio
async def test_giving_up_is_an_error_and_stops_the_run(
    exporter: InMemorySpanExporter,
) -> None:
    """A restart whose start fails, then a give-up: ERROR spans, and the shutdown says why."""
    runtime = tiered.Runtime("virtd")
    lives: list[int] = []

    @runtime.driver(tier=0, restart=tiered.Restart(max_restarts=2, delay=0.01))
    async def storage(ctx: tiered.Context) -> AsyncIterator[None]:
        lives.append(1)
        if len(lives) == 2:
            raise OSError("still offline")

        async def monitor() -> None:
            await anyio.sleep(0.005)
            raise ConnectionError(f"lost it in life {len(lives)}")

        ctx.start_soon(monitor)
        yield

    run = runtime.run()
    tiered.otel.trace(run, tracer_provider=provider(exporter))
    with pytest.raises(tiered.ShutdownError, match="gave up"):
        async with run:
            await anyio.sleep(5)
    spans = Spans(exporter)
    first, second, last = sorted(
        spans.named("restart storage"), key=lambda s: s.start_time or 0
    )
    assert [attrs(s)["tiered.restart.outcome"] for s in (first, second, last)] == [
        "failed",
        "running",
        "gave-up",
    ]
    assert [attrs(s)["tiered.restart.attempt"] for s in (first, second, last)] == [
        1,
        2,
        3,
    ]
    # the first attempt's start failed: its initialize says so
    assert first.status.status_code is StatusCode.ERROR
    [failed] = [s for s in spans.children(first) if s.name == "initialize storage"]
    assert failed.status.status_code is StatusCode.ERROR
    assert [e["exception.message"] for e in exceptions(failed)] == ["still offline"]
    # each attempt links to the one before
    assert second.links[-1].context == first.get_span_context()
    assert last.status.status_code is StatusCode.ERROR
    assert "gave up restarting storage" in (last.status.description or "")
    assert [e.name for e in last.events] == ["exception", "gave up"]
    shutdown = spans.one("shutdown virtd")
    assert shutdown.status.status_code is StatusCode.ERROR
    assert "gave up restarting" in (shutdown.status.description or "")
    [crash] = exceptions(shutdown)
    assert crash["exception.type"] == "ConnectionError"
    assert crash["tiered.driver"] == "storage"
    assert "Traceback" in crash["exception.stacktrace"]  # the real exception


# -- shutdown ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_shutdown_is_a_trace_with_its_stops(
    exporter: InMemorySpanExporter,
) -> None:
    """The shutdown: a root linked to start-up; a stop span per driver; failed stops are errors."""
    runtime = three_tiers()
    runtime.add(SkipsInAutostart("lazy", 1))

    @runtime.driver(tier=1)
    async def pools(ctx: tiered.Context) -> AsyncIterator[None]:
        yield
        raise OSError("umount: target is busy")

    run = runtime.run()
    tiered.otel.trace(run, tracer_provider=provider(exporter))
    with pytest.raises(tiered.ShutdownError):
        async with run:
            pass
    spans = Spans(exporter)
    report = run.report
    root = spans.one("shutdown virtd")
    startup = spans.one("startup virtd")
    assert root.parent is None
    assert [link.context for link in root.links] == [startup.get_span_context()]
    assert attrs(root)["tiered.status"] == "failed"
    assert root.status.status_code is StatusCode.ERROR
    names = spans.names_under(root)
    assert sorted(names) == [
        "stop network",
        "stop pools",
        "stop qemu",
        "stop secrets",
        "stop storage",
    ]
    # lazy stopped during start-up, in its tier
    assert "stop lazy" in spans.names_under(spans.one("tier 1"))
    assert names.index("stop qemu") < names.index("stop storage")
    assert names.index("stop storage") < names.index("stop secrets")
    failed = spans.one("stop pools")
    assert failed.status.status_code is StatusCode.ERROR
    [error] = exceptions(failed)
    assert error["exception.type"] == "OSError"
    assert error["exception.message"] == "umount: target is busy"
    assert "Traceback" in error["exception.stacktrace"]
    assert report.stopping_at is not None
    assert offset(root, startup) == pytest.approx(report.stopping_at, abs=1e-6)
    for span in spans.children(root):
        start, end = report.driver(attrs(span)["tiered.driver"]).phases["stop"]
        assert end is not None
        assert duration(span) == pytest.approx(end - start, abs=1e-6)


# -- where spans go, and what is current ---------------------------------------------


@pytest.mark.anyio
@pytest.mark.usefixtures("fresh_globals")
async def test_a_provider_set_up_by_a_tier_0_driver_gets_the_whole_startup(
    exporter: InMemorySpanExporter,
) -> None:
    """A provider that a tier-0 driver sets as global in its initialize receives every start-up span."""
    runtime = three_tiers()

    @runtime.driver(tier=0)
    async def telemetry(ctx: tiered.Context) -> AsyncIterator[None]:
        await anyio.sleep(0.001)
        otel.set_tracer_provider(provider(exporter))  # what a real driver would do
        yield

    run = runtime.run()
    tiered.otel.trace(run)  # no provider: the global one, when spans are made
    async with run:
        pass
    spans = Spans(exporter)
    root = spans.one("startup virtd")
    assert len(spans.named("initialize telemetry")) == 1
    assert len(spans.named("initialize secrets")) == 1
    under_tiers = sum(len(spans.children(t)) for t in spans.children(root))
    assert under_tiers == 2 * 4 + 1  # and telemetry has no autostart
    assert spans.one("shutdown virtd")


@pytest.mark.anyio
@pytest.mark.usefixtures("fresh_globals")
async def test_background_spans_are_not_children_of_startup(
    exporter: InMemorySpanExporter,
) -> None:
    """A background task's span after start-up is a trace of its own; nothing is left current."""
    otel.set_tracer_provider(provider(exporter))
    runtime = tiered.Runtime("virtd")
    tick, polled = anyio.Event(), anyio.Event()
    seen: list[otel.Span] = []

    @runtime.driver(tier=0)
    async def poller(ctx: tiered.Context) -> AsyncIterator[None]:
        async def poll() -> None:
            await tick.wait()
            seen.append(otel.get_current_span())
            with otel.get_tracer("app").start_as_current_span("poll"):
                pass
            polled.set()

        ctx.start_soon(poll)
        yield

    run = runtime.run()
    tiered.otel.trace(run)
    async with run:
        assert otel.get_current_span() is otel.INVALID_SPAN
        tick.set()
        with anyio.fail_after(5):
            await polled.wait()
    spans = Spans(exporter)
    startup = spans.one("startup virtd")
    poll = spans.one("poll")
    assert seen == [otel.INVALID_SPAN]
    assert poll.parent is None
    assert ids(poll).trace_id != ids(startup).trace_id


@pytest.mark.anyio
async def test_trace_refuses_a_run_already_entered(
    exporter: InMemorySpanExporter,
) -> None:
    """trace() after `async with run` began is a UsageError: it would miss the start-up."""
    run = three_tiers().run()
    async with run:
        with pytest.raises(tiered.UsageError, match="before `async with run`"):
            tiered.otel.trace(run, tracer_provider=provider(exporter))
    assert Spans(exporter).all == ()


@pytest.mark.anyio
async def test_close_stops_the_tracing(exporter: InMemorySpanExporter) -> None:
    """After Tracing.close(), the run makes no spans."""
    run = three_tiers().run()
    tiered.otel.trace(run, tracer_provider=provider(exporter)).close()
    async with run:
        pass
    assert Spans(exporter).all == ()


# -- virtual time: exact ------------------------------------------------------------


@pytest.mark.trio
async def test_every_span_lasts_what_the_report_says_on_virtual_time(
    autojump_clock: MockClock, exporter: InMemorySpanExporter
) -> None:
    """On trio's virtual clock each span's start and duration are the report's, to the microsecond."""
    runtime = tiered.Runtime("virtd")
    runtime.add(Sleeper("secrets", 0, init=2.0, auto=0.5, stop=1.0))
    runtime.add(Sleeper("network", 0, init=1.0, stop=0.25))
    runtime.add(
        Sleeper("storage", 1, init=3.0, auto=4.0, stop=2.0, requires=("secrets",))
    )
    run = runtime.run()
    tiered.otel.trace(run, tracer_provider=provider(exporter))
    async with run:
        await trio.sleep(100)
    spans = Spans(exporter)
    report = run.report
    root = spans.one("startup virtd")
    assert duration(root) == pytest.approx(2.5 + 7.0, abs=1e-6)
    assert report.ready_at == pytest.approx(9.5, abs=1e-6)
    expected = {
        "initialize secrets": (0.0, 2.0),
        "autostart secrets": (2.0, 0.5),
        "initialize network": (0.0, 1.0),
        "autostart network": (2.0, 0.0),
        "initialize storage": (2.5, 3.0),
        "autostart storage": (5.5, 4.0),
        "tier 0": (0.0, 2.5),
        "tier 1": (2.5, 7.0),
    }
    for name, (start, took) in expected.items():
        span = spans.one(name)
        assert offset(span, root) == pytest.approx(start, abs=1e-6), name
        assert duration(span) == pytest.approx(took, abs=1e-6), name
    shutdown = spans.one("shutdown virtd")
    assert offset(shutdown, root) == pytest.approx(109.5, abs=1e-6)
    assert duration(shutdown) == pytest.approx(2.0 + 1.0, abs=1e-6)
    stops = {
        s.name: (round(offset(s, root), 6), round(duration(s), 6))
        for s in spans.children(shutdown)
    }
    assert stops == {
        "stop storage": (109.5, 2.0),
        "stop secrets": (111.5, 1.0),
        "stop network": (111.5, 0.25),
    }


@pytest.mark.trio
async def test_restart_spans_on_virtual_time(
    autojump_clock: MockClock, exporter: InMemorySpanExporter
) -> None:
    """A restart on virtual time: it begins at the crash, waits its backoff, ends when all are up."""
    runtime = tiered.Runtime("virtd")
    crashing_once(runtime, crash_after=30.0)
    run = runtime.run()
    tiered.otel.trace(run, tracer_provider=provider(exporter))
    async with run:
        await trio.sleep(100)
    spans = Spans(exporter)
    startup = spans.one("startup virtd")
    restart = spans.one("restart storage")
    # storage came up at 0.001 (its initialize) and crashed 30 s later
    assert offset(restart, startup) == pytest.approx(30.001, abs=1e-6)
    stop_qemu, stop_storage, init_storage, init_qemu, auto_qemu = spans.children(
        restart
    )
    assert duration(stop_qemu) == pytest.approx(0.001, abs=1e-6)
    assert offset(stop_storage, startup) == pytest.approx(30.002, abs=1e-6)
    assert duration(stop_storage) == pytest.approx(0.002, abs=1e-6)
    # the backoff: 0.01 s from the end of the stops to the new start
    assert offset(init_storage, startup) == pytest.approx(30.014, abs=1e-6)
    assert duration(init_storage) == pytest.approx(0.001, abs=1e-6)
    assert duration(init_qemu) == pytest.approx(0.001, abs=1e-6)
    assert auto_qemu.end_time == restart.end_time
    assert duration(restart) == pytest.approx(
        0.001 + 0.002 + 0.01 + 0.001 + 0.001, abs=1e-6
    )


# -- the report as the states are announced -------------------------------------------


@pytest.mark.anyio
async def test_the_report_knows_when_the_run_stopped_as_it_says_so() -> None:
    """When the 'stopped' state is announced, run.report.stopped_at is already set."""
    run = three_tiers().run()
    seen: list[float | None] = []

    def listen(event: tiered.RunEvent) -> None:
        if event.kind == "state" and event.value == "stopped":
            seen.append(run.report.stopped_at)

    run.listen(listen)
    async with run:
        pass
    assert len(seen) == 1
    assert seen[0] is not None


@pytest.mark.trio
async def test_queued_restarts_each_end_when_their_drivers_are_up(
    autojump_clock: MockClock, exporter: InMemorySpanExporter
) -> None:
    """Two drivers crash close together: each restart span ends when its own drivers are up."""
    runtime = tiered.Runtime("virtd")
    crashes = {"storage": 10.0, "network": 10.5}
    crashed: set[str] = set()

    def crashing(name: str) -> None:
        @runtime.driver(name=name, tier=0, restart=tiered.Restart(delay=1.0))
        async def driver(ctx: tiered.Context) -> AsyncIterator[None]:
            async def monitor() -> None:
                await trio.sleep(crashes[name])
                if name not in crashed:
                    crashed.add(name)
                    raise ConnectionError(f"{name} lost")
                await trio.sleep_forever()

            ctx.start_soon(monitor)
            yield

    crashing("storage")
    crashing("network")
    run = runtime.run()
    tiered.otel.trace(run, tracer_provider=provider(exporter))
    async with run:
        await trio.sleep(100)
    spans = Spans(exporter)
    startup = spans.one("startup virtd")
    storage, network = spans.one("restart storage"), spans.one("restart network")
    # storage: crash at 10, backoff 1 s, up at 11; network waited its turn
    assert offset(storage, startup) == pytest.approx(10.0, abs=1e-6)
    assert duration(storage) == pytest.approx(1.0, abs=1e-6)
    assert offset(network, startup) == pytest.approx(10.5, abs=1e-6)
    assert duration(network) == pytest.approx(1.5, abs=1e-6)
    assert spans.names_under(storage) == ["stop storage", "initialize storage"]
    assert spans.names_under(network) == ["stop network", "initialize network"]
    assert attrs(storage)["tiered.restart.drivers"] == ("storage",)
    assert attrs(network)["tiered.restart.drivers"] == ("network",)
