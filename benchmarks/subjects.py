"""tiered, the hand-written floors and an AsyncExitStack, as benchmark subjects.

Each subject does a :class:`~harness.Plan`'s work: per driver, a start that
sleeps the plan's seconds (nothing at all for a no-op driver) and a stop that
does nothing.  Objects are built before the clock starts; the clock covers
everything from there until every driver has stopped: for tiered, planning
(validation) included, with the default timeouts on.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from time import perf_counter
from typing import TYPE_CHECKING

import anyio
from harness import BEGIN, READY, STOP, Plan, Subject, Timing, driver_name

import tiered

if TYPE_CHECKING:
    from harness import Ref, Trace

ALL = frozenset({"asyncio", "uvloop", "trio"})


# -- tiered ----------------------------------------------------------------------


DriverFunction = Callable[[tiered.Context], AsyncIterator[None]]
Declaration = tuple[str, int, tuple[str, ...], DriverFunction]
"""(name, tier, names it requires, function) of one driver."""


def tiered_driver(
    tier: int, index: int, delay: float, trace: Trace | None
) -> DriverFunction:
    """One generator driver: sleeps ``delay`` while it initializes."""

    async def driver(ctx: tiered.Context) -> AsyncIterator[None]:
        if trace is not None:
            trace.append((tier, index, BEGIN))
        if delay:
            await anyio.sleep(delay)
        if trace is not None:
            trace.append((tier, index, READY))
        yield None
        if trace is not None:
            trace.append((tier, index, STOP))

    return driver


def tiered_functions(plan: Plan) -> list[Declaration]:
    """Every driver's declaration; the functions are the user's code, not tiered's."""
    return [
        (
            driver_name(t, i),
            t,
            tuple(driver_name(*r) for r in plan.requirements(t, i)),
            tiered_driver(t, i, delay, plan.trace),
        )
        for t, delays in enumerate(plan.tiers)
        for i, delay in enumerate(delays)
    ]


def tiered_runtime(functions: list[Declaration]) -> tiered.Runtime:
    """Declare the drivers, explicit tiers, the plan's requirements, default timeouts."""
    rt = tiered.Runtime("bench")
    for name, tier, requires, fn in functions:
        rt.driver(name=name, tier=tier, requires=requires)(fn)
    return rt


class NoopDriver(tiered.Driver):
    """A driver written as a class, the plan's figures on the instance.

    The same shape as facet's and aiomisc's services (``peers.py``): one
    object per driver holding its tier, index, delay and trace, with a
    start and a stop method; :func:`tiered_driver` instead makes a closure
    per driver (a function, its cells and their tuple) and each run an async
    generator, which the garbage collector walks too (docs/benchmarks.md).
    """

    def __init__(
        self, name: str, tier: int, index: int, delay: float, trace: Trace | None
    ) -> None:
        self.name = name
        self.tier = tier  # the declaration, ``int | None`` for tiered
        self.rank = tier  # the same, as the trace records it
        self.index = index
        self.delay = delay
        self.trace = trace

    async def initialize(self, ctx: tiered.Context) -> None:
        """The driver's start: sleep the plan's seconds."""
        if self.trace is not None:
            self.trace.append((self.rank, self.index, BEGIN))
        if self.delay:
            await anyio.sleep(self.delay)
        if self.trace is not None:
            self.trace.append((self.rank, self.index, READY))

    async def stop(self, ctx: tiered.Context) -> None:
        """The driver's stop: nothing."""
        if self.trace is not None:
            self.trace.append((self.rank, self.index, STOP))


async def run_tiered_classes(plan: Plan) -> Timing:
    """As :func:`run_tiered`, with one :class:`NoopDriver` instance per driver."""
    rt = tiered.Runtime("bench")
    for t, delays in enumerate(plan.tiers):
        for i, delay in enumerate(delays):
            rt.add(NoopDriver(driver_name(t, i), t, i, delay, plan.trace))
    return await _timed_run(rt, "tiers")


async def _timed_run(rt: tiered.Runtime, schedule: str) -> Timing:
    """One run of ``rt``, timed from planning to the last stop."""
    t0 = perf_counter()
    async with rt.run(schedule=schedule):
        t1 = perf_counter()
    t2 = perf_counter()
    return Timing(t1 - t0, t2 - t1)


async def _run_tiered(plan: Plan, schedule: str) -> Timing:
    return await _timed_run(tiered_runtime(tiered_functions(plan)), schedule)


async def run_tiered(plan: Plan) -> Timing:
    """``async with runtime.run()``: plan, start every tier, stop in reverse."""
    return await _run_tiered(plan, "tiers")


async def run_tiered_dependencies(plan: Plan) -> Timing:
    """``runtime.run(schedule="dependencies")``: each driver once its requirements are up."""
    return await _run_tiered(plan, "dependencies")


async def run_tiered_no_gc(plan: Plan) -> Timing:
    """As :func:`run_tiered`, with the cyclic garbage collector off meanwhile.

    Not a way to run tiered: a control for the scaling workload, to show how
    much of the growth of time per driver with size is the collector's.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return await run_tiered(plan)
    finally:
        if was_enabled:
            gc.enable()


# the format `tiered run` gives its log (src/tiered/_cli.py)
LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def _info_handler() -> logging.Handler:
    """A real handler on a real file: /dev/null, so that no disk is measured.

    A ``FileHandler`` is a ``StreamHandler`` on the file it opens; each
    record is formatted, written and flushed, as on a daemon's stderr.
    """
    handler = logging.FileHandler(os.devnull)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    return handler


async def run_tiered_info_log(plan: Plan) -> Timing:
    """As :func:`run_tiered`, with the ``tiered`` logger at INFO to a handler.

    The handler is set up before the clock starts and removed after; the
    records stop at it (``propagate`` off), so whatever handlers the root
    logger has (pytest's, say) are not measured.
    """
    logger = logging.getLogger("tiered")
    handler = _info_handler()
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        return await run_tiered(plan)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate
        handler.close()


# -- the anyio floor: a task group per tier, by hand ----------------------------


async def _anyio_start(
    tier: int, index: int, delay: float, trace: Trace | None
) -> None:
    if trace is not None:
        trace.append((tier, index, BEGIN))
    if delay:
        await anyio.sleep(delay)
    if trace is not None:
        trace.append((tier, index, READY))


async def _plain_stop(tier: int, index: int, trace: Trace | None) -> None:
    if trace is not None:
        trace.append((tier, index, STOP))


async def run_anyio_floor(plan: Plan) -> Timing:
    """One anyio task group per tier to start, one per tier in reverse to stop."""
    trace = plan.trace
    t0 = perf_counter()
    for t, delays in enumerate(plan.tiers):
        async with anyio.create_task_group() as tg:
            for i, delay in enumerate(delays):
                tg.start_soon(_anyio_start, t, i, delay, trace)
    t1 = perf_counter()
    for t in reversed(range(len(plan.tiers))):
        async with anyio.create_task_group() as tg:
            for i in range(len(plan.tiers[t])):
                tg.start_soon(_plain_stop, t, i, trace)
    t2 = perf_counter()
    return Timing(t1 - t0, t2 - t1)


# -- the native floor: asyncio.TaskGroup or a trio nursery per tier -------------


async def _asyncio_start(
    tier: int, index: int, delay: float, trace: Trace | None
) -> None:
    if trace is not None:
        trace.append((tier, index, BEGIN))
    if delay:
        await asyncio.sleep(delay)
    if trace is not None:
        trace.append((tier, index, READY))


async def _native_asyncio(plan: Plan) -> Timing:
    trace = plan.trace
    t0 = perf_counter()
    for t, delays in enumerate(plan.tiers):
        async with asyncio.TaskGroup() as tg:
            for i, delay in enumerate(delays):
                tg.create_task(_asyncio_start(t, i, delay, trace))
    t1 = perf_counter()
    for t in reversed(range(len(plan.tiers))):
        async with asyncio.TaskGroup() as tg:
            for i in range(len(plan.tiers[t])):
                tg.create_task(_plain_stop(t, i, trace))
    t2 = perf_counter()
    return Timing(t1 - t0, t2 - t1)


async def _native_trio(plan: Plan) -> Timing:
    import trio

    async def start(tier: int, index: int, delay: float) -> None:
        if trace is not None:
            trace.append((tier, index, BEGIN))
        if delay:
            await trio.sleep(delay)
        if trace is not None:
            trace.append((tier, index, READY))

    trace = plan.trace
    t0 = perf_counter()
    for t, delays in enumerate(plan.tiers):
        async with trio.open_nursery() as nursery:
            for i, delay in enumerate(delays):
                nursery.start_soon(start, t, i, delay)
    t1 = perf_counter()
    for t in reversed(range(len(plan.tiers))):
        async with trio.open_nursery() as nursery:
            for i in range(len(plan.tiers[t])):
                nursery.start_soon(_plain_stop, t, i, trace)
    t2 = perf_counter()
    return Timing(t1 - t0, t2 - t1)


async def run_native_floor(plan: Plan) -> Timing:
    """The loop's own structured concurrency, one group per tier, no anyio."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # not on asyncio: on trio
        return await _native_trio(plan)
    return await _native_asyncio(plan)


# -- the DAG by hand: one anyio task per driver, an event per driver ------------


async def run_dag_by_hand(plan: Plan) -> Timing:
    """One task per driver awaiting its requirements' events; stop in reverse.

    To start, each driver's task awaits the ``anyio.Event`` of every driver
    it requires, sleeps, then sets its own; to stop, each awaits the stop
    event of every driver that requires it, then sets its own.  All of a
    phase's tasks run in one task group, so a phase ends when its last
    driver is done.  No timeouts, no rollback, no report.
    """
    trace = plan.trace
    refs = [(t, i) for t, delays in enumerate(plan.tiers) for i in range(len(delays))]
    up = {r: anyio.Event() for r in refs}
    down = {r: anyio.Event() for r in refs}
    dependents: dict[Ref, list[Ref]] = {r: [] for r in refs}
    for r in refs:
        for need in plan.requirements(*r):
            dependents[need].append(r)

    async def start(ref: Ref, delay: float) -> None:
        for need in plan.requirements(*ref):
            await up[need].wait()
        if trace is not None:
            trace.append((*ref, BEGIN))
        if delay:
            await anyio.sleep(delay)
        if trace is not None:
            trace.append((*ref, READY))
        up[ref].set()

    async def stop(ref: Ref) -> None:
        for dependent in dependents[ref]:
            await down[dependent].wait()
        if trace is not None:
            trace.append((*ref, STOP))
        down[ref].set()

    t0 = perf_counter()
    async with anyio.create_task_group() as tg:
        for t, i in refs:
            tg.start_soon(start, (t, i), plan.tiers[t][i])
    t1 = perf_counter()
    async with anyio.create_task_group() as tg:
        # spawned tier 0 first: the events, not the spawn order, keep the
        # reverse order, so the order check sees them do it
        for ref in refs:
            tg.start_soon(stop, ref)
    t2 = perf_counter()
    return Timing(t1 - t0, t2 - t1)


# -- contextlib.AsyncExitStack: one driver after another ------------------------


@asynccontextmanager
async def _exitstack_driver(
    tier: int, index: int, delay: float, trace: Trace | None
) -> AsyncIterator[None]:
    if trace is not None:
        trace.append((tier, index, BEGIN))
    if delay:
        await anyio.sleep(delay)
    if trace is not None:
        trace.append((tier, index, READY))
    yield None
    if trace is not None:
        trace.append((tier, index, STOP))


async def run_exitstack(plan: Plan) -> Timing:
    """Enter each driver in tier order, leave in reverse: a typical lifespan."""
    drivers = [
        _exitstack_driver(t, i, delay, plan.trace)
        for t, delays in enumerate(plan.tiers)
        for i, delay in enumerate(delays)
    ]
    t0 = perf_counter()
    async with AsyncExitStack() as stack:
        for cm in drivers:
            await stack.enter_async_context(cm)
        t1 = perf_counter()
    t2 = perf_counter()
    return Timing(t1 - t0, t2 - t1)


TIERED = Subject(
    "tiered",
    "tiered",
    run_tiered,
    ALL,
    "`async with runtime.run()`; explicit tiers, default timeouts (90 s) on.",
)
TIERED_CLASSES = Subject(
    "tiered_classes",
    "tiered, drivers written as classes",
    run_tiered_classes,
    ALL,
    "As tiered, each driver a `tiered.Driver` subclass instance holding its "
    "figures (`runtime.add()`), with `initialize` and `stop` methods: the "
    "shape of the peers' services. tiered's own row uses generator drivers, "
    "a closure each.",
)
TIERED_DEPENDENCIES = Subject(
    "tiered_dependencies",
    'tiered, schedule="dependencies"',
    run_tiered_dependencies,
    ALL,
    '`runtime.run(schedule="dependencies")` on the same declarations as '
    "tiered (explicit tiers, each driver's `requires`, default timeouts): a "
    "driver begins once what it requires is up, and stops once what "
    "requires it has stopped; no barrier between tiers.",
)
DAG_BY_HAND = Subject(
    "dag_by_hand",
    "the DAG by hand (anyio events)",
    run_dag_by_hand,
    ALL,
    "By hand: one anyio task per driver in one task group, awaiting the "
    "`anyio.Event` of each driver it requires, then sleeping, then setting "
    "its own; to stop, one task per driver awaiting the stop events of the "
    "drivers that require it. No timeouts, no rollback, no report.",
)
TIERED_NO_GC = Subject(
    "tiered_no_gc",
    "tiered, garbage collector off (a control)",
    run_tiered_no_gc,
    ALL,
    "tiered as above, with gc.disable() around the run: a control that shows "
    "what of the scaling is the cyclic garbage collector's.",
)
TIERED_INFO_LOG = Subject(
    "tiered_info_log",
    "tiered, logging at INFO",
    run_tiered_info_log,
    ALL,
    "tiered as above, with the `tiered` logger at INFO going to a "
    "`logging.FileHandler` on /dev/null, in the format of `tiered run`; "
    "the default (no handler, level WARNING) keeps logging off.",
)
ANYIO_FLOOR = Subject(
    "anyio_floor",
    "anyio floor (by hand)",
    run_anyio_floor,
    ALL,
    "By hand: one anyio task group per tier to start, one per tier in reverse "
    "to stop; no timeouts, no rollback, no report.",
)
NATIVE_FLOOR = Subject(
    "native_floor",
    "native floor (TaskGroup / nursery)",
    run_native_floor,
    ALL,
    "By hand without anyio: asyncio.TaskGroup (asyncio, uvloop) or a trio "
    "nursery per tier, as the anyio floor.",
)
EXITSTACK = Subject(
    "exitstack",
    "contextlib.AsyncExitStack",
    run_exitstack,
    ALL,
    "One async context manager per driver, entered in tier order and left in "
    "reverse. Order is kept, but nothing runs concurrently: no concurrent "
    "start within a tier, no timeouts.",
)
