"""Restarts: a driver that failed after start-up, and its dependents, start again.

A restart is one transaction over a *subtree*: the failed driver and every
driver that requires it, transitively (not ``after``).  All of them are
marked ``restarting``; the dependents stop first, in the schedule's stop
order, then the failed driver (its background tasks cancelled and waited
for, then its ``stop``).  After the backoff delay the failed driver starts
again, then its dependents, in start order, as one start transaction
(``_schedule.Start``): if it fails, what started is stopped again and that
counts as one more failure of the driver.  Past its budget the supervisor
gives up, and the run stops as it does for a driver without ``restart``.

The traps this avoids, each known from a supervisor that fell in:

* one transaction for the subtree, not a restart job per driver chained by
  hand, so a dependent is never left down nor started while what it
  requires is down (systemd#11695, #13841);
* the failed driver's background tasks have ended before it starts again
  (why OTP rejected restarting a child before its neighbours had exited);
* exponential backoff from a small delay, and failures older than the
  window forgotten (``_restart.Backoff``): no budget burnt in half a second
  and then never retried, no counter that never resets;
* dependents restarted because of another driver use none of their own
  budget;
* two subtrees that share a dependent (it requires both failed drivers):
  the later restart holds it too, and it starts again only after both, so
  it never runs on a driver that is down or about to be stopped;
* a restart stops every dependent still up, a failed one too, before the
  failed driver; once the run has failed, nothing restarts: its shutdown
  stops everything in order;
* an interrupt raised by a hook while a restart starts stops the run, as
  in any start, instead of being retried.

Transactions run one at a time, in a task of the run; a stop of the run
abandons the one under way (also before its task has begun) and every
driver that is up is then stopped exactly once by the shutdown.  A life that
never began, in an attempt cut short, is no restart: ``DriverRecord.restarts``
counts the lives a driver began after its first.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import TYPE_CHECKING

import anyio

from ._exceptions import describe
from ._restart import Backoff
from ._slot import DOWN, PENDING, STOPPING, UP

if TYPE_CHECKING:
    from ._backend import Scope, Waitable
    from ._core import Core
    from ._exceptions import Failure
    from ._schedule import Start
    from ._slot import Slot

__all__ = ["Supervisor"]

log = logging.getLogger("tiered")


class _Restart:
    __slots__ = ("armed", "delay", "failure", "members", "root")

    def __init__(
        self, root: Slot, members: list[Slot], delay: float, failure: Failure
    ) -> None:
        self.root = root
        self.members = members
        self.delay = delay
        self.failure = failure
        #: the members this attempt armed for a new life (none before its start)
        self.armed: list[Slot] = []


class Supervisor:
    """The restarts of one run."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.queue: deque[_Restart] = deque()
        self.busy = False
        self._scope: Scope | None = None
        self._done: Waitable | None = None

    def failed(self, slot: Slot, failure: Failure) -> None:
        """A driver with ``restart`` failed after start-up (from the policy)."""
        core = self.core
        if core.failed:
            # the run is stopping for another failure: nothing restarts, and
            # its shutdown stops this one in order (a restart would stop it
            # now, under dependents still up: tests/test_properties_supervision.py)
            slot.record_failure(failure)
            core.journal.changed(slot)
            return
        policy = slot.d.restart
        assert policy is not None
        backoff = slot.backoff
        if backoff is None:
            backoff = slot.backoff = Backoff(policy)
        delay = backoff.failed(core.clock())
        members = self._members(slot)
        if delay is None:
            self._give_up(slot, members, failure)
            return
        if not self.busy:
            # busy (so run.state says "restarting") before the first event of
            # the restart goes out: a listener never sees a restart while the
            # run still looks ready
            self.busy = True
            self._done = core.backend.event()
            # made now, not when the task begins: a stop that comes before
            # then cancels it all the same (tests/test_supervision.py::
            # test_a_stop_right_after_the_failure_abandons_the_restart)
            self._scope = core.backend.scope()
            core.journal.state("restarting")
            assert core.tg is not None
            core.tg.start_soon(self._work, name="tiered supervisor")
        self._announce(slot, members, delay, failure)
        self.queue.append(_Restart(slot, members, delay, failure))

    def _members(self, root: Slot) -> list[Slot]:
        """The subtree that restarts: ``root`` and its dependents that took part.

        A dependent that another restart holds (``restarting``, perhaps down
        for now) is one: this restart must stop it before ``root`` and start
        it after (tests/test_supervision.py::
        test_a_dependent_of_two_failed_drivers_waits_for_both).
        """
        core = self.core
        return [
            s
            for s in (core.slots[n] for n in core.dependents(root.name))
            if s is root
            or s.restarting
            or (s.state not in (PENDING, DOWN) and s.outcome is None)
        ]

    def _announce(
        self, root: Slot, members: list[Slot], delay: float, failure: Failure
    ) -> None:
        journal = self.core.journal
        for member in members:
            member.restarting = True
            journal.changed(member, f"restarting: {root.label()} failed")
        backoff = root.backoff
        assert backoff is not None
        k = len(backoff.failures)
        others = len(members) - 1
        detail = (
            f"restart {k} of {backoff.policy.max_restarts} in {delay:g}s"
            + (f", with {others} driver(s) that require it" if others else "")
            + f": {failure.describe()}"
        )
        journal.transition(root, detail, None, logging.WARNING)
        journal.emit("restart", root, delay, detail, keep=True)

    async def _work(self) -> None:
        core = self.core
        current: _Restart | None = None
        scope = self._scope
        assert scope is not None
        try:
            with scope:
                while self.queue and not core.failed:
                    current = self.queue.popleft()
                    await self._transaction(current)
                    current = None
        finally:
            self._scope = None
            # abandoned (the run stops): nothing restarts any more
            for job in ([current] if current else []) + list(self.queue):
                self._abandoned(job)
            self.queue.clear()
            self.busy = False
            if core.state == "running":
                core.journal.state("running")
            if self._done is not None:
                self._done.set()

    async def abandon(self) -> None:
        """The run stops: end the restart under way, wait until it has."""
        if self._scope is not None:
            self._scope.cancel()
        if self.busy and self._done is not None:
            await self._done.wait()

    async def _transaction(self, job: _Restart) -> None:
        core = self.core
        while True:
            for member in job.members:  # an earlier restart may have started one
                if not member.restarting:
                    member.restarting = True
                    core.journal.changed(member)
            core.reloads.cancel()  # no reload runs while its driver stops
            await core.reloads.wait()
            await core.schedule.stop(self._to_stop(job))
            await anyio.sleep(job.delay)
            start = await self._attempt(job)
            if not start.aborted:
                self._started(job)
                return
            # the restart's start failed: stop what started, count one more failure
            await core.schedule.stop(self._to_stop(job))
            if not self._again(job, start):
                return

    def _to_stop(self, job: _Restart) -> list[Slot]:
        """What must be down before ``job.root`` is: its members, and any dependent
        still up, failed or not (a contained one may still be stopping,
        tests/test_properties_supervision.py)."""
        core = self.core
        held = {id(m) for m in job.members}
        return [
            s
            for s in (core.slots[n] for n in core.dependents(job.root.name))
            if id(s) in held or s.state not in (PENDING, DOWN)
        ]

    async def _attempt(self, job: _Restart) -> Start:
        """Arm the members for a new life and start them, as one transaction."""
        core = self.core
        # a member that a later restart holds too waits for that one: what
        # it requires is failed, and will be down (tests/test_supervision.py::
        # test_a_dependent_of_two_failed_drivers_waits_for_both)
        later = {id(s) for queued in self.queue for s in queued.members}
        job.armed = [m for m in job.members if id(m) not in later]
        for member in job.armed:
            member.arm()
            member.restarts += 1
            member.restarting = True
        start = core.schedule.start(job.armed, restart=True)
        try:
            await start.run()
        except BaseException:
            start.abort(reason="cancelled: the run is stopping")
            with core.backend.scope(shield=True):
                await start.finish()
            self._unbegun(job, "cancelled: the run stopped before it restarted")
            raise
        return start

    def _started(self, job: _Restart) -> None:
        """The restart's start went through: what it held is free again."""
        core = self.core
        for member in job.armed:
            if member.restarting:  # blocked by a requirement: a start may not say
                member.restarting = False
                core.journal.changed(member)
        self._unbegun(job, None)  # blocked, so not restarted
        root = job.root
        if root.up:
            log.info(
                "%s is up again (restart %d)",
                root.label(),
                root.restarts,
                extra={"tiered_driver": root.name, "tiered_tier": root.tier},
            )

    def _again(self, job: _Restart, start: Start) -> bool:
        """The restart's start failed: whether to try again, after a longer delay."""
        core = self.core
        if core.interrupt is not None:
            # a hook raised an interrupt (KeyboardInterrupt, an application's
            # BaseException): it stops the run, as in any start; retrying
            # would only delay it (tests/test_supervision.py::
            # test_an_interrupt_in_a_restart_stops_the_run_at_once)
            self._unbegun(job, "cancelled: the run stopped before it restarted")
            for member in job.members:
                member.restarting = False
                core.journal.changed(member)
            core.stop_run(None)
            return False
        failure = start.failures[0] if start.failures else job.failure
        if start.failures:  # an incident of the report, as the first failure was
            core.journal.emit(
                "failure",
                core.slots[failure.driver],
                failure.phase,
                failure.describe(),
                keep=True,
            )
        backoff = job.root.backoff
        assert backoff is not None
        delay = backoff.failed(core.clock())
        if delay is None:
            self._give_up(job.root, job.members, failure, job)
            return False
        self._unbegun(job, None)
        job.delay, job.failure = delay, failure
        self._announce(job.root, job.members, delay, failure)
        return True

    def _abandoned(self, job: _Restart) -> None:
        """The run stops before ``job`` is done: say what each member is now.

        The failed driver, not started again, is failed (whether it was still
        up, stopping or down); a member whose new life never began is
        cancelled, not pending (``_unbegun``).
        """
        self._unbegun(job, "cancelled: the run stopped before it restarted")
        for member in job.members:
            if not member.restarting:
                continue
            member.restarting = False
            if (
                member is job.root
                and member.outcome is None
                and member.state in (UP, STOPPING, DOWN)
            ):
                member.record_failure(job.failure)
            self.core.journal.changed(member)

    def _unbegun(self, job: _Restart, reason: str | None) -> None:
        """After an attempt: a member armed for it whose life never began.

        Its restart did not happen, so it is not counted; with a ``reason``
        (no attempt follows) it is cancelled rather than left pending.
        """
        for member in job.armed:
            if member.init_at is None:
                member.restarts -= 1
                if reason is not None and member.outcome is None:
                    member.outcome = "cancelled"
                    member.reason = reason
        job.armed = []

    def _give_up(
        self,
        root: Slot,
        members: list[Slot],
        failure: Failure,
        job: _Restart | None = None,
    ) -> None:
        """Too many failures within the window: the run stops as without ``restart``.

        ``job`` is the restart whose start failed, if that was the last failure.
        """
        core = self.core
        backoff = root.backoff
        assert backoff is not None
        policy = backoff.policy
        limit = f"after {policy.max_restarts} restart(s) within {policy.window:g}s"
        what = f"gave up restarting {root.label()} {limit}"
        try:
            failure.error.add_note(f"tiered {what}")
        except Exception:
            pass
        # the journal names the driver first: "b (tier 1) gave up restarting after ..."
        core.journal.transition(
            root,
            f"gave up restarting {limit}: {describe(failure.error)}",
            None,
            logging.ERROR,
        )
        if job is not None:
            self._unbegun(job, f"cancelled: tiered {what}")
        for member in members:
            member.restarting = False
        if all(core.slots[n].d.optional for n in core.dependents(root.name)):
            core.policy.contain(root, failure)  # which records the failure
        else:
            root.record_failure(failure)
            core.gave_up = what
            core.stop_run(failure)
        # after stop_run: a listener of "gave-up" sees the run not live
        core.journal.emit("gave-up", root, policy.max_restarts, what, keep=True)
        for member in members:
            core.journal.changed(member)
