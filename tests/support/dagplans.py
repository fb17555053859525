"""Random DAG plans for tests/test_properties_dag.py: strategies, drivers, model, runs.

A plan is a tuple of :class:`DriverPlan`: random drivers over a few tiers,
random ``requires`` and ``after`` to lower tiers, random ``optional``, one
random fault each.  :func:`build` makes the runtime whose hooks record
into a :class:`~support.recorder.Recorder`; :func:`expect` predicts
start-up; :func:`time_bounds` bounds the run; :func:`run_on` runs one
example on a backend (trio on an autojumping ``MockClock``) in a thread it
gives up on if the run deadlocks.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeVar

import anyio
import trio.testing
from hypothesis import strategies as st

import tiered

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from support.recorder import Recorder

T = TypeVar("T")

Backend = Literal["asyncio", "uvloop", "trio"]
Schedule = Literal["tiers", "dependencies"]
Fault = Literal[
    "none",
    "init_raise",
    "init_skip",
    "init_hang",
    "auto_raise",
    "auto_skip",
    "auto_hang",
    "stop_raise",
    "stop_hang",
]

MAX_DRIVERS = 16
MAX_TIER = 3  # tiers 0..3

#: the runtime's default timeouts: no healthy hook comes near them
DEFAULT_TIMEOUT = {"asyncio": 30.0, "uvloop": 30.0, "trio": 100.0}

#: the timeout a hanging hook gets, drawn from these
HANG_TIMEOUTS = {
    "asyncio": (0.01, 0.02, 0.04),
    "uvloop": (0.01, 0.02, 0.04),
    "trio": (3.0, 7.0, 15.0),
}

#: how long a healthy hook sleeps (virtual seconds on trio, so the time
#: bounds there tell a chain from a sum)
DELAYS = {
    "asyncio": (0.0, 0.0, 0.0, 0.001, 0.003),
    "uvloop": (0.0, 0.0, 0.0, 0.001, 0.003),
    "trio": (0.0, 0.0, 1.0, 2.0, 5.0),
}

#: real seconds after which a run that has not returned is deadlocked (a
#: deadlock in a shielded scope defeats fail_after and pytest-timeout alike)
WATCHDOG = 10.0

#: the faults that fail a start (Skip does not), and those of a stop
START_FAULTS = ("init_raise", "init_hang", "auto_raise", "auto_hang")
STOP_FAULTS = ("stop_raise", "stop_hang")


class Boom(Exception):
    """The error a faulty hook raises."""


class Deadlock(BaseException):
    """A run that never returned (a BaseException: Hypothesis then does not shrink)."""


@dataclass(frozen=True)
class DriverPlan:
    """One random driver: its declaration, its fault and its delays."""

    name: str
    tier: int
    requires: tuple[str, ...]
    after: tuple[str, ...]
    optional: bool
    kind: Literal["generator", "class"]
    has_autostart: bool
    has_stop: bool
    background: bool
    fault: Fault
    init_delay: float
    auto_delay: float
    stop_delay: float
    start_timeout: float | None = None
    stop_timeout: float | None = None

    @property
    def needs(self) -> tuple[str, ...]:
        return self.requires + self.after


Plan = tuple[DriverPlan, ...]


@dataclass(frozen=True)
class Scenario:
    """One example: a plan, and the ``max_concurrent_starts`` it runs under."""

    plan: Plan
    limit: int | None


# -- plans ---------------------------------------------------------------------


@st.composite
def plans(draw: st.DrawFn, *, backend: Backend) -> Plan:
    """Random DAGs of 1..16 drivers over up to four tiers."""
    n = draw(st.integers(1, MAX_DRIVERS))
    tiers = draw(st.lists(st.integers(0, MAX_TIER), min_size=n, max_size=n))
    fault_rate = draw(st.integers(0, 3))  # in tenths: some plans start up
    drivers: list[DriverPlan] = []
    for i, tier in enumerate(tiers):
        lower = [f"d{j}" for j, t in enumerate(tiers) if t < tier]
        requires: tuple[str, ...] = ()
        after: tuple[str, ...] = ()
        if lower:
            requires = tuple(
                draw(st.lists(st.sampled_from(lower), unique=True, max_size=3))
            )
            rest = [name for name in lower if name not in requires]
            if rest:
                after = tuple(
                    draw(st.lists(st.sampled_from(rest), unique=True, max_size=2))
                )
        kind = draw(st.sampled_from(["generator", "class"]))
        has_autostart = kind == "class" and draw(st.booleans())
        has_stop = kind == "generator" or draw(st.booleans())
        fault: Fault = "none"
        if draw(st.integers(0, 9)) < fault_rate:
            faults: list[Fault] = ["init_raise", "init_skip", "init_hang"]
            if has_autostart:
                faults += ["auto_raise", "auto_skip", "auto_hang"]
            if has_stop:
                faults += ["stop_raise", "stop_hang"]
            fault = draw(st.sampled_from(faults))
        start_timeout = stop_timeout = None
        if fault in ("init_hang", "auto_hang"):
            start_timeout = draw(st.sampled_from(HANG_TIMEOUTS[backend]))
        if fault == "stop_hang":
            stop_timeout = draw(st.sampled_from(HANG_TIMEOUTS[backend]))
        delays = st.sampled_from(DELAYS[backend])
        drivers.append(
            DriverPlan(
                name=f"d{i}",
                tier=tier,
                requires=requires,
                after=after,
                optional=draw(st.booleans()),
                kind=kind,  # type: ignore[arg-type]
                has_autostart=has_autostart,
                has_stop=has_stop,
                background=draw(st.integers(0, 3)) == 0,
                fault=fault,
                init_delay=draw(delays),
                auto_delay=draw(delays),
                stop_delay=draw(delays),
                start_timeout=start_timeout,
                stop_timeout=stop_timeout,
            )
        )
    return tuple(drivers)


@st.composite
def scenarios(draw: st.DrawFn, *, backend: Backend) -> Scenario:
    """A random plan, with no limit on starts half the time, else 1 to 4."""
    plan = draw(plans(backend=backend), label="plan")
    limit = draw(st.one_of(st.none(), st.integers(1, 4)), label="limit")
    return Scenario(plan, limit)


# -- drivers that record -------------------------------------------------------


def _value_name(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, tiered.Driver):
        return value.name
    return None


async def _background(d: DriverPlan, rec: Recorder) -> None:
    rec.add("bg_begin", d.name)
    try:
        await anyio.sleep_forever()
    finally:
        rec.add("bg_end", d.name)


async def _initialize(d: DriverPlan, rec: Recorder, ctx: tiered.Context) -> None:
    rec.add("init_begin", d.name)
    try:
        if any(_value_name(ctx.get(r)) != r for r in d.requires):
            rec.add("bad_value", d.name)
        for name in d.after:  # after gives no value
            try:
                ctx.get(name)
                rec.add("bad_value", d.name)
            except tiered.DependencyError:
                pass
        if d.background:
            ctx.start_soon(_background, d, rec)
        await anyio.sleep(d.init_delay)
        if d.fault == "init_raise":
            rec.add("init_fail", d.name)
            raise Boom(f"{d.name} initialize")
        if d.fault == "init_skip":
            rec.add("init_fail", d.name)
            raise tiered.Skip(f"{d.name} skips in initialize")
        if d.fault == "init_hang":
            await anyio.sleep_forever()
        rec.add("init_end", d.name)
    finally:
        rec.add("init_exit", d.name)


async def _autostart(d: DriverPlan, rec: Recorder) -> None:
    rec.add("auto_begin", d.name)
    try:
        await anyio.sleep(d.auto_delay)
        if d.fault == "auto_raise":
            rec.add("auto_fail", d.name)
            raise Boom(f"{d.name} autostart")
        if d.fault == "auto_skip":
            rec.add("auto_fail", d.name)
            raise tiered.Skip(f"{d.name} skips in autostart")
        if d.fault == "auto_hang":
            await anyio.sleep_forever()
        rec.add("auto_end", d.name)
    finally:
        rec.add("auto_exit", d.name)


async def _stop(d: DriverPlan, rec: Recorder) -> None:
    rec.add("stop", d.name)
    try:
        await anyio.sleep(d.stop_delay)
        if d.fault == "stop_raise":
            rec.add("stop_fail", d.name)
            raise Boom(f"{d.name} stop")
        if d.fault == "stop_hang":
            await anyio.sleep_forever()
    finally:
        rec.add("stop_end", d.name)


def _generator(
    d: DriverPlan, rec: Recorder
) -> Callable[[tiered.Context], AsyncIterator[str]]:
    async def driver(ctx: tiered.Context) -> AsyncIterator[str]:
        await _initialize(d, rec, ctx)
        yield d.name
        await _stop(d, rec)

    return driver


class _Recorded(tiered.Driver):
    def __init__(self, d: DriverPlan, rec: Recorder) -> None:
        self.plan = d
        self.rec = rec
        self.name = d.name
        self.tier = d.tier
        self.requires = d.requires
        self.after = d.after
        self.optional = d.optional
        self.start_timeout = d.start_timeout
        self.stop_timeout = d.stop_timeout

    async def initialize(self, ctx: tiered.Context) -> None:
        await _initialize(self.plan, self.rec, ctx)


class _WithAutostart(_Recorded):
    async def autostart(self, ctx: tiered.Context) -> None:
        await _autostart(self.plan, self.rec)


class _WithStop(_Recorded):
    async def stop(self, ctx: tiered.Context) -> None:
        await _stop(self.plan, self.rec)


class _WithBoth(_WithAutostart, _WithStop):
    pass


CLASSES: dict[tuple[bool, bool], type[_Recorded]] = {
    (False, False): _Recorded,
    (True, False): _WithAutostart,
    (False, True): _WithStop,
    (True, True): _WithBoth,
}


def build(
    scenario: Scenario, rec: Recorder, schedule: Schedule, default: float
) -> tiered.Runtime:
    """The runtime of ``scenario``, whose hooks append to ``rec``."""
    runtime = tiered.Runtime(
        "dag",
        start_timeout=default,
        stop_timeout=default,
        schedule=schedule,
        max_concurrent_starts=scenario.limit,
    )
    for d in scenario.plan:
        if d.kind == "generator":
            runtime.driver(
                name=d.name,
                tier=d.tier,
                requires=d.requires,
                after=d.after,
                optional=d.optional,
                start_timeout=d.start_timeout,
                stop_timeout=d.stop_timeout,
            )(_generator(d, rec))
        else:
            runtime.add(CLASSES[d.has_autostart, d.has_stop](d, rec))
    return runtime


# -- the model -----------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """What start-up does when nothing cancels it (no required failure)."""

    #: every driver's start-up status, if left to run
    status: dict[str, str]
    #: the drivers a failed or skipped requirement keeps from starting
    blocked: frozenset[str]
    #: the required drivers that fail when left to run: any of them fails
    #: the start-up, and which of them get to run depends on timing
    failing: frozenset[str]


def expect(plan: Plan) -> Expected:
    """Each driver's status from its requirements' and its own fault.

    ``after`` plays no part: its target's failure or skip neither fails nor
    skips the dependent.  Requirements are of lower tiers, so tier order is
    a topological order.
    """
    status: dict[str, str] = {}
    blocked: set[str] = set()
    for d in sorted(plan, key=lambda d: d.tier):
        if any(status[r] in ("failed", "skipped") for r in d.requires):
            status[d.name] = "skipped" if d.optional else "failed"
            blocked.add(d.name)
        elif d.fault in START_FAULTS:
            status[d.name] = "failed"
        elif d.fault in ("init_skip", "auto_skip"):
            status[d.name] = "skipped"
        else:
            status[d.name] = "running"
    failing = {d.name for d in plan if status[d.name] == "failed" and not d.optional}
    return Expected(status, frozenset(blocked), frozenset(failing))


def _start_timeout(d: DriverPlan, default: float) -> float:
    return default if d.start_timeout is None else d.start_timeout


def _stop_timeout(d: DriverPlan, default: float) -> float:
    return default if d.stop_timeout is None else d.stop_timeout


def time_bounds(
    plan: Plan, schedule: Schedule, limit: int | None, default: float
) -> tuple[float, float]:
    """How long the run may take at most: (from the plan, sum of timeouts).

    A driver's start costs its initialize plus its autostart (a hang: its
    start timeout), plus its stop when a fault in autostart may make it
    stop at once; its stop costs its stop delay (a hang: its stop timeout).
    In dependencies mode start-up is the longest chain of starts, and the
    stop the longest chain of stops; in tiers mode each tier costs its
    slowest initialize, then its slowest autostart, then its slowest stop.  Under a limit only the sum of
    timeouts is a bound that holds.
    """

    def stop(d: DriverPlan) -> float:
        if d.fault == "stop_hang":
            return _stop_timeout(d, default)
        return d.stop_delay if d.has_stop else 0.0

    def init(d: DriverPlan) -> float:
        return _start_timeout(d, default) if d.fault == "init_hang" else d.init_delay

    def auto(d: DriverPlan) -> float:
        took = 0.0
        if d.has_autostart:
            took = (
                _start_timeout(d, default) if d.fault == "auto_hang" else d.auto_delay
            )
        if d.fault in ("auto_raise", "auto_skip", "auto_hang"):
            took += stop(d)  # it may stop at once, inside start-up
        return took

    def start(d: DriverPlan) -> float:
        if d.fault == "init_hang":
            return _start_timeout(d, default)
        if d.fault == "auto_hang":  # the timeout bounds both hooks together
            return _start_timeout(d, default) + stop(d)
        return d.init_delay + auto(d)

    literal = sum(_start_timeout(d, default) + _stop_timeout(d, default) for d in plan)
    if limit is not None:
        return literal, literal
    if schedule == "tiers":
        by_tier: dict[int, list[DriverPlan]] = {}
        for d in plan:
            by_tier.setdefault(d.tier, []).append(d)
        tight = sum(
            max(map(init, ds)) + max(map(auto, ds)) + max(map(stop, ds))
            for ds in by_tier.values()
        )
        return tight, literal
    up: dict[str, float] = {}
    for d in sorted(plan, key=lambda d: d.tier):
        up[d.name] = max((up[n] for n in d.needs), default=0.0) + start(d)
    down: dict[str, float] = {}
    needed_by: dict[str, list[str]] = {d.name: [] for d in plan}
    for d in plan:
        for n in d.needs:
            needed_by[n].append(d.name)
    for d in sorted(plan, key=lambda d: -d.tier):
        down[d.name] = max((down[n] for n in needed_by[d.name]), default=0.0) + stop(d)
    return max(up.values()) + max(down.values()), literal


# -- running -------------------------------------------------------------------


def _run(backend: Backend, fn: Callable[[], Awaitable[T]]) -> T:
    if backend == "trio":
        clock = trio.testing.MockClock(autojump_threshold=0)
        return anyio.run(fn, backend="trio", backend_options={"clock": clock})
    if backend == "uvloop":
        return anyio.run(fn, backend="asyncio", backend_options={"use_uvloop": True})
    return anyio.run(fn, backend="asyncio")


def run_on(backend: Backend, fn: Callable[[], Awaitable[T]], what: object) -> T:
    """``anyio.run(fn)`` in a thread; :class:`Deadlock` if it does not return."""
    results: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            results.append(_run(backend, fn))
        except BaseException as exc:  # handed to the test's thread
            errors.append(exc)

    thread = threading.Thread(target=target, name=f"dag-{backend}", daemon=True)
    thread.start()
    thread.join(WATCHDOG)
    if thread.is_alive():
        msg = f"the run on {backend} deadlocked; scenario: {what!r}"
        raise Deadlock(msg)
    if errors:
        raise errors[0]
    return results[0]


@dataclass
class Outcome:
    """What one run did, for the checks."""

    entered: bool
    during: tiered.Report | None
    after: tiered.Report
    error: BaseException | None
    elapsed: float
    tasks_before: frozenset[int]
    tasks_after: frozenset[int]


def live_tasks() -> frozenset[int]:
    return frozenset(t.id for t in anyio.get_running_tasks())


async def run_scenario(
    scenario: Scenario, rec: Recorder, backend: Backend, schedule: Schedule
) -> Outcome:
    """Enter the run, snapshot the report, leave; what happened."""
    run = build(scenario, rec, schedule, DEFAULT_TIMEOUT[backend]).run()
    during: tiered.Report | None = None
    error: BaseException | None = None
    entered = False
    before = live_tasks()
    began = anyio.current_time()
    try:
        async with run:
            entered = True
            rec.add("body")
            during = run.report
    except (tiered.StartupError, tiered.ShutdownError) as exc:
        error = exc
    elapsed = anyio.current_time() - began
    return Outcome(entered, during, run.report, error, elapsed, before, live_tasks())
