"""``Run``: executes a plan, tier by tier, and stops it in reverse.

Shape (see DESIGN.md): one *lifetime task* per driver.  It initializes,
autostarts when its tier says so, rests until its tier is told to stop, cancels
its background tasks and stops.  A generator driver therefore runs in one task
from its first line to its last, and may hold a task group across its yield.

The *coordinator* is the task that enters ``async with runtime.run()``.  Per
tier it starts the lifetime tasks, waits on two barriers (every initialize
done, then every autostart done) and moves on.  Only the coordinator tells a
driver to stop, which is how the reverse order and the exactly-once rule hold
under any failure or cancellation: once a driver finished ``initialize`` it
waits *shielded* for that word (see tests/test_rollback.py).  While it waits
at a barrier the coordinator also times out the drivers that overrun.

Cost matters here: a daemon may have thousands of drivers, and every object a
resting driver keeps alive is walked by each full garbage collection.  Hence
slots, floats instead of small lists, and no per-driver timers
(benchmarks/README.md).
"""

from __future__ import annotations

import inspect
import logging
import math
from contextlib import asynccontextmanager, nullcontext
from itertools import chain
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar, cast, overload

import anyio

from ._backend import current_backend
from ._context import Context
from ._driver import (
    Driver,
    DriverHandle,
    generator_initialize,
    generator_stop,
)
from ._exceptions import (
    ConfigError,
    DependencyError,
    DriverTimeout,
    ShutdownError,
    Skip,
    StartupError,
    UsageError,
)
from ._plan import did_you_mean
from ._report import DriverRecord, Report, TierRecord

if TYPE_CHECKING:
    import asyncio
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
    from types import TracebackType

    from ._backend import Backend, Scope, Waitable
    from ._plan import Plan, PlannedDriver
    from ._runtime import Runtime

__all__ = ["Run"]

log = logging.getLogger("tiered")

T = TypeVar("T")
D = TypeVar("D", bound=Driver)

Status = Literal[
    "pending", "starting", "running", "failed", "skipped", "cancelled", "stopped"
]
Phase = Literal["initialize", "autostart", "reload", "stop", "background"]

# run states
_NEW: Final = 0
_STARTING: Final = 1
_RUNNING: Final = 2
_STOPPING: Final = 3
_DONE: Final = 4


class _Cancelled:
    """Outcome of a hook cancelled by the run itself (a sibling failed)."""


_CANCELLED: Final = _Cancelled()

#: stands in for a driver's own start scope where its tier's does the work
_NO_SCOPE: Final = nullcontext()


class _DriverState:
    """Everything the run tracks about one driver; the report reads it."""

    __slots__ = (
        "auto_at",
        "auto_end",
        "bg_closed",
        "bg_count",
        "bg_done",
        "bg_scopes",
        "budget",
        "cancelled_by_run",
        "ctx",
        "d",
        "deadline",
        "error",
        "gen",
        "init_at",
        "init_end",
        "initialized",
        "life",
        "needs_stop",
        "phase",
        "reason",
        "reload_at",
        "reload_end",
        "scope",
        "status",
        "status_text",
        "stop_at",
        "stop_end",
        "task",
        "timed_out",
        "value",
    )

    def __init__(self, run: Run, d: PlannedDriver) -> None:
        self.d = d
        self.ctx = Context(run, self, d.name, d.tier)
        self.status: Status = "pending"
        self.value: Any = None
        self.gen: AsyncIterator[Any] | None = None
        self.initialized = False
        self.needs_stop = False
        self.phase: str | None = None  # initialize, resting, autostart, stop
        self.budget = 0.0  # what initialize left of start_timeout
        # the scope that cancels this driver alone while it starts or
        # reloads; on trio a required driver has none: its tier's is enough
        self.scope: Scope | None = None
        # spans the whole life; shielded from initialize's end to stop
        self.life: Scope | None = None
        # when the phase under way times out: the coordinator enforces it
        # (Run._await), so no driver's cancel scope needs a deadline of its own
        self.deadline = math.inf
        self.cancelled_by_run = False
        self.timed_out = False
        # when each phase began and ended, in seconds since the run began:
        # plain floats, not a dict of lists, since ten thousand drivers'
        # worth of small containers slowed every garbage collection
        self.init_at: float | None = None
        self.init_end: float | None = None
        self.auto_at: float | None = None
        self.auto_end: float | None = None
        self.reload_at: float | None = None
        self.reload_end: float | None = None
        self.stop_at: float | None = None
        self.stop_end: float | None = None
        self.error: BaseException | None = None
        self.reason: str | None = None
        self.status_text: str | None = None
        self.bg_count = 0
        self.bg_closed = False
        self.bg_scopes: set[Scope] | None = None
        self.bg_done: Waitable | None = None
        self.task: asyncio.Task[None] | None = None  # on asyncio: its lifetime


class _Tier:
    """Barriers of one tier.  Every driver arrives at each exactly once."""

    __slots__ = (
        "aborted",
        "autostart_go",
        "end",
        "index",
        "init_done",
        "init_left",
        "start",
        "start_done",
        "start_left",
        "start_scope",
        "states",
        "stop_done",
        "stop_go",
        "stop_left",
    )

    def __init__(
        self, index: int, states: list[_DriverState], now: float, b: Backend
    ) -> None:
        self.index = index
        self.states = states
        self.start = now
        self.end: float | None = None
        self.aborted = False
        # on trio: the cancel scope of the tier's nursery (Run._tier_host)
        self.start_scope: Scope | None = None
        self.init_left = self.start_left = len(states)
        self.stop_left = 0
        self.init_done = b.event()
        self.autostart_go = b.event()
        self.start_done = b.event()
        self.stop_go = b.event()
        self.stop_done = b.event()

    def arrive_init(self) -> None:
        self.init_left -= 1
        if self.init_left == 0:
            self.init_done.set()

    def arrive_start(self) -> None:
        self.start_left -= 1
        if self.start_left == 0:
            self.start_done.set()

    def arrive_stop(self) -> None:
        self.stop_left -= 1
        if self.stop_left == 0:
            self.stop_done.set()


def _note(exc: BaseException, d: PlannedDriver, phase: str) -> BaseException:
    exc.add_note(f"driver {d.name!r} (tier {d.tier}), phase {phase}")
    exc._tiered_driver = d.name  # type: ignore[attr-defined]  # read by _driver_names
    return exc


def _driver_names(errors: Iterable[BaseException]) -> list[str]:
    """The drivers that raised ``errors``, in order, each once."""
    names: list[str] = []
    for exc in errors:
        name = getattr(exc, "_tiered_driver", None)
        if name is not None and name not in names:
            names.append(name)
    return names


def _phases(st: _DriverState) -> dict[str, tuple[float, float | None]]:
    """The report's phases of a driver, in the order they run."""
    phases: dict[str, tuple[float, float | None]] = {}
    if st.init_at is not None:
        phases["initialize"] = (st.init_at, st.init_end)
    if st.auto_at is not None:
        phases["autostart"] = (st.auto_at, st.auto_end)
    if st.reload_at is not None:
        phases["reload"] = (st.reload_at, st.reload_end)
    if st.stop_at is not None:
        phases["stop"] = (st.stop_at, st.stop_end)
    return phases


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Run:
    """One start-to-stop life of a runtime; made by :meth:`Runtime.run`.

    Use it as an async context manager: entering starts every tier and
    returns once all are up (or raises :class:`StartupError` after rolling
    back); leaving stops every started driver in reverse tier order.

    Attributes:
        plan: the checked :class:`Plan` this run executes.

    Example::

        async with runtime.run() as run:
            storage = run.get(Storage)
            await run.reload()
    """

    def __init__(self, runtime: Runtime, plan: Plan) -> None:
        self._runtime = runtime
        self.plan = plan
        self._state = _NEW
        self._states = {name: _DriverState(self, d) for name, d in plan.drivers.items()}
        self._tiers: list[_Tier] = []
        self._current: _Tier | None = None
        self._failed = False
        self._failures: list[Exception] = []
        self._stop_errors: list[Exception] = []
        self._t0 = 0.0
        self._ready_at: float | None = None
        self._stopped_at: float | None = None
        self._stopping_at: float | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        # the backend's own clock, scopes and events, found on entering
        self._b: Backend
        self._clock: Callable[[], float]
        # lifetime tasks spawned and not yet ended; the run waits for them all
        self._alive = 0
        self._all_ended: Waitable | None = None
        self._cancel_reason = "cancelled: another driver of its tier failed"
        # the scope the coordinator waits in while drivers start or stop
        self._timer: Scope | None = None
        self._body_scope: Scope | None = None
        self._reload_lock: anyio.Lock | None = None
        self._stop_cut = False
        self._interrupt: BaseException | None = None
        # serve() listens here for tiers coming up, statuses and extensions
        # (to tell systemd); one callable, no cost when unset.
        self._observer: Callable[[str, str | None, object], None] | None = None
        self._cm: Any = None

    # -- the context manager -------------------------------------------------

    async def __aenter__(self) -> Run:
        if self._state != _NEW:
            msg = (
                f"this run of {self.plan.name!r} was already entered; "
                "call runtime.run() again for a new run"
            )
            raise UsageError(msg)
        self._runtime._claim(self)
        self._state = _STARTING
        self._cm = self._lifespan()
        try:
            return await self._cm.__aenter__()  # type: ignore[no-any-return]
        except BaseException:
            self._runtime._release(self)
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        try:
            return await self._cm.__aexit__(exc_type, exc, tb)  # type: ignore[no-any-return]
        finally:
            self._runtime._release(self)

    @asynccontextmanager
    async def _lifespan(self) -> AsyncIterator[Run]:
        b = self._b = current_backend()
        self._clock = b.clock
        self._t0 = self._clock()
        self._reload_lock = anyio.Lock()
        outcome: BaseException | None = None
        started = False
        # Exceptions are caught inside the task group and raised after it:
        # a task group on trio wraps whatever its body raises in an
        # ExceptionGroup, and users should see their own exception as is
        # (tests/test_run.py::test_body_exception_propagates_unwrapped).
        try:
            async with anyio.create_task_group() as tg, b.lifetimes():
                self._tg = tg
                try:
                    await self._startup()
                    started = True
                except BaseException as exc:
                    outcome = exc
                if started:
                    self._state = _RUNNING
                    self._ready_at = self._clock() - self._t0
                    log.info(
                        "runtime %r is up in %.3fs",
                        self.plan.name,
                        self._ready_at,
                        extra={"tiered_runtime": self.plan.name},
                    )
                    try:
                        with self._b.scope() as self._body_scope:
                            yield self
                    except BaseException as exc:
                        outcome = exc
                    late = await self._to_the_end(self._shutdown)
                    outcome = outcome or late
                late = await self._to_the_end(self._join)
                outcome = outcome or late
        finally:
            # also when leaving the task group raised (cancelled from outside)
            self._state = _DONE
            self._stopped_at = self._clock() - self._t0
        if outcome is None:
            outcome = self._interrupt
        if outcome is not None:
            if self._stop_errors and started:
                outcome.add_note(
                    f"while the run stopped, {len(self._stop_errors)} driver(s) failed: "
                    + "; ".join(_describe(e) for e in self._stop_errors)
                )
            raise outcome
        error = self._shutdown_error()
        if error is not None:
            raise error

    def _shutdown_error(self) -> ShutdownError | None:
        """The stop failures as one ShutdownError, or None; serve() uses it too."""
        if not self._stop_errors:
            return None
        names = ", ".join(_driver_names(self._stop_errors))
        msg = f"runtime {self.plan.name!r} stopped with errors ({names})"
        return ShutdownError(msg, list(self._stop_errors))

    # -- start-up (the coordinator) ------------------------------------------

    async def _startup(self) -> None:
        cancelled: BaseException | None = None
        try:
            for index, names in enumerate(self.plan.tiers):
                if not names:
                    continue
                states = [self._states[n] for n in names]
                tier = _Tier(index, states, self._clock() - self._t0, self._b)
                self._tiers.append(tier)
                self._current = tier
                self._spawn(states, tier)
                await self._await(tier.init_done, tier)
                if self._aborting():
                    break
                tier.autostart_go.set()
                await self._await(tier.start_done, tier)
                if self._aborting():
                    break
                tier.end = self._clock() - self._t0
                self._emit("tier_up", None, index)
                if log.isEnabledFor(logging.INFO):
                    log.info(
                        "tier %d is up in %.3fs (%d driver(s))",
                        index,
                        tier.end - tier.start,
                        len(states),
                        extra={"tiered_tier": index},
                    )
            else:
                self._current = None
                return
        except BaseException as exc:
            # cancelled from outside, or a KeyboardInterrupt that trio
            # delivers at any checkpoint of this task
            cancelled = exc
        late = await self._to_the_end(self._rollback)
        cancelled = cancelled or late
        if cancelled is None and not self._failures and self._interrupt is not None:
            raise self._interrupt
        if cancelled is not None:
            if self._failures:
                log.error(
                    "start-up of %r was cancelled; it had also failed: %s",
                    self.plan.name,
                    "; ".join(_describe(e) for e in self._failures),
                )
            raise cancelled
        failed = [self._states[n] for n in _driver_names(self._failures)]
        what = ", ".join(f"{st.d.name} (tier {st.d.tier})" for st in failed)
        msg = f"runtime {self.plan.name!r} failed to start: {what}"
        raise StartupError(msg, self._failures + self._stop_errors)

    def _aborting(self) -> bool:
        # a method, not the attribute: the awaits in between change it
        return self._failed

    async def _to_the_end(
        self, step: Callable[[], Awaitable[None]]
    ) -> BaseException | None:
        """Run a rollback or shutdown shielded, to its end, whatever arrives.

        Drivers wait shielded for the word to stop, so leaving this half-way
        would leave them waiting forever.  A KeyboardInterrupt meanwhile
        (trio raises it at any checkpoint, shielded or not) cuts the stops
        short instead, and is returned to be raised once all are done
        (tests/test_run.py::test_keyboard_interrupt_while_stopping).
        """
        interrupt: BaseException | None = None
        while True:
            try:
                with self._b.scope(shield=True):
                    await step()
            except BaseException as exc:
                interrupt = interrupt or exc
                self._cut_stop_short()
            else:
                return interrupt

    async def _rollback(self) -> None:
        if not self._failed:
            self._cancel_reason = "cancelled from outside the run"
        tier = self._current
        if tier is not None:
            tier.aborted = True
            self._cancel_starting(tier)
            tier.autostart_go.set()
            await self._await(tier.start_done, tier)
            tier.end = self._clock() - self._t0
        await self._stop_tiers()

    def _cancel_starting(self, tier: _Tier) -> None:
        for st in tier.states:
            if st.phase in ("initialize", "autostart"):
                st.cancelled_by_run = True
                if st.scope is not None:
                    st.scope.cancel()
        if tier.start_scope is not None:
            # trio: every driver of the tier still starting, at once; the
            # others are shielded by their life scope
            tier.start_scope.cancel()

    def _own_scope(self, st: _DriverState, tier: _Tier) -> Scope | None:
        """A scope to cancel this starting driver alone, or None: its tier's will do.

        Only a tier with a scope of its own (trio, _tier_host) can do without,
        and only for required drivers: an optional one is cancelled alone when
        it times out.
        """
        if tier.start_scope is None or st.d.optional:
            return self._b.scope()
        return None

    def _ours(self, st: _DriverState, exc: BaseException) -> bool:
        """Whether ``exc`` is the run's own cancellation of a starting driver."""
        return (
            isinstance(exc, self._b.cancelled)
            and st.phase in ("initialize", "autostart")
            and (st.cancelled_by_run or st.timed_out)
        )

    async def _await(self, done: Waitable, tier: _Tier) -> None:
        """Wait for a barrier of ``tier``, timing its drivers out meanwhile.

        Deadlines live on the drivers' states, not on their cancel scopes: a
        deadline on every scope cost a timer per driver (a heap entry on
        trio, a timer handle on asyncio), and one wait here covers a tier.
        ``ctx.extend_timeout()`` only ever moves a deadline later, so waking
        early is harmless: the wait just starts again.  A driver entering a
        timed phase meanwhile brings the wake-up forward (_set_deadline).
        """
        while not done.is_set():
            deadline = min(st.deadline for st in tier.states)
            try:
                with self._b.scope(deadline=deadline) as self._timer:
                    await done.wait()
            finally:
                self._timer = None
            if not done.is_set():
                self._expire(tier, self._clock())

    def _set_deadline(self, st: _DriverState, when: float) -> None:
        """A driver enters a timed phase: wake the coordinator in time for it."""
        st.deadline = when
        timer = self._timer
        if timer is not None and when < timer.deadline:
            timer.deadline = when

    def _expire(self, tier: _Tier, now: float) -> None:
        for st in tier.states:
            if st.deadline > now:
                continue
            st.deadline = math.inf
            phase = st.phase
            if phase == "stop":
                assert st.life is not None
                st.life.cancel()  # reported by the driver: life.cancelled_caught
            elif phase in ("initialize", "autostart"):
                # reported here, at once, so the start-up fails even if the
                # driver finishes its hook in the same instant
                st.timed_out = True
                which: Phase = "initialize" if phase == "initialize" else "autostart"
                self._fail(st, which, self._timeout(st, which), tier)
                if st.scope is not None:
                    st.scope.cancel()

    # -- one driver's life ---------------------------------------------------

    def _spawn(self, states: list[_DriverState], tier: _Tier) -> None:
        """Start the lifetimes of a tier; _join waits for them to end."""
        self._alive += len(states)
        now = self._clock()
        for st in states:  # until its task begins and sets it again
            st.deadline = now + st.d.start_timeout
        loop = self._b.loop
        if loop is not None:
            # asyncio: plain tasks, each cancelled through its own scope
            life = self._lifetime
            for st in states:
                st.task = loop.create_task(life(st, tier), name=st.d.name)
        else:
            self._b.nursery.start_soon(
                self._tier_host, states, tier, name=f"tiered tier {tier.index}"
            )

    async def _tier_host(self, states: list[_DriverState], tier: _Tier) -> None:
        """Hold a tier's nursery: cancelling it cancels every driver still starting.

        One cancel scope for the tier instead of one more per driver: the
        drivers that finished initialize rest shielded by their own.
        """
        assert self._b.open_nursery is not None
        async with self._b.open_nursery() as nursery:
            tier.start_scope = nursery.cancel_scope
            for st in states:
                nursery.start_soon(self._lifetime, st, tier, name=st.d.name)

    async def _join(self) -> None:
        """Wait until every lifetime task has ended: none outlives the run."""
        if self._alive:
            self._all_ended = self._b.event()
            await self._all_ended.wait()

    async def _lifetime(self, st: _DriverState, tier: _Tier) -> None:
        """Initialize, autostart, rest, stop: one driver, one task.

        Its cancel scopes span the whole life, so a generator driver may keep
        a cancel scope or task group open across its yield (see
        tests/test_run.py::test_generator_driver_holds_a_task_group_across_its_yield).
        ``start`` is what the run cancels to end a driver still starting: the
        driver's own scope, or on trio, for a required driver, the scope of
        its tier's nursery (_tier_host).  ``life``, inside it, is shielded
        once initialize is done, which keeps out ``start`` (even if it was
        cancelled as initialize returned) and any outside cancellation; the
        coordinator cancels it when a stop overruns.  Deadlines are not on the
        scopes: the coordinator enforces them (_await).  See
        tests/test_properties.py::test_driver_initialized_as_its_sibling_fails_is_stopped.
        """
        try:
            d = st.d
            if self._failed or tier.aborted:
                # its tier failed, or start-up was cancelled, before this task
                # ran: do not begin at all
                st.status = "cancelled"
                st.reason = (
                    "cancelled: another driver failed first"
                    if self._failed
                    else self._cancel_reason
                )
                tier.arrive_init()
                tier.arrive_start()
                return
            blocked = self._blocked_by(st)
            if blocked is not None:
                self._not_startable(st, tier, *blocked)
                tier.arrive_init()
                tier.arrive_start()
                return
            st.status = "starting"
            now = self._clock()
            self._set_deadline(st, now + d.start_timeout)
            # Two scopes span the whole life (see the docstring).  ``start``
            # is the driver's own; on trio a required driver uses its tier's.
            start = st.scope = self._own_scope(st, tier)
            life = st.life = self._b.scope()
            t_at = st.init_at = now - self._t0
            t_end: float | None = None
            st.phase = "initialize"
            reraise: BaseException | None = None
            error: object = None  # an Exception, or _CANCELLED
            arrived_init = arrived_start = self_stop = caught = False
            try:
                with start or _NO_SCOPE, life:
                    spec = d.spec
                    if spec.function is not None:
                        st.gen, st.value = await generator_initialize(
                            spec.function, st.ctx
                        )
                    else:
                        await spec.instance.initialize(st.ctx)  # type: ignore[union-attr]
                        st.value = spec.instance
                    # initialize is done: from here on only the coordinator can end
                    # this driver's life, so no cancellation from outside reaches it.
                    life.shield = True
                    st.budget = st.deadline - self._clock()
                    st.deadline = math.inf
                    st.scope = None
                    st.initialized = st.needs_stop = True
                    st.phase = "resting"
                    t_end = st.init_end = self._clock() - self._t0
                    self._transition(st, "initialized", t_end - t_at)
                    arrived_init = True
                    tier.arrive_init()

                    if spec.has_autostart:
                        await tier.autostart_go.wait()
                        if not (
                            tier.aborted
                            or self._failed
                            or st.cancelled_by_run
                            or st.timed_out
                        ):
                            self_stop, reraise = await self._autostart(st, life, tier)
                    if st.status == "starting" and not (
                        tier.aborted or self._failed or reraise
                    ):
                        st.status = "running"
                        self._transition(st, "is running", None)
                    if not self_stop:
                        arrived_start = True
                        tier.arrive_start()
                        await tier.stop_go.wait()

                    st.phase = "stop"
                    st.needs_stop = False
                    now = self._clock()
                    # a cut-short shutdown gives each remaining stop no time
                    self._set_deadline(
                        st, now if self._stop_cut else now + d.stop_timeout
                    )
                    t_at, t_end = now - self._t0, None
                    if spec.has_stop:
                        st.stop_at = t_at
                    await self._end_background(st)
                    if st.gen is not None:
                        gen, st.gen = st.gen, None
                        await generator_stop(gen, st.ctx)
                    elif spec.has_stop:
                        await spec.instance.stop(st.ctx)  # type: ignore[union-attr]
            except Exception as exc:  # Skip included
                error = exc
            except BaseException as exc:  # cancelled, or worse
                if t_end is None:
                    t_end = self._clock() - self._t0
                if self._ours(st, exc):
                    caught = True  # by its tier's scope, on trio
                else:
                    self._interrupted(st, exc, st.phase or "initialize", tier)
                    reraise = exc
            finally:
                st.deadline = math.inf
                if t_end is None:
                    t_end = self._clock() - self._t0
            phase = st.phase
            if phase == "initialize":
                st.init_end = t_end
            elif phase == "stop" and st.stop_at is not None:
                st.stop_end = t_end
            took = t_end - t_at
            if error is None and (caught or (start and start.cancelled_caught)):
                # the coordinator reported a timeout already (_expire)
                error = None if st.timed_out else _CANCELLED
            elif error is None and life.cancelled_caught:
                error = self._timeout(st, "stop")
            if phase == "initialize":
                if error is not None:
                    self._start_failed(st, error, "initialize", tier, took)
            elif error is not None:
                assert isinstance(error, Exception)
                self._stop_failed(st, error, took)
            elif phase == "stop":
                if st.status in ("starting", "running", "cancelled"):
                    st.status = "stopped"
                self._transition(st, "stopped", took)
            st.phase = None
            if phase == "stop":
                st.value = None  # a stopped driver holds nothing
            if not st.initialized and st.bg_count:
                # a failed or cancelled initialize may have started background
                # tasks; they end with it (tests/test_run.py::test_background_of_failed_init_ends)
                with self._b.scope(shield=True):
                    await self._end_background(st)
            if not arrived_init:
                tier.arrive_init()
            if not arrived_start:
                tier.arrive_start()
            elif phase == "stop":
                tier.arrive_stop()
            if reraise is not None:
                if self._b.loop is None and isinstance(reraise, self._b.cancelled):
                    raise reraise
                # KeyboardInterrupt, SystemExit...: the coordinator raises it once,
                # after the rollback or the shutdown, instead of the task group
                # wrapping it (tests/test_rollback.py::test_base_exception_in_a_hook)
                self._interrupt = self._interrupt or reraise
        finally:
            st.deadline = math.inf  # ended early too: nothing left to time out
            # counted in _spawn; _join waits for the last one
            st.task = None
            self._alive -= 1
            if not self._alive and self._all_ended is not None:
                self._all_ended.set()

    def _blocked_by(self, st: _DriverState) -> tuple[str, str] | None:
        for name in st.d.requires:
            dep = self._states[name]
            if dep.status in ("failed", "skipped", "cancelled"):
                return name, dep.status
        return None

    def _not_startable(self, st: _DriverState, tier: _Tier, dep: str, how: str) -> None:
        d = st.d
        dep_state = self._states[dep]
        why = dep_state.reason or (
            _describe(dep_state.error) if dep_state.error else how
        )
        if d.optional:
            st.status = "skipped"
            st.reason = (
                f"requires {dep!r} (tier {dep_state.d.tier}), which {how}: {why}"
            )
            self._transition(st, "skipped: " + st.reason, None, logging.WARNING)
        else:
            msg = (
                f"{d.name} (tier {d.tier}) cannot start: it requires {dep} "
                f"(tier {dep_state.d.tier}), which {how} ({why}); make "
                f"{d.name!r} optional=True to run without it, or fix {dep!r}"
            )
            self._fail(st, "initialize", DependencyError(msg), tier)

    async def _autostart(
        self, st: _DriverState, life: Scope, tier: _Tier
    ) -> tuple[bool, BaseException | None]:
        """Run autostart under what is left of start_timeout.

        Returns whether the driver must stop at once (it skipped, or it is
        optional and failed) and the outside cancellation to re-raise once the
        driver has stopped, if one arrived.
        """
        d = st.d
        now = self._clock()
        self._set_deadline(st, now + st.budget)
        scope = st.scope = self._own_scope(st, tier)
        st.auto_at = now - self._t0
        st.phase = "autostart"
        outcome: object = None
        reraise: BaseException | None = None
        life.shield = False
        try:
            with scope or _NO_SCOPE:
                await d.spec.instance.autostart(st.ctx)  # type: ignore[union-attr]
        except Exception as exc:  # Skip included
            outcome = exc
        except BaseException as exc:
            if self._ours(st, exc):
                outcome = _CANCELLED
            else:
                self._interrupted(st, exc, "autostart", tier)
                reraise = exc
        finally:
            life.shield = True
            st.scope = None
            st.deadline = math.inf
            st.phase = "resting"
            st.auto_end = self._clock() - self._t0
        took = st.auto_end - st.auto_at
        if outcome is None and reraise is None and scope and scope.cancelled_caught:
            outcome = _CANCELLED
        if outcome is _CANCELLED and st.timed_out:
            outcome = None  # the coordinator reported the timeout (_expire)
        elif outcome is None:
            if reraise is None:
                st.status = "running"
                self._transition(st, "autostarted", took)
            return False, reraise
        else:
            self._start_failed(st, outcome, "autostart", tier, took)
        # skipped, or optional and failed: it will not run, so it stops now
        # rather than at the end of the run
        return st.status == "skipped" or (st.status == "failed" and d.optional), reraise

    def _start_failed(
        self,
        st: _DriverState,
        outcome: object,
        phase: Phase,
        tier: _Tier | None,
        took: float | None,
    ) -> None:
        if isinstance(outcome, Skip):
            st.status = "skipped"
            st.reason = outcome.reason or "skipped itself"
            self._transition(st, f"skipped in {phase}: {st.reason}", took)
        elif outcome is _CANCELLED:
            st.status = "cancelled"
            st.reason = self._cancel_reason
            self._transition(st, f"cancelled in {phase}", took)
        else:
            assert isinstance(outcome, Exception)
            self._fail(st, phase, outcome, tier, took)

    def _timeout(self, st: _DriverState, phase: str) -> DriverTimeout:
        d = st.d
        if phase == "stop" and self._stop_cut:
            msg = f"{d.name} (tier {d.tier}): stop was cut short on request"
            return DriverTimeout(msg)
        limit = d.start_timeout if phase != "stop" else d.stop_timeout
        knob = "start_timeout" if phase != "stop" else "stop_timeout"
        msg = (
            f"{d.name} (tier {d.tier}) did not finish {phase} within its "
            f"{knob} of {limit:g}s; raise {knob} for {d.name!r}, or call "
            "ctx.extend_timeout() while it makes progress"
        )
        return DriverTimeout(msg)

    def _fail(
        self,
        st: _DriverState,
        phase: Phase,
        exc: Exception,
        tier: _Tier | None,
        took: float | None = None,
    ) -> None:
        d = st.d
        st.status = "failed"
        st.error = exc
        _note(exc, d, phase)
        if d.optional and phase != "background":
            self._transition(
                st,
                f"failed in {phase} (optional): {_describe(exc)}",
                took,
                logging.WARNING,
            )
            return
        self._transition(
            st, f"failed in {phase}: {_describe(exc)}", took, logging.ERROR
        )
        self._failures.append(exc)
        if not self._failed:
            self._failed = True
            if tier is not None:
                self._cancel_starting(tier)

    def _interrupted(
        self, st: _DriverState, exc: BaseException, phase: str, tier: _Tier | None
    ) -> None:
        """A hook was left by a BaseException: a cancellation, or worse."""
        # On asyncio nothing outside the run can cancel a lifetime task (a
        # plain task, see _backend.py): a CancelledError there is as
        # unexpected as a KeyboardInterrupt, and aborts the start-up like one.
        if self._b.loop is None and isinstance(exc, self._b.cancelled):
            if st.status == "starting":
                st.status = "cancelled"
                st.reason = "cancelled from outside the run"
            self._transition(st, f"cancelled in {phase}", None)
            return
        # KeyboardInterrupt, SystemExit, ...: abort the start-up; the
        # exception itself goes on once the driver is stopped.
        st.status = "failed"
        st.error = exc
        self._transition(
            st, f"interrupted in {phase}: {_describe(exc)}", None, logging.ERROR
        )
        if not self._failed:
            self._failed = True
            if tier is not None:
                self._cancel_starting(tier)

    # -- stop ----------------------------------------------------------------

    async def _stop_tiers(self) -> None:
        # resumable: _to_the_end() calls it again after an interrupt
        for tier in reversed(self._tiers):
            if not tier.stop_go.is_set():
                resting = [st for st in tier.states if st.needs_stop]
                if not resting:
                    continue
                tier.stop_left = len(resting)
                tier.stop_go.set()
            await self._await(tier.stop_done, tier)

    async def _shutdown(self) -> None:
        self._state = _STOPPING
        if self._stopping_at is None:
            self._stopping_at = self._clock() - self._t0
        assert self._reload_lock is not None
        async with self._reload_lock:  # an in-flight reload finishes first
            await self._stop_tiers()

    def _stop_failed(self, st: _DriverState, error: Exception, took: float) -> None:
        d = st.d
        st.status = "failed"
        st.error = error
        _note(error, d, "stop")
        self._stop_errors.append(error)
        self._transition(st, f"failed in stop: {_describe(error)}", took, logging.ERROR)

    # -- background tasks ----------------------------------------------------

    def _start_background(
        self,
        st: _DriverState,
        fn: Callable[..., Awaitable[object]],
        args: tuple[Any, ...],
        name: object,
    ) -> None:
        if st.bg_closed or self._tg is None:
            when = "from stop" if st.phase == "stop" else f"while it is {st.status}"
            msg = (
                f"{st.d.name} (tier {st.d.tier}) called ctx.start_soon() {when}; "
                "background tasks can be started from initialize, autostart and "
                "reload, and end before stop runs"
            )
            raise UsageError(msg)
        # called now, as anyio's start_soon does, so a mistake fails here,
        # in the hook that made it, rather than later in the task
        given = cast("object", fn)  # typed as a function; users pass anything
        if inspect.iscoroutine(given):
            given.close()  # never awaited: no RuntimeWarning on top of the error
            msg = (
                f"{st.d.name} (tier {st.d.tier}) passed a coroutine to "
                f"ctx.start_soon(); pass the async function and its arguments: "
                f"ctx.start_soon({given.__qualname__}, ...), not "
                f"ctx.start_soon({given.__qualname__}(...))"
            )
            raise TypeError(msg)
        coro = cast("object", fn(*args))  # typed awaitable; may not be
        if not inspect.isawaitable(coro):
            what = getattr(fn, "__qualname__", repr(fn))
            msg = (
                f"{st.d.name} (tier {st.d.tier}) called ctx.start_soon({what}), "
                f"which returned {coro!r}, not an awaitable; ctx.start_soon() "
                "takes an async function"
            )
            raise TypeError(msg)
        st.bg_count += 1
        self._tg.start_soon(
            self._background,
            st,
            coro,
            name=name or getattr(fn, "__qualname__", None),
        )

    async def _background(self, st: _DriverState, coro: Awaitable[object]) -> None:
        try:
            if st.bg_closed:  # its driver began stopping before this ran
                if inspect.iscoroutine(coro):
                    coro.close()
                return
            with self._b.scope() as scope:
                if st.bg_scopes is None:
                    st.bg_scopes = set()
                st.bg_scopes.add(scope)
                try:
                    await coro
                except Exception as exc:
                    self._background_failed(st, exc)
                finally:
                    st.bg_scopes.discard(scope)
        finally:
            st.bg_count -= 1
            if st.bg_count == 0 and st.bg_done is not None:
                st.bg_done.set()

    def _background_failed(self, st: _DriverState, exc: Exception) -> None:
        d = st.d
        if self._state == _STARTING:
            self._fail(st, "background", exc, self._current)
            return
        st.status = "failed"
        st.error = exc
        _note(exc, d, "background")
        self._stop_errors.append(exc)
        self._transition(
            st,
            f"background task failed: {_describe(exc)}; stopping the run",
            None,
            logging.ERROR,
        )
        if self._state == _RUNNING and self._body_scope is not None:
            self._body_scope.cancel()

    async def _end_background(self, st: _DriverState) -> None:
        st.bg_closed = True
        if st.bg_count:
            if st.bg_scopes:
                for scope in st.bg_scopes:
                    scope.cancel()
            st.bg_done = self._b.event()
            await st.bg_done.wait()

    # -- what hooks and users call -------------------------------------------

    def _name_of(self, dep: object, who: str, among: Iterable[str]) -> str:
        if isinstance(dep, str):
            return dep
        if isinstance(dep, DriverHandle):
            if dep._owner is not self._runtime:
                msg = (
                    f"{who}: {dep!r} belongs to another runtime than {self.plan.name!r}"
                )
                raise DependencyError(msg)
            return dep.name
        if isinstance(dep, Driver):
            return dep.name
        if isinstance(dep, type) and issubclass(dep, Driver):
            for name in among:
                if type(self._states[name].d.spec.instance) is dep:
                    return name
            msg = f"{who}: no driver of class {dep.__qualname__} in runtime {self.plan.name!r}"
            raise DependencyError(msg)
        msg = (
            f"{who}: {dep!r} does not name a driver; pass a driver name, a handle "
            "from @runtime.driver, or a Driver class"
        )
        raise DependencyError(msg)

    def _lookup_for(self, st: _DriverState, dep: object) -> Any:
        d = st.d
        who = f"{d.name} (tier {d.tier})"
        # a declared requirement wins when several drivers share a class
        # lazily: a name needs no search, and building a tuple of every driver
        # name on each ctx.get() would cost O(drivers)
        name = self._name_of(dep, f"{who} ctx.get()", chain(d.requires, self._states))
        if name not in self._states:
            msg = (
                f"{who} asked for {name!r}, which is not a driver of runtime "
                f"{self.plan.name!r}{did_you_mean(name, self._states)}"
            )
            raise DependencyError(msg)
        if name not in d.requires:
            msg = (
                f"{who} asked for {name!r}, which is not in its requires; "
                f"declare it: requires={(*d.requires, name)!r}"
            )
            raise DependencyError(msg)
        return self._states[name].value

    @overload
    def get(self, dep: DriverHandle[T]) -> T: ...
    @overload
    def get(self, dep: type[D]) -> D: ...
    @overload
    def get(self, dep: str | Driver) -> Any: ...
    def get(self, dep: object) -> Any:
        """Return the value of a running driver.

        Typed by what you pass: a handle from ``@runtime.driver`` gives the
        type its function yields, a :class:`Driver` class gives an instance
        of that class, a name gives ``Any``::

            async with runtime.run() as run:
                pool = run.get(storage)   # the handle: typed
                pool = run.get("storage")  # the name: Any

        Args:
            dep: the driver's name, its handle or its class.

        Raises:
            DependencyError: no such driver, or it is not running (skipped,
                failed or optional and down).
            UsageError: the run is not up (not entered yet, or stopped).
        """
        name = self._name_of(dep, "run.get()", self._states)
        st = self._states.get(name)
        if st is None:
            msg = (
                f"run.get({name!r}): no driver of that name in runtime "
                f"{self.plan.name!r}{did_you_mean(name, self._states)}"
            )
            raise DependencyError(msg)
        if self._state not in (_RUNNING,):
            msg = (
                f"run.get({name!r}): the run of {self.plan.name!r} is not up; use "
                "run.get() inside `async with runtime.run() as run:`"
            )
            raise UsageError(msg)
        if st.status != "running":
            why = (
                f" ({st.reason})"
                if st.reason
                else (f" ({_describe(st.error)})" if st.error else "")
            )
            msg = f"run.get({name!r}): {name} (tier {st.d.tier}) is {st.status}{why}"
            raise DependencyError(msg)
        return st.value

    async def reload(self) -> tuple[Exception, ...]:
        """Call ``reload`` tier by tier, concurrently within a tier.

        Errors (and timeouts, under each driver's ``start_timeout``) are
        logged, noted with driver, tier and phase, and returned; a reload
        never stops the run.  A reload called while one runs waits for it.

        Returns:
            the exceptions raised by reload hooks, empty when all went well.
        """
        if self._state != _RUNNING:
            msg = (
                f"run.reload(): the run of {self.plan.name!r} is not up; call "
                "run.reload() inside `async with runtime.run() as run:`"
            )
            raise UsageError(msg)
        assert self._reload_lock is not None
        errors: list[Exception] = []
        async with self._reload_lock:
            for tier in self._tiers:
                targets = [
                    st
                    for st in tier.states
                    if st.status == "running" and st.d.spec.has_reload
                ]
                if not targets:
                    continue
                async with anyio.create_task_group() as tg:
                    for st in targets:
                        tg.start_soon(self._reload_one, st, errors)
        return tuple(errors)

    async def _reload_one(self, st: _DriverState, errors: list[Exception]) -> None:
        d = st.d
        now = self._clock()
        st.reload_at, st.reload_end = now - self._t0, None
        # a reload is bounded by its own scope; the coordinator is not waiting
        scope = st.scope = self._b.scope(deadline=now + d.start_timeout)
        error: Exception | None = None
        try:
            with scope:
                await d.spec.instance.reload(st.ctx)  # type: ignore[union-attr]
        except Exception as exc:
            error = exc
        finally:
            st.reload_end = self._clock() - self._t0
            st.scope = None
        took = st.reload_end - st.reload_at
        if error is None and scope.cancelled_caught:
            error = self._timeout(st, "reload")
        if error is None:
            self._transition(st, "reloaded", took)
            return
        errors.append(_note(error, d, "reload"))  # type: ignore[arg-type]
        self._transition(
            st, f"failed in reload: {_describe(error)}", took, logging.ERROR
        )

    def _set_status(self, st: _DriverState, text: object) -> None:
        if not isinstance(text, str):
            msg = f"{st.d.name}: ctx.status() takes a str, got {text!r}"
            raise ConfigError(msg)
        st.status_text = text
        self._emit("status", st.d.name, text)
        log.info(
            "%s (tier %d): %s",
            st.d.name,
            st.d.tier,
            text,
            extra={
                "tiered_driver": st.d.name,
                "tiered_tier": st.d.tier,
                "tiered_status": text,
            },
        )

    def _extend(self, st: _DriverState, seconds: object) -> None:
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or not seconds > 0
        ):
            msg = (
                f"{st.d.name}: ctx.extend_timeout({seconds!r}) takes a number of "
                "seconds > 0"
            )
            raise ConfigError(msg)
        if st.deadline != math.inf:  # initialize, autostart or stop: _await
            st.deadline = max(st.deadline, self._clock() + seconds)
        elif st.scope is not None and st.scope.deadline != math.inf:  # reload
            st.scope.deadline = max(st.scope.deadline, self._clock() + seconds)
        else:  # resting: nothing to extend
            return
        self._emit("extend", st.d.name, float(seconds))

    def _emit(self, event: str, driver: str | None, value: object) -> None:
        if self._observer is not None:
            try:
                self._observer(event, driver, value)
            except Exception:  # an observer never breaks the run
                log.exception("tiered observer failed on %s", event)

    def _cut_stop_short(self) -> None:
        """End the shutdown now: running stops are cancelled, the rest get no time.

        Every driver still gets its stop called, exactly once; what does not
        finish is reported as a DriverTimeout.  serve() calls this on a second
        SIGINT.
        """
        self._stop_cut = True
        for st in self._states.values():
            if st.phase == "stop" and st.life is not None:
                st.life.cancel()

    # -- report and logging --------------------------------------------------

    def _transition(
        self,
        st: _DriverState,
        what: str,
        duration: float | None,
        level: int = logging.INFO,
    ) -> None:
        if not log.isEnabledFor(level):
            return
        d = st.d
        if duration is not None:
            log.log(
                level,
                "%s (tier %d) %s (%.3fs)",
                d.name,
                d.tier,
                what,
                duration,
                extra={
                    "tiered_driver": d.name,
                    "tiered_tier": d.tier,
                    "tiered_status": st.status,
                    "tiered_duration": duration,
                },
            )
        else:
            log.log(
                level,
                "%s (tier %d) %s",
                d.name,
                d.tier,
                what,
                extra={
                    "tiered_driver": d.name,
                    "tiered_tier": d.tier,
                    "tiered_status": st.status,
                },
            )

    @property
    def report(self) -> Report:
        """What happened so far: a fresh snapshot at every access."""
        drivers = tuple(
            DriverRecord(
                name=st.d.name,
                tier=st.d.tier,
                status=st.status,
                optional=st.d.optional,
                phases=_phases(st),
                error=_describe(st.error) if st.error is not None else None,
                reason=st.reason,
                status_text=st.status_text,
            )
            for names in self.plan.tiers
            for st in (self._states[n] for n in names)
        )
        tiers = tuple(
            TierRecord(
                index=t.index,
                drivers=tuple(s.d.name for s in t.states),
                start=t.start,
                end=t.end,
            )
            for t in self._tiers
        )
        return Report(
            name=self.plan.name,
            drivers=drivers,
            tiers=tiers,
            ready_at=self._ready_at,
            stopping_at=self._stopping_at,
            stopped_at=self._stopped_at,
        )

    def __repr__(self) -> str:
        state = ("new", "starting", "running", "stopping", "stopped")[self._state]
        return f"<tiered.Run of {self.plan.name!r}, {state}>"
