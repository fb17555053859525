"""Schedules: when each driver may begin, and when it may stop.

A schedule opens the gates of drivers and nothing else: it spawns a
driver's lifetime when the driver may begin, tells it when it may
autostart, and wakes it when it may stop.  Two schedules exist:

* ``"tiers"`` (here, the default): tier k+1 begins when every driver of
  tiers 0..k has finished ``initialize`` and ``autostart``, and within a
  tier ``autostart`` waits for every ``initialize`` (the barrier); stop runs
  tier by tier in reverse;
* ``"dependencies"`` (``_dependencies``): a driver begins as soon as what it
  requires and is ``after`` is up; it stops once every driver that requires
  it or is after it has stopped.

Both are used the same way, for the run's start-up and shutdown and for a
restart's subtree (``_supervisor``): :meth:`Schedule.start` makes a
:class:`Start`, a transaction over some drivers that its lifetimes talk to
(their *gate*), and :meth:`Schedule.stop` stops some drivers in order.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ._exceptions import DependencyError
from ._slot import DOWN, PENDING

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from ._backend import Waitable
    from ._core import Core
    from ._exceptions import Failure
    from ._slot import Slot

__all__ = ["Schedule", "Start", "Stop", "TierRecordData", "TierSchedule"]


class TierRecordData:
    """A tier as a start saw it: its drivers, when it began and passed its barrier."""

    __slots__ = ("end", "index", "names", "start")

    def __init__(self, index: int, names: tuple[str, ...], start: float) -> None:
        self.index = index
        self.names = names
        self.start = start
        self.end: float | None = None


class Start:
    """One start transaction over some drivers: a run's start-up, or a restart's.

    Transactional: a required failure :meth:`abort`\\ s it, which cancels the
    drivers still starting; the caller then rolls back what started.
    """

    def __init__(self, core: Core, slots: Sequence[Slot], *, restart: bool) -> None:
        self.core = core
        self.slots = slots
        self.restart = restart
        self.running = True
        self.aborted = False
        self.cause: Slot | None = None
        self.cancel_reason = "cancelled: the start was abandoned"
        self.failures: list[Failure] = []
        self._wake: Waitable | None = None
        for slot in slots:
            slot.job = self

    # -- what the caller does ------------------------------------------------------

    async def run(self) -> None:
        """Start every driver the schedule lets begin; return when all settled."""
        raise NotImplementedError  # pragma: no cover - overridden

    async def finish(self) -> None:
        """After an abort: wait until every driver that began has settled."""
        raise NotImplementedError  # pragma: no cover - overridden

    def abort(self, cause: Slot | None = None, reason: str | None = None) -> None:
        """Give up: cancel every driver still starting, begin no other."""
        if self.aborted:
            return
        self.aborted = True
        self.cause = cause
        if reason is not None:
            self.cancel_reason = reason
        elif cause is not None:
            self.cancel_reason = f"cancelled: {cause.label()} failed"
        self.cancel_starting()
        self.wake()

    def gave_up(self) -> bool:
        """Whether it was aborted (a method: the awaits in between change it)."""
        return self.aborted

    def failed(self, failure: Failure) -> None:
        """A required driver of this start failed: record it and abort."""
        self.failures.append(failure)
        self.abort(cause=self.core.slots[failure.driver])

    def cancel_starting(self) -> None:
        """Cancel the drivers of this start that are still starting."""
        for slot in self.slots:
            if not slot.settled and slot.state != PENDING:
                if slot.scope is not None:
                    slot.scope.cancel()
                if slot.batch is not None:
                    slot.batch.cancel()

    async def wait_until(self, done: object) -> None:
        """Wait until ``done()`` is true; the gate calls wake the waiter."""
        check = done  # a callable; typed loosely to keep this hot path plain
        while not check():  # type: ignore[operator]
            self._wake = self.core.backend.event()
            if check():  # type: ignore[operator]
                break
            await self._wake.wait()

    def wake(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def admit(self, slot: Slot, now: float) -> bool:
        """Whether ``slot`` may begin (at ``now``, since the run began).

        Not if a driver it requires did not start: then it is skipped if
        optional, and fails this start if required.
        """
        requires = slot.d.requires
        if requires:
            slots = self.core.slots
            for name in requires:
                dep = slots[name]
                if not dep.up and (dep.outcome is not None or dep.state == DOWN):
                    self._blocked(slot, dep)
                    return False
        slot.eligible_at = now
        return True

    def _blocked(self, slot: Slot, dep: Slot) -> None:
        core = self.core
        how = dep.status
        why = dep.describe_outcome()
        slot.settled = True
        if slot.d.optional:
            slot.outcome = "skipped"
            slot.reason = f"requires {dep.name!r} (tier {dep.tier}), which {how}: {why}"
            core.journal.transition(
                slot, "skipped: " + slot.reason, None, logging.WARNING
            )
            return
        msg = (
            f"{slot.label()} cannot start: it requires {dep.name} (tier "
            f"{dep.tier}), which {how} ({why}); make {slot.name!r} optional=True "
            f"to run without it, or fix {dep.name!r}"
        )
        core.policy.start_failed(slot, "initialize", DependencyError(msg))

    # -- the gate: what lifetimes call ---------------------------------------------------

    def initialized(self, slot: Slot) -> None:
        """``slot`` finished initialize."""
        slot.arrived = True

    async def autostart_gate(self, slot: Slot) -> bool:
        """Wait until ``slot`` may autostart; whether it still should."""
        return not self.aborted

    def settled(self, slot: Slot) -> None:
        """The start of ``slot`` is over: it is up, or it cannot be."""
        if self.restart:
            self.restarted(slot)

    def restarted(self, slot: Slot) -> None:
        """In a restart's start: the driver's start is over."""
        if not self.aborted:
            # restarted (or failed, being optional: the start goes on without
            # it): no longer restarting; after an abort the supervisor marks
            # them all again for its next attempt
            slot.restarting = False
            self.core.journal.changed(slot)

    def ended(self, slot: Slot) -> None:
        """The lifetime of ``slot`` is over."""
        stopper = slot.stopper
        if stopper is not None:
            slot.stopper = None
            stopper.ended(slot)


class Stop:
    """Stops some drivers in the order a schedule gives; waits for them all.

    Two stops may want the same driver: a containment's, in a task of the
    run, and the shutdown's, which takes over every driver still up.  The
    later one keeps the earlier in ``_before`` and hands it the driver's end,
    so neither waits forever (tests/test_supervision.py::
    test_a_containment_during_another_stop_never_hangs).
    """

    def __init__(self, core: Core) -> None:
        self.core = core
        self.left = 0
        self._wake: Waitable | None = None
        self._before: dict[str, Stop] | None = None

    def take(self, slot: Slot) -> bool:
        """Count ``slot`` as one this stop waits for; whether it began and is not over."""
        if slot.state in (PENDING, DOWN):
            return False
        before = slot.stopper
        if before is not None and before is not self:
            if self._before is None:
                self._before = {}
            self._before[slot.name] = before
        slot.stopper = self
        self.left += 1
        return True

    def release(self, slot: Slot) -> None:
        """Tell ``slot`` it may stop now (or, still starting, once it settled)."""
        if slot.needs_stop:
            slot.stop_requested = True
            self.core.backend.unpark(slot)
        elif slot.state != DOWN:
            slot.stop_now = True  # still starting: it stops right after

    def ended(self, slot: Slot) -> None:
        self.left -= 1
        if not self.left and self._wake is not None:
            self._wake.set()
        before = self._before.pop(slot.name, None) if self._before else None
        if before is not None:
            before.ended(slot)

    async def wait(self) -> None:
        while self.left:
            self._wake = self.core.backend.event()
            await self._wake.wait()


class Schedule:
    """How drivers are ordered; see the module docstring."""

    name = "schedule"

    def __init__(self, core: Core) -> None:
        self.core = core

    def start(self, slots: Sequence[Slot], *, restart: bool = False) -> Start:
        raise NotImplementedError  # pragma: no cover - overridden

    async def stop(self, slots: Iterable[Slot]) -> None:
        raise NotImplementedError  # pragma: no cover - overridden


# -- tiers ---------------------------------------------------------------------------


class TierStart(Start):
    """Tier by tier, with the barrier."""

    def __init__(self, core: Core, slots: Sequence[Slot], *, restart: bool) -> None:
        super().__init__(core, slots, restart=restart)
        self.init_left = 0
        self.settle_left = 0
        self.gate_open = False
        self.waiting: list[Slot] = []
        self.tier: TierRecordData | None = None

    async def run(self) -> None:
        core = self.core
        try:
            for index, members in _by_tier(self.slots, core):
                if self.aborted:
                    break
                now = core.clock() - core.t0
                names = tuple(s.name for s in members)
                tier = self.tier = TierRecordData(index, names, now)
                if not self.restart:
                    core.tiers.append(tier)
                admitted = [s for s in members if self.admit(s, now)]
                self.gate_open = False
                self.init_left = self.settle_left = len(admitted)
                core.spawn(admitted, batch=not self.restart)
                await self.wait_until(lambda: self.init_left == 0)
                self._open_gate()
                await self.wait_until(lambda: self.settle_left == 0)
                if self.gave_up():
                    break
                tier.end = core.clock() - core.t0
                if not self.restart:
                    core.journal.tier_up(index, tier.end - tier.start, len(members))
        finally:
            self.running = False

    async def finish(self) -> None:
        """After an abort: wait until every driver spawned has settled."""
        self._open_gate()
        await self.wait_until(lambda: self.settle_left == 0)
        self.running = False

    def abort(self, cause: Slot | None = None, reason: str | None = None) -> None:
        super().abort(cause, reason)
        self._open_gate()

    def _open_gate(self) -> None:
        self.gate_open = True
        waiting, self.waiting = self.waiting, []
        unpark = self.core.backend.unpark
        for slot in waiting:
            unpark(slot)

    def initialized(self, slot: Slot) -> None:
        slot.arrived = True
        self.init_left -= 1
        if not self.init_left:
            self.wake()

    async def autostart_gate(self, slot: Slot) -> bool:
        park = self.core.backend.park
        while not self.gate_open:
            self.waiting.append(slot)
            await park(slot)
        return not self.aborted

    def settled(self, slot: Slot) -> None:
        if self.restart:
            self.restarted(slot)
        if not slot.arrived:
            slot.arrived = True
            self.init_left -= 1
        self.settle_left -= 1
        if not self.init_left or not self.settle_left:
            self.wake()


class TierSchedule(Schedule):
    """The barrier between tiers: the seed's design, and the default."""

    name = "tiers"

    def start(self, slots: Sequence[Slot], *, restart: bool = False) -> Start:
        return TierStart(self.core, slots, restart=restart)

    async def stop(self, slots: Iterable[Slot]) -> None:
        """Tier by tier in reverse; the drivers of a tier concurrently."""
        waves = _by_tier(slots, self.core)
        for _, members in reversed(waves):
            stop = Stop(self.core)
            taken = [s for s in members if stop.take(s)]
            for slot in taken:
                stop.release(slot)
            await stop.wait()


def _by_tier(slots: Iterable[Slot], core: Core) -> list[tuple[int, list[Slot]]]:
    """``slots`` grouped by tier, lowest first, in their given order within a tier."""
    if slots is core.order:  # the whole run: grouped once, by the plan
        return core.by_tier
    groups: dict[int, list[Slot]] = {}
    for slot in slots:
        groups.setdefault(slot.tier, []).append(slot)
    return sorted(groups.items())
