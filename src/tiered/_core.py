"""``Core``: what one run knows, in one place, and the few acts its rooms share.

A run is made of rooms, each with one job: the slots (``_slot``), the
lifetimes (``_lifetime``), a schedule (``_schedule``, ``_dependencies``),
the deadlines (``_deadlines``), the failure policy (``_policy``), the
supervisor (``_supervisor``), background tasks (``_background``), reloads
(``_reload``) and the journal (``_journal``).  They reach each other
through this object; it holds state and does the small things several of
them need (spawn, stop the run, look a driver up), and nothing else.
``Run`` is the public face of it.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any, Literal

from ._checks import check_seconds
from ._deadlines import Deadlines
from ._driver import Driver, DriverHandle
from ._exceptions import ConfigError, DependencyError, DriverTimeout
from ._journal import Journal
from ._lifetime import lifetime
from ._plan import did_you_mean, instances_of
from ._slot import STARTING, Slot

if TYPE_CHECKING:
    import contextvars
    from collections.abc import Callable, Iterable

    import anyio.abc

    from ._backend import Backend, Batch, Host, Scope
    from ._exceptions import Failure
    from ._plan import Plan
    from ._policy import Policy
    from ._reload import Reloads
    from ._schedule import Schedule, Start, TierRecordData
    from ._supervisor import Supervisor

    # a Literal costs a daemon's start-up: for type checkers only
    State = Literal["new", "starting", "running", "restarting", "stopping", "stopped"]


__all__ = ["Core"]

log = logging.getLogger("tiered")


class _Budget:
    """The shutdown's own deadline (``Runtime(shutdown_timeout=...)``)."""

    __slots__ = ("core", "deadline", "token")

    def __init__(self, core: Core) -> None:
        self.core = core
        self.deadline = math.inf
        self.token = 0

    def expire(self, now: float) -> None:
        # one line, a warning: the run's budget ran out (it used to be said
        # twice, once here and once by cut_short)
        self.core.cut_short(
            f"cut short: the shutdown took its whole shutdown_timeout of "
            f"{self.core.shutdown_timeout:g}s",
            level=logging.WARNING,
        )


class Core:
    """The state of one run and the rooms that act on it."""

    def __init__(
        self,
        plan: Plan,
        owner: object,
        *,
        schedule: str,
        max_concurrent_starts: int | None,
        shutdown_timeout: float | None,
    ) -> None:
        self.plan = plan
        self.name = plan.name
        self.owner = owner
        self.slots = {name: Slot(self, d) for name, d in plan.drivers.items()}
        #: every slot in start order: tier by tier, declaration order within
        self.order = [self.slots[n] for names in plan.tiers for n in names]
        #: the same, grouped by tier (the tier schedule's start and stop)
        self.by_tier = [
            (k, [self.slots[n] for n in names])
            for k, names in enumerate(plan.tiers)
            if names
        ]
        self.deadlines = Deadlines()
        self.journal = Journal(self)
        self._reloads: Reloads | None = None
        self._policy: Policy | None = None  # made by the first failure
        self.schedule_name = schedule
        self.schedule: Schedule = _make_schedule(self, schedule)
        self._supervisor: Supervisor | None = None
        self.max_concurrent_starts = max_concurrent_starts
        self.limiter: anyio.Semaphore | None = None
        self.shutdown_timeout = shutdown_timeout
        self._budget = _Budget(self)
        self._dependents: dict[str, list[str]] | None = None
        # found on entering (Run)
        self.backend: Backend
        self.clock: Callable[[], float] = _no_clock
        self.t0 = 0.0
        self.host: Host
        self.tg: anyio.abc.TaskGroup | None = None
        self.context: contextvars.Context
        # what happened
        self.state: State = "new"
        self.failed = False  # a required driver failed after start-up: not live
        self.stopping = False
        self.cut = False
        self.cut_why = ""  # what cut the stop short, for its DriverTimeouts
        self.interrupt: BaseException | None = None
        self.start_job: Start | None = None
        # what the supervisor gave up on: "gave up restarting storage (tier 1) after ..."
        self.gave_up: str | None = None
        self.stop_failures: list[Failure] = []
        self.run_failures: list[Failure] = []
        self.tiers: list[TierRecordData] = []
        self.body_scope: Scope | None = None
        self.ready_at: float | None = None
        self.stopping_at: float | None = None
        self.stopped_at: float | None = None

    # -- state ---------------------------------------------------------------------

    @property
    def policy(self) -> Policy:
        """What a failure means (``_policy``): made, and imported, when one happens.

        A run where nothing fails, or is cancelled, never needs it: a
        daemon's start-up does not pay for the module (docs/benchmarks.md).
        """
        policy = self._policy
        if policy is None:
            from ._policy import Policy

            policy = self._policy = Policy(self)
        return policy

    def set_state(self, state: State) -> None:
        if state != self.state:
            self.state = state
            self.journal.state(state)

    @property
    def supervisor(self) -> Supervisor:
        if self._supervisor is None:
            from ._supervisor import Supervisor

            self._supervisor = Supervisor(self)
        return self._supervisor

    @property
    def reloads(self) -> Reloads:
        if self._reloads is None:
            from ._reload import Reloads

            self._reloads = Reloads(self)
        return self._reloads

    def cancel_reloads(self) -> None:
        """A stop begins: end the reload under way, if any."""
        if self._reloads is not None:
            self._reloads.cancel()

    async def reloads_done(self) -> None:
        """Wait until no reload runs (after :meth:`cancel_reloads`)."""
        if self._reloads is not None:
            await self._reloads.wait()

    @property
    def restarting(self) -> bool:
        return self._supervisor is not None and self._supervisor.busy

    # -- acts the rooms share ----------------------------------------------------------

    def spawn(self, slots: list[Slot], *, batch: bool) -> None:
        """Begin the lifetimes of ``slots`` (a tier's together when ``batch``)."""
        if not slots:
            return
        for slot in slots:
            slot.state = STARTING
        host = self.host
        if batch:
            shared = host.spawn_batch(lifetime, slots)
            if shared is not None:
                for slot in slots:
                    slot.batch = shared
        else:
            for slot in slots:
                host.spawn(lifetime, slot)

    def join(self, slot: Slot, batch: Batch | None) -> None:
        """Begin the lifetime of ``slot`` in ``batch`` (``Host.open_batch``), or alone."""
        slot.state = STARTING
        slot.batch = batch
        self.host.join_batch(batch, lifetime, slot)

    def spawn_stop(self, slots: list[Slot]) -> None:
        """Stop ``slots`` in order, in a task of the run (a containment)."""
        if slots and self.tg is not None:
            self.tg.start_soon(self.schedule.stop, slots, name="tiered stop")

    def stop_run(self, failure: Failure | None) -> None:
        """A failure the run cannot live with: stop it (the body is cancelled)."""
        if failure is not None:
            self.run_failures.append(failure)
        if not self.failed:
            self.failed = True
            # the state is the same, but live is not: the status file follows
            self.journal.emit("state", value=self.state, detail="failed")
        if self.state in ("running", "restarting"):
            if self.body_scope is not None:
                self.body_scope.cancel()
        elif self.state == "starting" and self.start_job is not None:
            self.start_job.abort(reason="cancelled: the run is stopping")

    def cut_short(
        self, why: str = "cut short on request", level: int = logging.INFO
    ) -> None:
        """End the shutdown now: running stops are cancelled, the rest get no time."""
        if self.cut:
            return
        self.cut = True
        self.cut_why = why
        now = self.clock()
        for slot in self.order:
            if slot.phase == "stop":
                self.deadlines.set(slot, now)
            elif slot.phase == "ending" and slot.aux is not None:
                slot.aux.cancel()
        log.log(level, "the stop of %r is %s", self.name, why)

    def start_budget(self) -> None:
        """Shutdown begins: bound the whole of it by ``shutdown_timeout``."""
        if self.shutdown_timeout is not None:
            self.deadlines.set(self._budget, self.clock() + self.shutdown_timeout)

    def dependents(self, name: str) -> list[str]:
        """``name`` and every driver that requires it, transitively, in start order."""
        if self._dependents is None:
            self._dependents = {n: [] for n in self.slots}
            for slot in self.order:
                for req in slot.d.requires:
                    self._dependents[req].append(slot.name)
        found = {name}
        todo = [name]
        while todo:
            for dep in self._dependents[todo.pop()]:
                if dep not in found:
                    found.add(dep)
                    todo.append(dep)
        return [s.name for s in self.order if s.name in found]

    def extend(self, slot: Slot, seconds: object) -> None:
        """``ctx.extend_timeout(seconds)``."""
        value = check_seconds(
            seconds, f"{slot.name}: ctx.extend_timeout({seconds!r})", takes=True
        )
        assert value is not None
        if self.cut and slot.phase in ("stop", "ending"):
            return  # a stop cut short stays cut
        if self.deadlines.extend(slot, self.clock() + value):
            self.journal.emit("extend", slot, value)

    def timeout_error(
        self, slot: Slot, phase: str, *, late: float | None = None
    ) -> DriverTimeout:
        """The DriverTimeout of ``phase``, with the hints that fit how it ran out."""
        d = slot.d
        knob = "stop_timeout" if phase == "stop" else "start_timeout"
        limit = d.stop_timeout if phase == "stop" else d.start_timeout
        msg = (
            f"{slot.label()} did not finish {phase} within its {knob} of "
            f"{limit:g}s; raise {knob} for {d.name!r}, or call "
            "ctx.extend_timeout() while it makes progress"
        )
        if late is not None:
            # tests/test_first_hour.py::test_a_hook_that_blocks_the_loop_times_out_on_every_backend
            msg += (
                f". It returned {late:.3g}s after its deadline, and the event "
                "loop never got to end it: the hook blocked the event loop "
                "(time.sleep, blocking I/O, a long computation), which no "
                "timeout can interrupt; run such work in a thread with "
                "`await anyio.to_thread.run_sync(...)`"
            )
        if self.backend.virtual_clock:
            msg += (
                f". Note: the run's clock is virtual ({self.backend.clock_name}, "
                "as under pytest-trio's autojump_clock): it jumps ahead whenever "
                "every task waits, so a hook that waits on real I/O or a thread "
                "runs out of time at once; test such drivers with the real clock"
            )
        return DriverTimeout(msg)

    # -- names ---------------------------------------------------------------------

    def name_of(self, dep: object, who: str, prefer: Iterable[str] = ()) -> str:
        """The driver name ``dep`` refers to (a name, handle, class or instance)."""
        if isinstance(dep, str):
            return dep
        if isinstance(dep, DriverHandle):
            if not dep.belongs_to(self.owner):
                msg = f"{who}: {dep!r} belongs to another runtime than {self.name!r}"
                raise DependencyError(msg)
            return dep.name
        if isinstance(dep, Driver):
            return dep.name
        if isinstance(dep, type) and issubclass(dep, Driver):
            specs = [self.slots[n].d.spec for n in prefer]
            matches = instances_of(dep, specs)
            if len(matches) == 1:
                return matches[0]
            if not matches:
                matches = instances_of(dep, (s.d.spec for s in self.order))
            if len(matches) == 1:
                return matches[0]
            if not matches:
                msg = f"{who}: no driver of class {dep.__qualname__} in runtime {self.name!r}"
            else:
                msg = (
                    f"{who}: runtime {self.name!r} has {len(matches)} drivers of "
                    f"class {dep.__qualname__} ({', '.join(matches)}); name the one "
                    f"you mean, e.g. {matches[0]!r}"
                )
            raise DependencyError(msg)
        msg = (
            f"{who}: {dep!r} does not name a driver; pass a driver name, a handle "
            "from @runtime.driver, or a Driver class"
        )
        raise DependencyError(msg)

    def lookup_for(self, slot: Slot, dep: object) -> Any:
        """``ctx.get(dep)``: the value of a requirement of ``slot``."""
        d = slot.d
        who = slot.label()
        # a declared requirement wins when several drivers share a class
        name = self.name_of(dep, f"{who} ctx.get()", d.requires)
        if name not in self.slots:
            msg = (
                f"{who} asked for {name!r}, which is not a driver of runtime "
                f"{self.name!r}{did_you_mean(name, self.slots)}"
            )
            raise DependencyError(msg)
        if name not in d.requires:
            if name in d.after:
                msg = (
                    f"{who} asked for {name!r}, which it is only after; after= "
                    "orders drivers without giving their values: move it to "
                    f"requires={(*d.requires, name)!r} to use it"
                )
            else:
                msg = (
                    f"{who} asked for {name!r}, which is not in its requires; "
                    f"declare it: requires={(*d.requires, name)!r}"
                )
            raise DependencyError(msg)
        return self.slots[name].value


def _no_clock() -> float:
    return 0.0


def _make_schedule(core: Core, name: str) -> Schedule:
    if name == "dependencies":
        from ._dependencies import DependencySchedule

        return DependencySchedule(core)
    if name == "tiers":
        from ._schedule import TierSchedule

        return TierSchedule(core)
    msg = f"schedule={name!r}: use 'tiers' (the barrier) or 'dependencies'"
    raise ConfigError(msg)
