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
  budget.

Transactions run one at a time, in a task of the run; a stop of the run
abandons the one under way and every driver that is up is then stopped
exactly once by the shutdown.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import TYPE_CHECKING

import anyio

from ._exceptions import describe
from ._restart import Backoff
from ._slot import DOWN, PENDING

if TYPE_CHECKING:
    from ._backend import Scope, Waitable
    from ._core import Core
    from ._exceptions import Failure
    from ._slot import Slot

__all__ = ["Supervisor"]

log = logging.getLogger("tiered")


class _Restart:
    __slots__ = ("delay", "failure", "members", "root")

    def __init__(
        self, root: Slot, members: list[Slot], delay: float, failure: Failure
    ) -> None:
        self.root = root
        self.members = members
        self.delay = delay
        self.failure = failure


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
        self._announce(slot, members, delay, failure)
        self.queue.append(_Restart(slot, members, delay, failure))
        if not self.busy:
            self.busy = True
            self._done = core.backend.event()
            core.journal.state("restarting")
            assert core.tg is not None
            core.tg.start_soon(self._work, name="tiered supervisor")

    def _members(self, root: Slot) -> list[Slot]:
        """The subtree that restarts: ``root`` and its dependents that took part."""
        core = self.core
        return [
            s
            for s in (core.slots[n] for n in core.dependents(root.name))
            if s is root or (s.state not in (PENDING, DOWN) and s.outcome is None)
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
        try:
            with core.backend.scope() as self._scope:
                while self.queue:
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
        members = job.members
        while True:
            core.reloads.cancel()  # no reload runs while its driver stops
            await core.reloads.wait()
            await core.schedule.stop(members)
            await anyio.sleep(job.delay)
            for member in members:
                member.arm()
                member.restarts += 1
                member.restarting = True
            start = core.schedule.start(members, restart=True)
            try:
                await start.run()
            except BaseException:
                start.abort(reason="cancelled: the run is stopping")
                with core.backend.scope(shield=True):
                    await start.finish()
                raise
            if not start.aborted:
                log.info(
                    "%s is up again (restart %d)",
                    job.root.label(),
                    job.root.restarts,
                    extra={
                        "tiered_driver": job.root.name,
                        "tiered_tier": job.root.tier,
                    },
                )
                return
            # the restart's start failed: stop what started, count one more failure
            await core.schedule.stop(members)
            failure = start.failures[0] if start.failures else job.failure
            backoff = job.root.backoff
            assert backoff is not None
            delay = backoff.failed(core.clock())
            if delay is None:
                self._give_up(job.root, members, failure)
                return
            job.delay, job.failure = delay, failure
            self._announce(job.root, members, delay, failure)

    def _abandoned(self, job: _Restart) -> None:
        for member in job.members:
            if member.restarting:
                member.restarting = False
                if (
                    member is job.root
                    and member.state == DOWN
                    and member.outcome is None
                ):
                    member.outcome = "failed"
                    member.error = job.failure.error
                self.core.journal.changed(member)

    def _give_up(self, root: Slot, members: list[Slot], failure: Failure) -> None:
        """Too many failures within the window: the run stops as without ``restart``."""
        core = self.core
        backoff = root.backoff
        assert backoff is not None
        policy = backoff.policy
        what = (
            f"gave up restarting {root.label()} after {policy.max_restarts} "
            f"restart(s) within {policy.window:g}s"
        )
        try:
            failure.error.add_note(f"tiered {what}")
        except Exception:
            pass
        core.journal.transition(
            root, f"{what}: {describe(failure.error)}", None, logging.ERROR
        )
        core.journal.emit("gave-up", root, policy.max_restarts, what, keep=True)
        for member in members:
            member.restarting = False
        root.outcome = "failed"
        root.error = failure.error
        if all(core.slots[n].d.optional for n in core.dependents(root.name)):
            core.policy.contain(root, failure)
        else:
            core.gave_up = root
            core.stop_run(failure)
