"""Property tests of supervision: random plans whose drivers crash after start-up.

Each example builds a random runtime (1..10 drivers over up to 4 tiers,
random requirements on lower tiers, now and then an ``after``, random
``optional``) whose drivers have random restart policies (none, or a
``Restart`` with random ``max_restarts``, ``window``, ``delay`` and
``max_delay``) and a random script, life by life: the background task
crashes after a random time, or ``initialize`` fails (a failed restart, or
a failed start-up in the first life), or the life runs on
(tests/support/supervision.py).  The body of the run lasts a random time,
and in a third of the examples a cancel scope around the run is cancelled
from outside at a random moment: during start-up, a restart, its delay, or
the rest.  Each plan runs with both schedules ("tiers" and "dependencies")
on asyncio, uvloop and trio; trio on an autojumping ``MockClock``, so its
times are exact, the real clocks with times 500 times shorter.

What must hold, whatever happened (checked from the hooks' own record, a
``tiered.testing.Recorder``, and from the report):

1. every life of a driver whose ``initialize`` ended is stopped exactly
   once, before the next begins; no other life is stopped;
2. a dependent never runs while a driver it requires is down: each of its
   lives lies within a time the requirement was up (``restart`` stops
   dependents first and starts them after);
3. a life's background task has ended before its ``stop`` begins;
4. no task is left behind (the live tasks before and after are the same);
5. the run ends within a bound: it is over when the body ends or the
   outside cancel comes, whichever is first (exactly, on trio), or sooner
   when a failure stopped it; nothing waits for a restart's delay;
6. no driver is left ``restarting``, ``running`` or ``starting``, and each
   driver's ``DriverRecord.restarts`` is the number of lives it began after
   its first;
7. each ``restart`` event's delay is ``min(delay * 2**(k-1), max_delay)``,
   worked out here, for the k it names (``k <= max_restarts``), and the
   driver's next life begins no sooner;
8. leaving the run raised ``ShutdownError`` when the run is not live, and
   otherwise only for a background task that failed as the run stopped.

An optional driver without ``restart`` that crashes, or one that gives up,
is *contained* (it and its optional dependents stop, the run goes on); a
containment that met another stop once hung the shutdown, a core bug since
fixed (tests/test_supervision.py::
test_a_containment_during_another_stop_never_hangs).  ``CONTAIN = False``
leaves containments out.

``make test`` runs a fixed set of examples (derandomized, so a failure in CI
reproduces); ``TIERED_SOAK=1`` runs 5,000 random ones per backend and
schedule.  Mutations of ``_supervisor`` and ``_restart`` they catch (each
fails at least one backend): a restart that forgets the dependents another
restart holds, that stops only the failed driver, that does not stop its
members before starting them, that is not cancelled by a stop of the run,
that counts a life never begun, and a delay that doubles once too often.
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import anyio
import pytest
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tiered
from support.backends import BACKENDS, Backend
from support.sizes import SOAK, size
from support.supervision import Member, Step
from tiered.testing import Recorder

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

T = TypeVar("T")


#: examples per backend and schedule; the real clocks cost real time
EXAMPLES = {
    "trio": size(400, 5_000),
    "asyncio": size(100, 5_000),
    "uvloop": size(100, 5_000),
}
#: seconds per unit of the plans' times: virtual on trio
UNIT = {"trio": 1.0, "asyncio": 0.002, "uvloop": 0.002}
#: what the time bound allows on top: nothing on trio, scheduling on a
#: loaded machine for the real clocks
SLACK = {"trio": 1e-9, "asyncio": 3.0, "uvloop": 3.0}
#: real seconds after which an event loop that has not returned is stuck
WATCHDOG = 20.0
#: whether optional drivers without restart crash after start-up (and are
#: contained), and optional ones with restart may give up (contained too)
CONTAIN = True
RESTART_DETAIL = re.compile(r"^restart (?P<k>\d+) of (?P<m>\d+) in ")


# -- plans -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DriverPlan:
    """One random driver: its declaration, restart policy and script (in units)."""

    name: str
    tier: int
    requires: tuple[str, ...]
    after: tuple[str, ...]
    optional: bool
    #: (max_restarts, window, delay, max_delay) in units, or None
    restart: tuple[int, float, float, float] | None
    #: life -> crash after that many units, or "fail" (initialize raises)
    script: tuple[tuple[int, float | str], ...]


@dataclass(frozen=True)
class Scenario:
    """A plan, how long the body lasts and when an outside cancel comes (units)."""

    plan: tuple[DriverPlan, ...]
    body: float
    cancel: float | None


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """Random plans of 1..10 drivers, with policies, scripts, body and cancel."""
    n = draw(st.integers(1, 10), label="drivers")
    tiers = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    plan = []
    for i, tier in enumerate(tiers):
        lower = [f"d{j}" for j, t in enumerate(tiers) if t < tier]
        requires = tuple(
            draw(st.lists(st.sampled_from(lower), unique=True, max_size=2))
            if lower
            else ()
        )
        others = [d for d in lower if d not in requires]
        after = (
            (draw(st.sampled_from(others)),)
            if others and draw(st.integers(0, 4)) == 0
            else ()
        )
        optional = draw(st.booleans())
        restart = None
        if draw(st.integers(0, 3)) > 0:
            delay = draw(st.sampled_from([0.0, 0.5, 2.0, 4.0]))
            restart = (
                # without CONTAIN an optional driver never gives up (giving
                # up on it contains it): its at most four crashes and failed
                # starts stay within ten
                10
                if optional and not CONTAIN
                else draw(st.sampled_from([0, 1, 2, 2, 3, 4])),
                draw(st.sampled_from([2.0, 5.0, 20.0, math.inf])),
                delay,
                max(delay, draw(st.sampled_from([0.0, 1.0, 4.0]))),
            )
        crashes = [1.0, 1.5, 3.0, 8.0]
        if restart is None and (
            (optional and not CONTAIN) or draw(st.integers(0, 3)) > 0
        ):
            # an optional one's crash is contained (not drawn without
            # CONTAIN); a required one's crash stops the run, which ends the
            # example: now and then only
            crashes = []
        steps: list[tuple[int, float | str]] = []
        choices: list[float | str | None] = [None, *crashes, "fail"]
        for life in range(1, 5):
            step: float | str | None
            if life == 1 and restart is not None and crashes:
                step = draw(st.sampled_from(crashes))  # a restart, to begin with
            else:
                step = draw(st.sampled_from(choices))
            if step == "fail" and life == 1 and draw(st.integers(0, 5)) > 0:
                step = None  # a failed start-up, now and then only
            if step is not None:
                steps.append((life, step))
        plan.append(
            DriverPlan(
                f"d{i}",
                tier,
                requires,
                after,
                optional,
                restart,
                tuple(steps),
            )
        )
    body = draw(st.sampled_from([10.0, 30.0]), label="body")
    cancel = None
    if draw(st.integers(0, 2), label="cancel?") == 0:
        cancel = draw(
            st.sampled_from([0.0, 1.5, 3.0, 5.0, 9.5, 20.0]), label="cancel at"
        )
    return Scenario(tuple(plan), body, cancel)


def policy_of(d: DriverPlan, unit: float) -> tiered.Restart | None:
    if d.restart is None:
        return None
    m, window, delay, top = d.restart
    return tiered.Restart(
        max_restarts=m, window=window * unit, delay=delay * unit, max_delay=top * unit
    )


def build(
    scenario: Scenario, rec: Recorder, schedule: str, unit: float
) -> tiered.Runtime:
    runtime = tiered.Runtime("prop", schedule=schedule)
    for d in scenario.plan:
        script: dict[int, Step] = {
            life: step if isinstance(step, str) else step * unit  # type: ignore[misc]
            for life, step in d.script
        }
        runtime.add(
            Member(
                d.name,
                rec,
                tier=d.tier,
                requires=d.requires,
                after=d.after,
                optional=d.optional,
                restart=policy_of(d, unit),
                script=script,
            )
        )
    return runtime


# -- running --------------------------------------------------------------------------


class Stuck(BaseException):
    """A run that never returned: a BaseException, so Hypothesis reports it at
    once instead of shrinking, which would re-run stuck examples for minutes
    (as tests/test_properties.py does)."""


@dataclass
class Outcome:
    """What one run did."""

    run: tiered.Run
    error: BaseException | None
    cancelled: bool
    began: float
    elapsed: float
    tasks_before: frozenset[int]
    tasks_after: frozenset[int]
    #: each restart event, with the length of the hooks' log and the clock then
    announced: list[tuple[tiered.RunEvent, int, float]]


def live_tasks() -> frozenset[int]:
    return frozenset(t.id for t in anyio.get_running_tasks())


async def run_scenario(
    scenario: Scenario, rec: Recorder, schedule: str, unit: float
) -> Outcome:
    run = build(scenario, rec, schedule, unit).run()
    scope = anyio.CancelScope()
    error: BaseException | None = None
    announced: list[tuple[tiered.RunEvent, int, float]] = []

    def on_restart(event: tiered.RunEvent) -> None:
        if event.kind == "restart":  # where in the hooks' log, and when
            announced.append((event, len(rec.events), anyio.current_time()))

    run.listen(on_restart)

    async def cancel_later(at: float) -> None:
        await anyio.sleep(at * unit)
        scope.cancel()

    before = live_tasks()
    async with anyio.create_task_group() as tg:
        if scenario.cancel is not None:
            tg.start_soon(cancel_later, scenario.cancel)
        began = anyio.current_time()
        try:
            with scope:
                async with run:
                    await anyio.sleep(scenario.body * unit)
        except (tiered.StartupError, tiered.ShutdownError) as exc:
            error = exc
        elapsed = anyio.current_time() - began
        tg.cancel_scope.cancel()
    return Outcome(
        run,
        error,
        scope.cancelled_caught,
        began,
        elapsed,
        before,
        live_tasks(),
        announced,
    )


def run_on(backend: Backend, fn: Callable[[], Awaitable[T]], what: object) -> T:
    """``anyio.run(fn)`` in a thread (trio on an autojumping MockClock); a stuck loop fails."""
    results: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            if backend == "trio":
                clock = trio.testing.MockClock(autojump_threshold=0)
                results.append(
                    anyio.run(fn, backend="trio", backend_options={"clock": clock})
                )
            else:
                options = {"use_uvloop": backend == "uvloop"}
                results.append(
                    anyio.run(fn, backend="asyncio", backend_options=options)
                )
        except BaseException as exc:  # handed to the test's thread
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(WATCHDOG)
    if thread.is_alive():
        msg = f"the run on {backend} did not return within {WATCHDOG}s: {what!r}"
        raise Stuck(msg)
    if errors:
        raise errors[0]
    return results[0]


# -- checks -----------------------------------------------------------------------------


def check(scenario: Scenario, rec: Recorder, out: Outcome, backend: Backend) -> None:
    """The eight properties of the module docstring."""
    run, report = out.run, out.run.report
    # 1, 2: lives stopped once; dependents within their requirements' ups
    if any(e.phase == "initialize" and e.kind == "end" for e in rec.events):
        rec.assert_stopped_once_per_life()
    for d in scenario.plan:
        for r in d.requires:
            rec.assert_never_running_without(d.name, r)
    # 3: a life's background task ended before its stop began
    running: set[str] = set()
    for i, e in enumerate(rec.events):
        if e.phase == "background":
            (running.add if e.kind == "begin" else running.discard)(e.driver)
        elif e.phase == "stop" and e.kind == "begin":
            assert e.driver not in running, f"#{i}: {e} with its task running\n{rec}"
    # 4: no task left behind
    assert out.tasks_after == out.tasks_before
    # 5: over when the body ended or the cancel came, or sooner
    unit = UNIT[backend]
    ends = [scenario.body] + ([scenario.cancel] if scenario.cancel is not None else [])
    bound = min(ends) * unit
    assert out.elapsed <= bound + SLACK[backend], (out.elapsed, bound, rec.format())
    stopped_early = out.error is not None or not run.live
    if backend == "trio" and not stopped_early:
        assert out.elapsed == pytest.approx(bound, abs=1e-9), (out.elapsed, bound)
    # 6: nothing left half-way; restarts counted as lives begun
    for record in report.drivers:
        assert record.status not in ("restarting", "running", "starting"), record
        assert record.restarts == max(rec.lives(record.name) - 1, 0), (
            record,
            rec.format(),
        )
    check_delays(scenario, rec, out, unit)
    # 8: ShutdownError when the run failed, and only then, but for a background
    # task that fails while the run stops (a failed stop, which is no failure
    # of the run: live stays true)
    failed_run = not run.live and report.ready_at is not None
    if failed_run and not out.cancelled:
        assert isinstance(out.error, tiered.ShutdownError), rec.format()
    if isinstance(out.error, tiered.ShutdownError) and run.live:
        assert report.stopping_at is not None
        for failure in out.error.failures:
            crashes = [
                e.at - out.began
                for e in rec.of(failure.driver)
                if e.phase == "background" and e.kind == "fail"
            ]
            assert crashes, (failure, rec.format())
            if backend == "trio":  # exact times: it failed as the run stopped
                assert crashes[-1] >= report.stopping_at, (failure, rec.format())


def check_delays(scenario: Scenario, rec: Recorder, out: Outcome, unit: float) -> None:
    """7: each restart's delay, worked out here, and no life begins before it."""
    plans = {d.name: d for d in scenario.plan}
    restarts = [e for e in out.run.report.events if e.kind == "restart"]
    assert restarts == [e for e, _, _ in out.announced]
    for incident, position, at in out.announced:
        d = plans[incident.driver or ""]
        assert d.restart is not None, incident
        m, _, delay, top = d.restart
        found = RESTART_DETAIL.match(incident.detail or "")
        assert found, incident
        k = int(found["k"])
        assert (int(found["m"]), 1 <= k <= m) == (m, True), incident
        expected = min(delay * unit * 2 ** (k - 1), top * unit)
        assert incident.value == pytest.approx(expected, rel=1e-9, abs=1e-12), incident
        # the next life of the driver begins once the delay is over, not before
        later = [
            e.at
            for e in rec.events[position:]
            if e.driver == d.name and e.phase == "initialize" and e.kind == "begin"
        ]
        if later:
            assert later[0] >= at + expected - 1e-6, (incident, rec.format())


def settings_for(backend: Backend) -> settings:
    return settings(
        max_examples=EXAMPLES[backend],
        deadline=None,
        derandomize=not SOAK,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@pytest.mark.timeout(0 if SOAK else 240)
@pytest.mark.parametrize("schedule", ["tiers", "dependencies"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_crashes_after_startup_keep_the_contract(
    backend: Backend, schedule: str
) -> None:
    """Random plans with random policies and crashes: the eight properties hold."""

    @settings_for(backend)
    @given(scenario=scenarios())
    def example(scenario: Scenario) -> None:
        rec = Recorder()
        out = run_on(
            backend,
            lambda: run_scenario(scenario, rec, schedule, UNIT[backend]),
            scenario,
        )
        check(scenario, rec, out, backend)

    example()
