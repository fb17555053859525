"""The ``"dependencies"`` schedule: each driver as soon as what it needs is up.

No barrier between tiers.  A driver begins ``initialize`` once every driver
in its ``requires`` and ``after`` is up (has finished ``initialize`` and
``autostart``; for ``after``, or has failed being optional, or was
skipped); its ``autostart`` follows its own ``initialize`` at once.  This
is what systemd, Erlang/OTP's ``ensure_all_started(..., concurrent)`` and
Spring's background bootstrap do: start-up takes the longest chain of
requirements, not the sum of each tier's slowest driver.

Stop is the mirror image: a driver stops once every driver that requires
it or is after it has stopped; drivers not ordered that way stop
concurrently.  Everything else is the tiers schedule's: transactional
start, timeouts counted from when a driver begins, optional drivers, Skip.

Cost: one counter per driver and one list of waiters per required driver,
built per start; a driver that comes up wakes its waiters in O(waiters).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._schedule import Schedule, Start, Stop

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from ._backend import Batch
    from ._core import Core
    from ._slot import Slot

__all__ = ["DependencySchedule"]


class DependencyStart(Start):
    """A start in which each driver waits only for what it needs."""

    def __init__(self, core: Core, slots: Sequence[Slot], *, restart: bool) -> None:
        super().__init__(core, slots, restart=restart)
        self.waits: dict[str, int] = {}
        self.waiters: dict[str, list[Slot]] = {}
        waits, waiters = self.waits, self.waiters
        whole = len(slots) == len(core.slots)  # every need is a member
        members = None if whole else {s.name for s in slots}
        for slot in slots:
            needs = slot.d.needs
            if members is not None:
                needs = tuple(n for n in needs if n in members)
            waits[slot.name] = len(needs)
            for name in needs:
                if name in waiters:
                    waiters[name].append(slot)
                else:
                    waiters[name] = [slot]
        self.left = len(slots)  # drivers whose start is not over
        self.begun: set[str] = set()
        # the drivers of a start share one batch (on trio: a nursery and its
        # cancel scope, which an abort cancels), as a tier's do; a restart's
        # drivers each have a scope of their own
        self.batch: Batch | None = None

    async def run(self) -> None:
        if not self.restart:
            self.batch = self.core.host.open_batch()
        try:
            self._begin([s for s in self.slots if not self.waits[s.name]])
            await self.wait_until(lambda: self.left == 0)
        finally:
            self.running = False
            if self.batch is not None:
                self.batch.close()

    async def finish(self) -> None:
        await self.wait_until(lambda: self.left == 0)
        self.running = False
        if self.batch is not None:
            self.batch.close()

    def abort(self, cause: Slot | None = None, reason: str | None = None) -> None:
        if self.aborted:
            return
        super().abort(cause, reason)
        # the drivers that have not begun never will: their start is over
        unbegun = [s for s in self.slots if s.name not in self.begun]
        self.begun.update(s.name for s in unbegun)
        self.left -= len(unbegun)
        if not self.left:
            self.wake()

    def _begin(self, ready: list[Slot], now: float | None = None) -> None:
        """Begin what became ready; what cannot begin is over, which may ready more.

        ``now``: when they became ready (since the run began), if known.
        """
        core = self.core
        if now is None:
            now = core.clock() - core.t0
        begun = self.begun
        todo = ready
        while todo:
            more: list[Slot] = []
            for slot in todo:
                if slot.name in begun:
                    continue
                begun.add(slot.name)
                if self.aborted:
                    continue
                if self.admit(slot, now):
                    core.join(slot, self.batch)
                else:  # blocked by a requirement: skipped, or failed (an abort)
                    more += self._over(slot)
            todo = more
        if not self.left:
            self.wake()

    def _over(self, slot: Slot) -> list[Slot]:
        """``slot``'s start is over: count it; the waiters that are ready now."""
        self.left -= 1
        ready = []
        waits = self.waits
        for waiter in self.waiters.get(slot.name, ()):
            waits[waiter.name] -= 1
            if not waits[waiter.name]:
                ready.append(waiter)
        return ready

    def settled(self, slot: Slot) -> None:
        if self.restart:
            self.restarted(slot)
        ready = self._over(slot)
        if ready:
            # they became ready now: this one's start may be over well after
            # its hook ended (a failed initialize waits for its background
            # tasks), and the needs are over in the order they settle
            self._begin(ready)
        elif not self.left:
            self.wake()


class _DagStop(Stop):
    """Stops each driver once every driver that needs it has stopped."""

    def __init__(self, core: Core) -> None:
        super().__init__(core)
        self.blockers: dict[str, int] = {}
        self.members: dict[str, Slot] = {}

    def ended(self, slot: Slot) -> None:
        blockers = self.blockers
        for name in slot.d.needs:
            if name in blockers:
                blockers[name] -= 1
                if not blockers[name]:
                    self.release(self.members[name])
        super().ended(slot)


class DependencySchedule(Schedule):
    """Each driver as soon as what it requires and is after is up."""

    name = "dependencies"

    def start(self, slots: Sequence[Slot], *, restart: bool = False) -> Start:
        return DependencyStart(self.core, slots, restart=restart)

    async def stop(self, slots: Iterable[Slot]) -> None:
        stop = _DagStop(self.core)
        taken = [s for s in slots if stop.take(s)]
        stop.members = {s.name: s for s in taken}
        blockers = stop.blockers = dict.fromkeys(stop.members, 0)
        for slot in taken:
            for name in slot.d.needs:
                if name in blockers:
                    blockers[name] += 1
        for slot in taken:
            if not blockers[slot.name]:
                stop.release(slot)
        await stop.wait()
