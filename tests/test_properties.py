"""Property tests: the scheduler's invariants over random plans with random faults.

Each example builds a random runtime (1..40 drivers over up to 6 tiers, a mix
of ``@runtime.driver`` generators and ``tiered.Driver`` subclasses, random
requirements on lower tiers, random ``optional``, some drivers with a
background task, small random delays) with one random fault per driver:

- ``init_raise`` / ``auto_raise``: the hook raises;
- ``init_frozen`` / ``auto_frozen`` / ``stop_frozen``: the hook raises an
  exception that cannot take notes (a frozen dataclass: ``add_note()``
  raises), and ``init_unprintable`` / ``auto_unprintable`` /
  ``stop_unprintable`` one whose ``str()`` raises; both count exactly as
  ``*_raise`` does (each once hung the run, tests/test_robustness.py);
- ``init_base`` / ``auto_base`` / ``stop_base``: the hook raises
  ``Interrupt``, a ``BaseException`` of the application's own: like a
  KeyboardInterrupt it aborts the start-up (optional driver or not), and
  propagates as itself once everything stopped;
- ``init_skip`` / ``auto_skip``: the hook raises ``tiered.Skip``;
- ``init_hang`` / ``auto_hang``: the hook never returns, so its
  ``start_timeout`` ends it (a ``DriverTimeout``);
- ``stop_raise``: ``stop`` raises; ``stop_hang``: ``stop`` never returns, so
  its ``stop_timeout`` ends it;

and, in about a third of the examples, a cancellation from outside the run
at a random moment (a random delay, then a random number of checkpoints):
during start-up, in the body, during the shutdown or after the run.  It runs
once on one backend with ``anyio.run`` and checks what the hooks recorded
(tests/support/recorder.py) and what the run reported against the contract
in docs/design.md:

1. no driver begins before every lower tier is ready (the barrier);
2. each driver that completed ``initialize`` is stopped exactly once, no
   other driver is, and its background task ends before its ``stop``;
3. stops run tier by tier in reverse order;
4. the outcome matches a model of start-up, and the error (``StartupError``
   or ``ShutdownError``) names every driver that failed, in its exceptions'
   notes (a frozen exception names its driver itself) and in its message.
   An ``Interrupt`` that a hook raised propagates as itself instead, and so
   does a cancellation from outside (docs/design.md: cancellation is not an
   error): a start-up cancelled before any required driver failed raises no
   ``StartupError``, a run cancelled while
   it runs or stops no ``ShutdownError``; no hook begins after the cancel,
   though a cancel that comes as the last tier finishes may let the body
   begin, whose first checkpoint then takes it;
5. no task is left running (the set of live tasks is the same before and
   after the run);
6. the report's phases match the hooks that ran, in time order;
7. the run ends within the sum of its timeouts, and within a tighter bound
   worked out from the plan (each tier: its slowest start, then its slowest
   stop; a hang counts as its timeout).

Hangs cost their timeout.  On trio the run is on an autojumping
``MockClock``: time is virtual, a hang ends at once, and the time bounds are
checked exactly.  On asyncio and uvloop time is real, so a hanging driver
gets a short timeout of its own (10 to 40 ms) while the others keep the
runtime's long default, which no healthy hook comes near however loaded the
machine; the time bounds then get a fixed slack for scheduling.

A small model (``expect``) predicts the outcome of start-up: tiers before the
first tier with a failing required driver behave deterministically, because
only a required failure cancels anything.  Inside the failing tier, which
siblings get cancelled depends on timing, so only bounds are checked there.

``make test`` runs 200 examples per backend, derandomized (the same examples
on every run, so a failure in CI reproduces locally); ``make soak``
(``TIERED_SOAK=1``) runs 10,000 random examples per backend.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeVar, cast

import anyio
import anyio.lowlevel
import pytest
import trio.testing
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import tiered
from support.backends import BACKENDS, Backend
from support.recorder import Recorder
from support.sizes import SOAK, size

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

T = TypeVar("T")

Fault = Literal[
    "none",
    "init_raise",
    "init_frozen",
    "init_unprintable",
    "init_base",
    "init_skip",
    "init_hang",
    "auto_raise",
    "auto_frozen",
    "auto_unprintable",
    "auto_base",
    "auto_skip",
    "auto_hang",
    "stop_raise",
    "stop_frozen",
    "stop_unprintable",
    "stop_base",
    "stop_hang",
]
#: what a ``*_raise`` fault raises, drawn per faulty driver: mostly a plain
#: ``Boom``, sometimes one of the exceptions that once hung the run
FLAVOURS = ("raise", "raise", "raise", "frozen", "unprintable", "base")


#: examples per backend: 200 in ``make test``, 10,000 in ``make soak``
EXAMPLES = size(200, 10_000)
MAX_DRIVERS = 40
MAX_TIER = 5  # tiers 0..5: six tiers

#: the runtime's default timeouts (seconds; virtual on trio).  No healthy hook
#: comes near them: only a hang, which has a short timeout of its own, ends
#: by a timeout.  The regression tests below use it too.
START_TIMEOUT = 5.0
DEFAULT_TIMEOUT = {"asyncio": 30.0, "uvloop": 30.0, "trio": START_TIMEOUT}
#: the timeout a hanging hook gets, drawn from these
HANG_TIMEOUTS = {
    "asyncio": (0.01, 0.02, 0.04),
    "uvloop": (0.01, 0.02, 0.04),
    "trio": (0.5, 1.0, 2.5),
}
#: when the outside cancellation comes (seconds after the run began) ...
CANCEL_AFTER = {
    "asyncio": (0.0, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.015, 0.03),
    "uvloop": (0.0, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.015, 0.03),
    "trio": (0.0, 0.001, 0.003, 0.006, 0.5, 1.0, 2.0, 3.0, 5.0),
}
#: ... and how long the body of ``async with run`` lasts
BODY = {
    "asyncio": (0.0, 0.0, 0.002, 0.01),
    "uvloop": (0.0, 0.0, 0.002, 0.01),
    "trio": (0.0, 0.0, 0.002, 1.0),
}
#: what the time bounds allow on top: real clocks schedule late under load
#: (on a shared two-core machine one run in 10,000 took 2.3 s instead of 0.1)
SLACK = {"asyncio": 5.0, "uvloop": 5.0, "trio": 1e-6}
#: a run that takes longer than this (virtual time on trio) is stuck
STUCK_AFTER = {"asyncio": 20.0, "uvloop": 20.0, "trio": 2000.0}
#: real seconds after which an event loop that has not returned is deadlocked.
#: A deadlock inside a shielded scope defeats ``fail_after`` and pytest-timeout
#: alike (Hypothesis would re-run the hanging example while shrinking), so
#: every run happens in a thread that is abandoned if it does not finish.
WATCHDOG = 10.0
DELAYS = (0.0, 0.0, 0.0, 0.001, 0.003)
NOTE = re.compile(
    r"driver '(?P<name>[^']+)' \(tier (?P<tier>\d+)\), phase (?P<phase>\w+)"
)
SHUTDOWN_NAMES = re.compile(r"stopped with errors \((?P<names>[^)]*)\)$")

PROPERTY_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    # the same examples on every `make test` (a CI failure reproduces); random
    # ones under `make soak`, where Hypothesis prints the seed of a failure
    derandomize=not SOAK,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class Boom(Exception):
    """The error a faulty hook raises."""


@dataclass(frozen=True)
class FrozenBoom(Boom):
    """A Boom that cannot take notes (``add_note()`` raises), so it names its driver."""

    driver: str
    tier: int
    phase: str


class UnprintableBoom(Boom):
    """A Boom whose ``str()`` raises."""

    def __str__(self) -> str:
        raise RuntimeError("no str")


class Interrupt(BaseException):
    """An application's own BaseException: neither KeyboardInterrupt nor SystemExit."""

    def __init__(self, driver: str) -> None:
        super().__init__(driver)
        self.driver = driver


def failure(d: DriverPlan, phase: str) -> BaseException:
    """What ``d``'s faulty hook raises in ``phase``, after its fault's flavour."""
    flavour = d.fault.partition("_")[2]
    if flavour == "frozen":
        return FrozenBoom(d.name, d.tier, phase)
    if flavour == "unprintable":
        return UnprintableBoom(f"{d.name} {phase}")
    if flavour == "base":
        return Interrupt(d.name)
    return Boom(f"{d.name} {phase}")


class Deadlock(BaseException):
    """A run that never returned.

    A ``BaseException``, not an ``Exception``: Hypothesis then reports it at
    once instead of shrinking, which would re-run hanging examples for
    minutes.  The message carries the plan and the events, to reproduce it.
    """


# -- plans -----------------------------------------------------------------------


@dataclass(frozen=True)
class DriverPlan:
    """One random driver: its declaration, its fault and its delays."""

    name: str
    tier: int
    requires: tuple[str, ...]
    optional: bool
    kind: Literal["generator", "class"]
    has_autostart: bool
    has_stop: bool
    background: bool
    fault: Fault
    init_delay: float
    auto_delay: float
    stop_delay: float
    #: its own timeouts; None takes the runtime's default
    start_timeout: float | None = None
    stop_timeout: float | None = None


Plan = tuple[DriverPlan, ...]


@dataclass(frozen=True)
class Cancel:
    """A cancellation from outside: after ``seconds``, then ``checkpoints``."""

    seconds: float
    checkpoints: int


@dataclass(frozen=True)
class Scenario:
    """One example: a plan, how long the body lasts, and maybe a cancellation."""

    plan: Plan
    body: float
    cancel: Cancel | None


@st.composite
def plans(draw: st.DrawFn, *, backend: Backend) -> Plan:
    """Random plans of 1..40 drivers over up to 6 tiers."""
    n = draw(st.integers(1, MAX_DRIVERS))
    tiers = draw(st.lists(st.integers(0, MAX_TIER), min_size=n, max_size=n))
    # faults per driver: 0, 10, 20 or 30 %, so big plans also start up sometimes
    fault_rate = draw(st.integers(0, 3))
    drivers: list[DriverPlan] = []
    for i, tier in enumerate(tiers):
        lower = [f"d{j}" for j, t in enumerate(tiers) if t < tier]
        requires = (
            tuple(draw(st.lists(st.sampled_from(lower), unique=True, max_size=3)))
            if lower
            else ()
        )
        kind = draw(st.sampled_from(["generator", "class"]))
        has_autostart = kind == "class" and draw(st.booleans())
        has_stop = kind == "generator" or draw(st.booleans())
        fault: Fault = "none"
        if draw(st.integers(0, 9)) < fault_rate:
            faults: list[Fault] = ["init_raise", "init_skip", "init_hang"]
            if has_autostart:  # weighted up: they make drivers stop themselves early
                faults += ["auto_raise", "auto_skip", "auto_hang"] * 2
            if has_stop:
                faults += ["stop_raise", "stop_hang"]
            fault = draw(st.sampled_from(faults))
            if fault.endswith("_raise"):
                flavour = draw(st.sampled_from(FLAVOURS))
                fault = cast("Fault", fault.replace("raise", flavour))
        start_timeout = stop_timeout = None
        if fault in ("init_hang", "auto_hang"):
            start_timeout = draw(st.sampled_from(HANG_TIMEOUTS[backend]))
        if fault == "stop_hang":
            stop_timeout = draw(st.sampled_from(HANG_TIMEOUTS[backend]))
        drivers.append(
            DriverPlan(
                name=f"d{i}",
                tier=tier,
                requires=requires,
                optional=draw(st.booleans()),
                kind=kind,  # type: ignore[arg-type]
                has_autostart=has_autostart,
                has_stop=has_stop,
                background=draw(st.integers(0, 3)) == 0,
                fault=fault,
                init_delay=draw(st.sampled_from(DELAYS)),
                auto_delay=draw(st.sampled_from(DELAYS)),
                stop_delay=draw(st.sampled_from(DELAYS)),
                start_timeout=start_timeout,
                stop_timeout=stop_timeout,
            )
        )
    return tuple(drivers)


@st.composite
def scenarios(draw: st.DrawFn, *, backend: Backend) -> Scenario:
    """A random plan, a body length and, one time in three, an outside cancel."""
    plan = draw(plans(backend=backend), label="plan")
    body = draw(st.sampled_from(BODY[backend]), label="body")
    cancel = None
    if draw(st.integers(0, 2), label="cancel?") == 0:
        cancel = Cancel(
            draw(st.sampled_from(CANCEL_AFTER[backend]), label="cancel after"),
            draw(st.integers(0, 30), label="checkpoints"),
        )
    return Scenario(plan, body, cancel)


# -- drivers that record ---------------------------------------------------------


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
        if d.background:
            ctx.start_soon(_background, d, rec)
        await anyio.sleep(d.init_delay)
        if d.fault in INIT_RAISES or d.fault == "init_base":
            rec.add("init_fail", d.name)
            raise failure(d, "initialize")
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
        if d.fault in AUTO_RAISES or d.fault == "auto_base":
            rec.add("auto_fail", d.name)
            raise failure(d, "autostart")
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
        if d.fault in STOP_RAISES or d.fault == "stop_base":
            rec.add("stop_fail", d.name)
            raise failure(d, "stop")
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


def build(plan: Plan, rec: Recorder, default: float = START_TIMEOUT) -> tiered.Runtime:
    """The runtime of ``plan``, whose hooks append to ``rec``."""
    runtime = tiered.Runtime("prop", start_timeout=default, stop_timeout=default)
    for d in plan:
        if d.kind == "generator":
            runtime.driver(
                name=d.name,
                tier=d.tier,
                requires=d.requires,
                optional=d.optional,
                start_timeout=d.start_timeout,
                stop_timeout=d.stop_timeout,
            )(_generator(d, rec))
        else:
            runtime.add(CLASSES[d.has_autostart, d.has_stop](d, rec))
    return runtime


# -- the model ---------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """What start-up must do, as far as it is deterministic."""

    #: start-up status of every driver of the tiers that begin (the failing
    #: tier included, where it is only what the driver would do on its own)
    status: dict[str, str]
    #: required drivers blocked by a failed or skipped requirement
    blocked: frozenset[str]
    #: the first tier with a failing required driver, None if start-up succeeds
    failing_tier: int | None
    #: the required drivers of that tier that fail when left to run
    failing: frozenset[str]


#: the faults that raise an Exception, each counted as ``*_raise``
INIT_RAISES = ("init_raise", "init_frozen", "init_unprintable")
AUTO_RAISES = ("auto_raise", "auto_frozen", "auto_unprintable")
STOP_RAISES = ("stop_raise", "stop_frozen", "stop_unprintable")
#: the faults that raise an ``Interrupt`` during start-up
BASE_STARTS = ("init_base", "auto_base")
START_FAULTS = (*INIT_RAISES, "init_hang", *AUTO_RAISES, "auto_hang", *BASE_STARTS)
STOP_FAULTS = (*STOP_RAISES, "stop_hang")


def expect(plan: Plan) -> Expected:
    """Predict start-up: tier by tier, until a required driver fails."""
    by_tier: dict[int, list[DriverPlan]] = {}
    for d in plan:
        by_tier.setdefault(d.tier, []).append(d)
    status: dict[str, str] = {}
    blocked: set[str] = set()
    for tier in sorted(by_tier):
        failing: set[str] = set()
        for d in by_tier[tier]:
            if any(status[r] in ("failed", "skipped") for r in d.requires):
                s = "skipped" if d.optional else "failed"
                blocked.add(d.name)
            elif d.fault in START_FAULTS:
                s = "failed"
            elif d.fault in ("init_skip", "auto_skip"):
                s = "skipped"
            else:
                s = "running"
            status[d.name] = s
            # an Interrupt aborts the start-up even from an optional driver
            if s == "failed" and (not d.optional or d.fault in BASE_STARTS):
                failing.add(d.name)
        if failing:
            return Expected(status, frozenset(blocked), tier, frozenset(failing))
    return Expected(status, frozenset(blocked), None, frozenset())


def _start_timeout(d: DriverPlan, default: float) -> float:
    return default if d.start_timeout is None else d.start_timeout


def _stop_timeout(d: DriverPlan, default: float) -> float:
    return default if d.stop_timeout is None else d.stop_timeout


def time_bounds(plan: Plan, default: float) -> tuple[float, float]:
    """How long the run may take at most: (from the plan, sum of timeouts).

    From the plan: per tier, its slowest initialize, then its slowest
    autostart plus a stop (a driver that fails or skips in autostart stops at
    once, inside its tier's start-up), then, at shutdown or rollback, its
    slowest stop; a hang counts as its timeout.  The sum of timeouts adds
    every driver's ``start_timeout`` and ``stop_timeout``, the issue's bound;
    it holds because within a tier each phase waits only for the slowest
    driver, which its own timeout ends.
    """

    def init(d: DriverPlan) -> float:
        return _start_timeout(d, default) if d.fault == "init_hang" else d.init_delay

    def auto(d: DriverPlan) -> float:
        if not d.has_autostart:
            return 0.0
        return _start_timeout(d, default) if d.fault == "auto_hang" else d.auto_delay

    def stop(d: DriverPlan) -> float:
        if d.fault == "stop_hang":
            return _stop_timeout(d, default)
        return d.stop_delay if d.has_stop else 0.0

    by_tier: dict[int, list[DriverPlan]] = {}
    for d in plan:
        by_tier.setdefault(d.tier, []).append(d)
    tight = sum(
        max(map(init, ds)) + max(auto(d) + stop(d) for d in ds) + max(map(stop, ds))
        for ds in by_tier.values()
    )
    literal = sum(_start_timeout(d, default) + _stop_timeout(d, default) for d in plan)
    return tight, literal


# -- running -----------------------------------------------------------------------


def _run(backend: Backend, fn: Callable[[], Awaitable[T]]) -> T:
    if backend == "trio":
        clock = trio.testing.MockClock(autojump_threshold=0)
        return anyio.run(fn, backend="trio", backend_options={"clock": clock})
    if backend == "uvloop":
        return anyio.run(fn, backend="asyncio", backend_options={"use_uvloop": True})
    return anyio.run(fn, backend="asyncio")


def run_on(
    backend: Backend,
    fn: Callable[[], Awaitable[T]],
    rec: Recorder | None = None,
    what: object = None,
) -> T:
    """``anyio.run(fn)`` on ``backend``; trio runs on an autojumping MockClock.

    The event loop runs in a daemon thread; if it has not returned after
    ``WATCHDOG`` seconds the run is deadlocked, the thread is abandoned and
    :class:`Deadlock` is raised with ``what`` (the plan) and what the hooks
    recorded so far.
    """
    results: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            results.append(_run(backend, fn))
        except BaseException as exc:  # handed to the test's thread
            errors.append(exc)

    thread = threading.Thread(target=target, name=f"tiered-{backend}", daemon=True)
    thread.start()
    thread.join(WATCHDOG)
    if thread.is_alive():
        events = rec.events if rec is not None else "not recorded"
        msg = (
            f"the run on {backend} deadlocked (no return after {WATCHDOG}s)\n"
            f"plan: {what!r}\nevents so far: {events}"
        )
        raise Deadlock(msg)
    if errors:
        raise errors[0]
    return results[0]


def live_tasks() -> frozenset[int]:
    """The ids of the tasks alive in the event loop (asyncio: ``all_tasks()``;
    trio: the task tree under the root task)."""
    return frozenset(t.id for t in anyio.get_running_tasks())


@dataclass
class Outcome:
    """What one run did, for the checks."""

    entered: bool
    during: tiered.Report | None
    after: tiered.Report
    error: BaseException | None
    cancelled: bool
    elapsed: float
    tasks_before: frozenset[int]
    tasks_after: frozenset[int]


async def run_scenario(scenario: Scenario, rec: Recorder, backend: Backend) -> Outcome:
    """Run the plan once: enter, snapshot the report, let the body last, leave.

    With a ``Cancel``, another task cancels a scope around the run after a
    while, wherever the run then is.
    """
    run = build(scenario.plan, rec, DEFAULT_TIMEOUT[backend]).run()
    scope = anyio.CancelScope()
    during: tiered.Report | None = None
    error: BaseException | None = None
    entered = False

    async def cancel_later(cancel: Cancel) -> None:
        await anyio.sleep(cancel.seconds)
        for _ in range(cancel.checkpoints):
            await anyio.lowlevel.checkpoint()
        rec.add("cancel")
        scope.cancel()

    with anyio.fail_after(STUCK_AFTER[backend]):
        before = live_tasks()
        async with anyio.create_task_group() as tg:
            if scenario.cancel is not None:
                tg.start_soon(cancel_later, scenario.cancel)
            began = anyio.current_time()
            try:
                with scope:
                    async with run:
                        entered = True
                        rec.add("body")
                        during = run.report
                        await anyio.sleep(scenario.body)
                    rec.add("exit")
            except (tiered.StartupError, tiered.ShutdownError, Interrupt) as exc:
                error = exc
            elapsed = anyio.current_time() - began
            tg.cancel_scope.cancel()
        after = live_tasks()
    return Outcome(
        entered,
        during,
        run.report,
        error,
        scope.cancelled_caught,
        elapsed,
        before,
        after,
    )


# -- checks --------------------------------------------------------------------------


def statuses(report: tiered.Report) -> dict[str, str]:
    return {r.name: r.status for r in report.drivers}


def early_stopped(plan: Plan, rec: Recorder, after: tiered.Report) -> set[str]:
    """Drivers that stopped themselves in autostart: skipped, or optional and failed.

    ``Run._autostart`` stops such a driver at once (it will not run), inside
    its tier's start-up, instead of with the others at shutdown.  A hang in
    autostart is known by the report: failed with a timeout in autostart.
    """
    early: set[str] = set()
    for d in plan:
        if rec.has("auto_fail", d.name) and (
            d.fault == "auto_skip" or (d.optional and d.fault in AUTO_RAISES)
        ):
            early.add(d.name)
        elif d.fault == "auto_hang" and d.optional and rec.has("auto_begin", d.name):
            error = after.driver(d.name).error or ""
            if "did not finish autostart" in error:
                early.add(d.name)
    return early


def noted(exc: BaseException) -> tuple[str, int, str]:
    """(driver, tier, phase) from the PEP 678 note tiered adds to an error.

    A ``FrozenBoom`` cannot take the note, so it says them itself.
    """
    if isinstance(exc, FrozenBoom):
        return exc.driver, exc.tier, exc.phase
    for note in getattr(exc, "__notes__", ()):
        m = NOTE.search(note)
        if m is not None:
            return m["name"], int(m["tier"]), m["phase"]
    raise AssertionError(f"{exc!r} has no note naming its driver: {exc.__notes__!r}")


def stop_failed(plan: Plan, rec: Recorder) -> set[str]:
    """Drivers whose stop ran and raised or hung."""
    return {d.name for d in plan if d.fault in STOP_FAULTS and rec.has("stop", d.name)}


def check_stop_error(d: DriverPlan, exc: BaseException) -> None:
    """A stop failure is the driver's own exception, or a timeout for a hang."""
    if d.fault == "stop_hang":
        assert isinstance(exc, tiered.DriverTimeout), exc
        assert isinstance(exc, TimeoutError)
        assert f"{d.name} (tier {d.tier}) did not finish stop" in str(exc), exc
    else:
        assert d.fault in STOP_RAISES, (d, repr(exc))
        assert isinstance(exc, Boom), repr(exc)


def check_barrier(plan: Plan, rec: Recorder, early: set[str]) -> None:
    """Invariant 1: a tier begins only when every lower tier is done starting.

    Also: a driver's autostart begins only when its whole tier initialized.
    """
    tier = {d.name: d.tier for d in plan}
    startup_kinds = {"init_begin", "init_exit", "auto_begin", "auto_exit"}
    last_startup: dict[str, int] = {}
    last_init: dict[str, int] = {}
    for i, (kind, name) in enumerate(rec.events):
        if kind in startup_kinds or (kind in ("stop", "stop_end") and name in early):
            last_startup[name] = i
        if kind in ("init_begin", "init_exit"):
            last_init[name] = i
    for i, (kind, name) in enumerate(rec.events):
        if kind == "init_begin":
            late = [
                other
                for other, j in last_startup.items()
                if tier[other] < tier[name] and j > i
            ]
            assert not late, (
                f"{name} (tier {tier[name]}) began initialize at event {i} before "
                f"lower-tier drivers {late} were done starting: {rec.events}"
            )
        elif kind == "auto_begin":
            late = [
                other
                for other, j in last_init.items()
                if tier[other] <= tier[name] and j > i
            ]
            assert not late, (
                f"{name} (tier {tier[name]}) began autostart at event {i} before "
                f"{late} finished initialize: {rec.events}"
            )


def check_stopped_once(plan: Plan, rec: Recorder, after: tiered.Report) -> None:
    """Invariant 2: what initialized is stopped exactly once; nothing else is.

    A driver's background task, if it began, ends exactly once, and before
    the driver's stop begins.
    """
    initialized = rec.names("init_end")
    final = statuses(after)
    for d in plan:
        if d.has_stop:
            want = 1 if d.name in initialized else 0
            assert rec.count("stop", d.name) == want, (
                f"{d.name} (initialized: {d.name in initialized}) was stopped "
                f"{rec.count('stop', d.name)} times: {rec.events}"
            )
            assert rec.count("stop_end", d.name) == want
        if d.name in initialized:
            assert final[d.name] in ("stopped", "failed", "skipped"), (
                f"{d.name} initialized but ended {final[d.name]!r}"
            )
        else:
            assert final[d.name] in ("pending", "skipped", "failed", "cancelled"), (
                f"{d.name} never initialized but ended {final[d.name]!r}"
            )
        began = rec.count("bg_begin", d.name)
        assert began <= int(d.background)
        assert rec.count("bg_end", d.name) == began, (
            f"the background task of {d.name} did not end once: {rec.events}"
        )
        if began and rec.has("stop", d.name):
            assert rec.first("bg_end", d.name) < rec.first("stop", d.name), (  # type: ignore[operator]
                f"{d.name} stopped before its background task ended: {rec.events}"
            )


def check_stop_order(plan: Plan, rec: Recorder, early: set[str]) -> None:
    """Invariant 3: stops run tier by tier in reverse, after start-up ended.

    The exception is a driver that stopped itself in autostart (``early``):
    that stop belongs to its tier's start-up, so it comes before anything of
    a higher tier and before every other stop.
    """
    tier = {d.name: d.tier for d in plan}
    begins: dict[int, list[int]] = {}
    ends: dict[int, list[int]] = {}
    for i, (kind, name) in enumerate(rec.events):
        if name in early:
            continue
        if kind == "stop":
            begins.setdefault(tier[name], []).append(i)
        elif kind == "stop_end":
            ends.setdefault(tier[name], []).append(i)
    for high, high_ends in ends.items():
        for low, low_begins in begins.items():
            if high > low:
                assert max(high_ends) < min(low_begins), (
                    f"a stop of tier {low} began before every stop of tier {high} "
                    f"ended: {rec.events}"
                )
    first_stop = min((min(b) for b in begins.values()), default=None)
    if first_stop is not None:
        startup = [
            i
            for i, (kind, _) in enumerate(rec.events)
            if kind in ("init_exit", "auto_exit", "body")
        ]
        assert not startup or max(startup) < first_stop, (
            f"a driver was stopped while start-up still ran: {rec.events}"
        )
    for name in early:
        own = [i for i in rec.of(name) if rec.events[i][0] in ("stop", "stop_end")]
        if not own:  # a Driver subclass without a stop hook
            continue
        assert min(own) > rec.indices("auto_begin", name)[0]
        later = [
            i
            for i, (kind, other) in enumerate(rec.events)
            if (tier[other] > tier[name] if other else kind == "body")
            or (kind == "stop" and other not in early)
        ]
        assert not later or max(own) < min(later), (
            f"{name} stopped itself in autostart, but not within its tier's "
            f"start-up: {rec.events}"
        )


def check_tasks(outcome: Outcome) -> None:
    """Invariant 5: leaving the run leaves no task behind (and ends none of ours)."""
    left = outcome.tasks_after - outcome.tasks_before
    gone = outcome.tasks_before - outcome.tasks_after
    assert not left, f"{len(left)} task(s) left running after the run"
    assert not gone, f"{len(gone)} task(s) of the test ended by the run"


def check_phases(
    plan: Plan, rec: Recorder, after: tiered.Report, early: set[str]
) -> None:
    """Invariant 6: the report's phases match the hooks that ran, in time order.

    The report also says when the run ended, and every phase ended by then.
    """
    tier = {d.name: d.tier for d in plan}
    end_of_run = after.stopped_at
    assert end_of_run is not None, "the report does not say when the run ended"
    for d in plan:
        r = after.driver(d.name)
        assert r.tier == d.tier
        assert r.optional == d.optional
        assert ("initialize" in r.phases) == rec.has("init_begin", d.name), d.name
        assert ("autostart" in r.phases) == rec.has("auto_begin", d.name), d.name
        assert ("stop" in r.phases) == rec.has("stop", d.name), d.name
        assert "reload" not in r.phases
        for phase, (start, end) in r.phases.items():
            assert end is not None, f"{d.name} {phase} has no end after the run"
            assert start <= end, f"{d.name} {phase} ends before it starts"
            assert end <= end_of_run, f"{d.name} {phase} ends after the run"
        if r.status == "stopped" and d.has_stop:
            assert "stop" in r.phases
    # time order: a tier's start-up phases end before the next tier begins
    records = {r.name: r for r in after.drivers}
    for a in plan:
        ra = records[a.name]
        a_end = max(
            (
                end
                for phase, (_, end) in ra.phases.items()
                if end is not None and (phase != "stop" or a.name in early)
            ),
            default=None,
        )
        if a_end is None:
            continue
        for b in plan:
            init = records[b.name].phases.get("initialize")
            if tier[b.name] > tier[a.name] and init is not None:
                assert a_end <= init[0], (
                    f"{b.name} began initialize at {init[0]} before {a.name} of a "
                    f"lower tier ended starting at {a_end}"
                )


def check_time(scenario: Scenario, outcome: Outcome, backend: Backend) -> None:
    """Invariant 7: the run ends within the sum of its timeouts (and sooner)."""
    tight, literal = time_bounds(scenario.plan, DEFAULT_TIMEOUT[backend])
    slack = SLACK[backend] + scenario.body
    assert outcome.elapsed <= literal + slack, (
        f"the run took {outcome.elapsed:.3f}s, more than the sum of its timeouts "
        f"({literal:.3f}s)"
    )
    assert outcome.elapsed <= tight + slack, (
        f"the run took {outcome.elapsed:.3f}s; its slowest hooks, hangs ended by "
        f"their timeouts, add up to {tight:.3f}s"
    )


def check_events_sane(rec: Recorder) -> None:
    """Every hook saw the values of its requirements (what ctx.get returned)."""
    assert not rec.has("bad_value"), f"ctx.get() returned a wrong value: {rec.events}"


def check_shutdown_error(
    plan: Plan, rec: Recorder, error: BaseException | None
) -> None:
    """Invariant 4 at shutdown: ShutdownError names exactly the failed stops."""
    failed = stop_failed(plan, rec)
    if not failed:
        assert error is None, error
        return
    assert isinstance(error, tiered.ShutdownError), error
    by_name = {d.name: d for d in plan}
    seen = [noted(e) for e in error.exceptions]
    assert sorted(n for n, _, _ in seen) == sorted(failed)
    assert all(phase == "stop" for _, _, phase in seen)
    for exc, (name, tier, _) in zip(error.exceptions, seen, strict=True):
        assert tier == by_name[name].tier
        check_stop_error(by_name[name], exc)
    m = SHUTDOWN_NAMES.search(error.message)
    assert m is not None, error.message
    assert sorted(m["names"].split(", ")) == sorted(failed), error.message


def check_started(plan: Plan, rec: Recorder, outcome: Outcome, exp: Expected) -> None:
    """Invariant 4, success side: the report and ShutdownError match the model."""
    assert exp.failing_tier is None, (
        f"the run started although required drivers {sorted(exp.failing)} failed"
    )
    assert outcome.during is not None
    during = statuses(outcome.during)
    assert during == exp.status, "start-up statuses differ from the model"
    for name, status in during.items():
        d = next(d for d in plan if d.name == name)
        assert status in ("running", "skipped") or (status == "failed" and d.optional)
    # every driver that was not blocked ran initialize, and autostart if it has one
    for d in plan:
        assert rec.has("init_begin", d.name) == (d.name not in exp.blocked), d.name
        want_auto = d.has_autostart and rec.has("init_end", d.name)
        assert rec.has("auto_begin", d.name) == want_auto, d.name
    if outcome.cancelled:
        # cancelled from outside while it ran: the cancellation propagates,
        # not a ShutdownError (the failed stops are in the report and the log)
        assert outcome.error is None, outcome.error
    else:
        check_shutdown_error(plan, rec, outcome.error)
    stopped_badly = stop_failed(plan, rec)
    final = statuses(outcome.after)
    for name, status in exp.status.items():
        want = status
        if name in stopped_badly:
            want = "failed"
        elif status == "running":
            want = "stopped"
        assert final[name] == want, f"{name}: {final[name]} (wanted {want})"


def check_failed(plan: Plan, rec: Recorder, outcome: Outcome, exp: Expected) -> None:
    """Invariant 4, failure side: StartupError names every failed driver."""
    assert exp.failing_tier is not None, "StartupError, yet no required driver fails"
    assert not outcome.entered, "the run started although a required driver failed"
    error = outcome.error
    assert isinstance(error, tiered.StartupError), f"wanted StartupError: {error!r}"
    by_name = {d.name: d for d in plan}
    start_failures: list[str] = []
    stop_failures: list[str] = []
    for exc in error.exceptions:
        name, tier_, phase = noted(exc)
        d = by_name[name]
        assert tier_ == d.tier
        if phase == "stop":
            stop_failures.append(name)
            check_stop_error(d, exc)
            continue
        assert phase in ("initialize", "autostart"), phase
        start_failures.append(name)
        if name in exp.blocked:
            assert isinstance(exc, tiered.DependencyError), exc
        elif d.fault in ("init_hang", "auto_hang"):
            assert isinstance(exc, tiered.DriverTimeout), exc
            assert isinstance(exc, TimeoutError)
        else:
            assert isinstance(exc, Boom), repr(exc)
    assert start_failures, "StartupError without the driver that failed"
    assert len(start_failures) == len(set(start_failures)), start_failures
    assert set(start_failures) <= exp.failing, (
        f"failures {start_failures} are not among the expected {set(exp.failing)}"
    )
    for name in start_failures:
        assert f"{name} (tier {by_name[name].tier})" in error.message, (
            f"StartupError's message does not name {name}: {error.message!r}"
        )
    assert sorted(stop_failures) == sorted(stop_failed(plan, rec))
    final = statuses(outcome.after)
    named = set(start_failures) | set(stop_failures)
    stopped_badly = stop_failed(plan, rec)
    for d in plan:
        status = final[d.name]
        if status == "failed" and not d.optional:
            assert d.name in named, f"{d.name} failed but StartupError omits it"
        if d.name in start_failures:
            assert status == "failed"
        if d.tier > exp.failing_tier:
            assert status == "pending", f"{d.name}: {status}"
            assert not rec.of(d.name), f"{d.name} of a later tier ran: {rec.events}"
        elif d.tier < exp.failing_tier:
            want = exp.status[d.name]
            if d.name in stopped_badly:
                want = "failed"
            elif want == "running":
                want = "stopped"
            assert status == want, f"{d.name}: {status} (wanted {want})"
        else:
            assert status in ("failed", "skipped", "stopped", "cancelled"), (
                f"{d.name} of the failing tier ended {status!r}"
            )


def failure_moments(plan: Plan, rec: Recorder, after: tiered.Report) -> list[int]:
    """Event positions at or after which a required driver had failed start-up.

    For a required driver blocked by its requirements no hook runs; its
    failure happens when its tier begins, after every start-up event of lower
    tiers (their early stops included, their rollback stops not), so the
    last of those is a lower bound.
    """
    exp = expect(plan)
    early = early_stopped(plan, rec, after)
    tier = {d.name: d.tier for d in plan}
    moments: list[int] = []
    for d in plan:
        if d.optional:
            continue
        if d.name in exp.blocked and after.driver(d.name).status == "failed":
            lower = [
                i
                for i, (kind, n) in enumerate(rec.events)
                if n
                and tier[n] < d.tier
                and kind not in ("bg_begin", "bg_end")
                and (kind not in ("stop", "stop_fail", "stop_end") or n in early)
            ]
            moments.append(max(lower, default=-1))
        elif d.fault in INIT_RAISES:
            moments += rec.indices("init_fail", d.name)
        elif d.fault in AUTO_RAISES:
            moments += rec.indices("auto_fail", d.name)
        elif d.fault == "init_hang":
            moments += rec.indices("init_exit", d.name)
        elif d.fault == "auto_hang":
            moments += rec.indices("auto_exit", d.name)
    return moments


def check_cancelled(plan: Plan, rec: Recorder, outcome: Outcome) -> None:
    """A start-up cancelled from outside rolls back and propagates the cancellation."""
    cancel_at = rec.first("cancel")
    assert outcome.error is None, outcome.error
    assert outcome.cancelled, "the cancellation did not reach the outer scope"
    assert cancel_at is not None
    for r in outcome.after.drivers:
        assert r.status not in ("starting", "running"), f"{r.name}: {r.status}"


def interrupts_fired(plan: Plan, rec: Recorder) -> set[str]:
    """Drivers whose hook raised an ``Interrupt`` (a ``*_base`` fault that came to pass)."""
    kind = {
        "init_base": "init_fail",
        "auto_base": "auto_fail",
        "stop_base": "stop_fail",
    }
    return {d.name for d in plan if d.fault in kind and rec.has(kind[d.fault], d.name)}


def check_interrupted(plan: Plan, outcome: Outcome, fired: set[str]) -> None:
    """Invariant 4 for a BaseException: it aborts the start-up and propagates as itself.

    Like a KeyboardInterrupt, an ``Interrupt`` from a hook is not a driver's
    failure to collect into a ``StartupError`` or ``ShutdownError``: start-up
    rolls back (or the run stops) and the exception itself comes out of
    ``async with``, whatever else failed meanwhile.  Only an outside
    cancellation arriving too may propagate instead.  The rest (the barrier,
    stopped exactly once, stop order, tasks, phases, time) is checked as for
    any run.
    """
    by_name = {d.name: d for d in plan}
    error = outcome.error
    if any(by_name[n].fault in BASE_STARTS for n in fired):
        assert not outcome.entered, f"the run started although {sorted(fired)} raised"
    if isinstance(error, Interrupt):
        assert error.driver in fired, (error.driver, fired)
    else:
        assert outcome.cancelled, (
            f"the Interrupt of {sorted(fired)} was lost: the run gave {error!r}"
        )
    final = statuses(outcome.after)
    for name, status in final.items():
        assert status not in ("starting", "running"), f"{name}: {status}"
    for name in fired:
        assert final[name] == "failed", f"{name} raised, yet ended {final[name]!r}"


# -- the property ------------------------------------------------------------------


def describe(scenario: Scenario, rec: Recorder, outcome: Outcome) -> None:
    """Hypothesis' statistics (``pytest --hypothesis-show-statistics``)."""
    exp = expect(scenario.plan)
    if isinstance(outcome.error, Interrupt):
        event("interrupted")
    elif outcome.entered:
        event("started" + (", stop failed" if outcome.error is not None else ""))
    elif isinstance(outcome.error, tiered.StartupError):
        event("start-up failed")
    else:
        event("start-up cancelled")
    if scenario.cancel is not None:
        cancel_at = rec.first("cancel")
        if cancel_at is None:
            event("cancel came after the run")
        elif not outcome.entered:
            event("cancelled in start-up")
        elif cancel_at < rec.first("body"):  # type: ignore[operator]
            event("cancelled as start-up ended")
        elif rec.has("exit") and cancel_at > rec.first("exit"):  # type: ignore[operator]
            event("cancel came after the run")
        else:
            event("cancelled while running or stopping")
    if exp.failing_tier is not None:
        event("a required driver fails")
    faults = {d.fault for d in scenario.plan}
    for fault in ("init_hang", "auto_hang", "stop_hang"):
        if fault in faults:
            event(f"has {fault}")
    if len(scenario.plan) >= 30:
        event("30+ drivers")


# A failure makes Hypothesis shrink the example, for up to five minutes: more
# than pytest-timeout's default minute, which would cut the report short.
@pytest.mark.timeout(0 if SOAK else 420)
@pytest.mark.parametrize("backend", BACKENDS)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_random_plans_keep_the_invariants(
    backend: Backend, data: st.DataObject
) -> None:
    """Random plans, faults and cancellations keep barriers, rollback and stop order."""
    scenario = data.draw(scenarios(backend=backend), label="scenario")
    plan = scenario.plan
    rec = Recorder()
    outcome = run_on(
        backend, lambda: run_scenario(scenario, rec, backend), rec, scenario
    )
    exp = expect(plan)
    early = early_stopped(plan, rec, outcome.after)
    describe(scenario, rec, outcome)
    check_events_sane(rec)
    check_barrier(plan, rec, early)
    check_stopped_once(plan, rec, outcome.after)
    check_stop_order(plan, rec, early)
    cancel_at = rec.first("cancel")
    fired = interrupts_fired(plan, rec)
    if fired or isinstance(outcome.error, Interrupt):
        check_interrupted(plan, outcome, fired)
    elif outcome.entered:
        check_started(plan, rec, outcome, exp)
        body_at = rec.first("body")
        assert body_at is not None
        if cancel_at is not None and cancel_at < body_at:
            # The cancel came as the last tier finished, before the run's
            # coordinator reached another checkpoint: like any async call it
            # returns, and the body's first checkpoint takes the cancellation.
            # But no hook may have begun once the cancel came.
            began = [
                e
                for e in rec.events[cancel_at:]
                if e[0] in ("init_begin", "auto_begin")
            ]
            assert not began, f"start-up went on after the cancel: {rec.events}"
            assert outcome.cancelled, f"the cancellation was lost: {rec.events}"
        if outcome.cancelled:
            assert cancel_at is not None
    elif isinstance(outcome.error, tiered.StartupError):
        check_failed(plan, rec, outcome, exp)
        if cancel_at is not None:
            # a StartupError only if a required driver failed before the cancel
            moments = failure_moments(plan, rec, outcome.after)
            assert moments, "StartupError without a failing required driver"
            assert min(moments) < cancel_at, (
                f"start-up was cancelled at event {cancel_at} before any required "
                f"driver failed, yet it raised {outcome.error!r}: {rec.events}"
            )
    else:
        assert scenario.cancel is not None, (
            f"the run neither started nor failed: {outcome.error!r}"
        )
        check_cancelled(plan, rec, outcome)
    check_tasks(outcome)
    check_phases(plan, rec, outcome.after, early)
    check_time(scenario, outcome, backend)


# -- regressions the properties found ---------------------------------------------------
# Small deterministic reproductions of library bugs the properties above ran
# into, so that each shows up under its own name.


@pytest.mark.parametrize("backend", BACKENDS)
def test_driver_initialized_as_its_sibling_fails_is_stopped(backend: Backend) -> None:
    """A driver whose initialize returns just after a sibling failed is stopped once."""
    rec = Recorder()

    async def scenario() -> tuple[BaseException | None, tiered.Report]:
        began, gate = anyio.Event(), anyio.Event()
        runtime = tiered.Runtime("race", start_timeout=START_TIMEOUT)

        @runtime.driver(tier=0)
        async def opener(ctx: tiered.Context) -> AsyncIterator[str]:
            rec.add("init_begin", "opener")
            began.set()
            await gate.wait()  # its last checkpoint: woken, then never interrupted
            rec.add("init_end", "opener")
            yield "opener"
            rec.add("stop", "opener")

        @runtime.driver(tier=0)
        async def failer(ctx: tiered.Context) -> AsyncIterator[str]:
            await began.wait()  # opener now waits on the gate
            gate.set()  # opener will return from initialize ...
            if gate.is_set():
                raise Boom("failer initialize")  # ... after this cancelled it
            yield "never"

        run = runtime.run()
        error: BaseException | None = None
        try:
            async with run:
                pass
        except tiered.StartupError as exc:
            error = exc
        return error, run.report

    error, report = run_on(backend, scenario, rec)
    assert isinstance(error, tiered.StartupError)
    assert [noted(e)[0] for e in error.exceptions] == ["failer"]
    if rec.has("init_end", "opener"):
        assert rec.count("stop", "opener") == 1, rec.events
        assert report.driver("opener").status == "stopped"
    else:
        assert report.driver("opener").status == "cancelled"


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_driver_of_a_failed_tier_completes_initialize(backend: Backend) -> None:
    """Once a required driver of a tier failed, no other driver of it completes initialize."""
    rec = Recorder()
    siblings = ("s0", "s1", "s2", "s3")

    async def scenario() -> tuple[BaseException | None, tiered.Report]:
        runtime = tiered.Runtime("blocked", start_timeout=START_TIMEOUT)

        @runtime.driver(tier=0, optional=True)
        async def base(ctx: tiered.Context) -> AsyncIterator[str]:
            if ctx.tier == 0:
                raise tiered.Skip("not here")
            yield "never"

        def sibling(name: str) -> None:
            async def driver(ctx: tiered.Context) -> AsyncIterator[str]:
                rec.add("init_begin", name)
                await anyio.sleep(0.05)
                rec.add("init_end", name)
                yield name
                rec.add("stop", name)

            runtime.driver(name=name, tier=1)(driver)

        # siblings on both sides of the failing driver: whichever order the
        # backend runs new tasks in, the ones that began before it failed
        # must be cancelled and the ones after must not complete either
        sibling("s0")
        sibling("s1")

        @runtime.driver(tier=1, requires=[base])
        async def needs_base(ctx: tiered.Context) -> AsyncIterator[str]:
            rec.add("init_begin", "needs_base")
            yield "never"

        sibling("s2")
        sibling("s3")
        run = runtime.run()
        error: BaseException | None = None
        try:
            async with run:
                pass
        except tiered.StartupError as exc:
            error = exc
        return error, run.report

    error, report = run_on(backend, scenario, rec)
    assert isinstance(error, tiered.StartupError)
    assert [noted(e)[0] for e in error.exceptions] == ["needs_base"]
    assert isinstance(error.exceptions[0], tiered.DependencyError)
    assert not rec.has("init_begin", "needs_base")
    completed = [name for name in siblings if rec.has("init_end", name)]
    assert not completed, (
        f"{completed} completed initialize after needs_base had already failed "
        f"their tier: {rec.events}"
    )
    for name in siblings:
        assert report.driver(name).status in ("cancelled", "pending"), name
