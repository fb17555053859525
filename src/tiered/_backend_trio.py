"""The trio side of ``_backend``: nurseries per batch, trio's parking, one alarm task.

Imported only when trio runs (``current_backend``); tiered never imports
trio itself: the running module is handed in.
"""

from __future__ import annotations

import functools
import math
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from ._backend import Alarm, Backend, Batch, Host, apply_ki_marks, internal

if TYPE_CHECKING:
    import contextvars
    from collections.abc import AsyncIterator, Awaitable, Callable

    from ._backend import Parked

__all__ = ["TrioBackend"]


class TrioBackend(Backend):
    __slots__ = ("trio",)
    name = "trio"

    def __init__(self, trio: Any) -> None:
        lowlevel = trio.lowlevel
        clock = lowlevel.current_clock()
        # the run's clock itself: trio.current_time() finds the runner in a
        # thread-local and asks this same clock, and a run asks it several
        # times per driver
        super().__init__(
            clock.current_time, trio.CancelScope, trio.Event, trio.Cancelled
        )
        self.trio = trio
        self.clock_name = type(clock).__name__
        self.virtual_clock = self.clock_name != "SystemClock"
        apply_ki_marks(lowlevel)

    def park(self, slot: Parked) -> Awaitable[object]:
        lowlevel = self.trio.lowlevel
        slot.parked = lowlevel.current_task()
        return lowlevel.wait_task_rescheduled(  # type: ignore[no-any-return]
            functools.partial(_abort_park, slot, lowlevel.Abort.SUCCEEDED)
        )

    def unpark(self, slot: Parked) -> None:
        task = slot.parked
        if task is not None:
            slot.parked = None
            self.trio.lowlevel.reschedule(task)

    @asynccontextmanager
    async def host(self, context: contextvars.Context) -> AsyncIterator[Host]:
        async with self.trio.open_nursery() as nursery:
            host = _TrioHost(self, context, nursery)
            try:
                yield host
            finally:
                host.close()


def _abort_park(slot: Parked, succeeded: object, _: object) -> object:
    slot.parked = None
    return succeeded


class _TrioHost(Host):
    """Lifetimes in trio nurseries: a tier's drivers share one, and its cancel scope.

    anyio's task groups give every task a handle, a scope and an event of
    its own, which a lifetime does not use and every garbage collection
    walks; a trio nursery per batch gives the run one cancel scope for the
    whole tier instead of one more per driver.
    """

    def __init__(
        self, backend: TrioBackend, context: contextvars.Context, nursery: Any
    ) -> None:
        super().__init__(backend, context)
        self.nursery = nursery
        self._alarms: list[_TrioAlarm] = []

    def spawn(self, lifetime: Callable[[Any], Awaitable[None]], slot: Any) -> None:
        self.alive += 1
        self.context.copy().run(self.nursery.start_soon, lifetime, slot, name=slot.name)

    def spawn_batch(
        self, lifetime: Callable[[Any], Awaitable[None]], slots: list[Any]
    ) -> Batch | None:
        self.alive += len(slots)
        batch = Batch()
        self.context.copy().run(
            self.nursery.start_soon,
            self._batch,
            lifetime,
            slots,
            batch,
            name="tiered batch",
        )
        return batch

    @internal
    async def _batch(
        self, lifetime: Callable[[Any], Awaitable[None]], slots: list[Any], batch: Batch
    ) -> None:
        async with self.backend.trio.open_nursery() as nursery:  # type: ignore[attr-defined]
            batch.scope = nursery.cancel_scope
            if batch.cancelled:
                nursery.cancel_scope.cancel()
            for slot in slots:
                nursery.start_soon(lifetime, slot, name=slot.name)

    def open_batch(self) -> Batch | None:
        batch = Batch()
        batch.closed = self.backend.event()
        self.context.copy().run(
            self.nursery.start_soon, self._open_batch, batch, name="tiered batch"
        )
        return batch

    @internal
    async def _open_batch(self, batch: Batch) -> None:
        async with self.backend.trio.open_nursery() as nursery:  # type: ignore[attr-defined]
            batch.scope = nursery.cancel_scope
            batch.nursery = nursery
            if batch.cancelled:
                nursery.cancel_scope.cancel()
            pending, batch.pending = batch.pending or [], None
            for lifetime, slot in pending:
                nursery.start_soon(lifetime, slot, name=slot.name)
            assert batch.closed is not None
            # open for the drivers that become ready later; an abort cancels
            # this wait with the rest of the batch, and nothing joins after
            await batch.closed.wait()

    def join_batch(
        self, batch: Batch | None, lifetime: Callable[[Any], Awaitable[None]], slot: Any
    ) -> None:
        if batch is None:
            self.spawn(lifetime, slot)
            return
        self.alive += 1
        if batch.pending is not None:  # its nursery is not open yet
            batch.pending.append((lifetime, slot))
        else:
            self.context.copy().run(
                batch.nursery.start_soon, lifetime, slot, name=slot.name
            )

    def alarm(self, callback: Callable[[float], None]) -> Alarm:
        alarm = _TrioAlarm(callback, self.backend)  # type: ignore[arg-type]
        self._alarms.append(alarm)
        self.nursery.start_soon(alarm.run, name="tiered deadlines")
        return alarm

    def close(self) -> None:
        for alarm in self._alarms:
            alarm.close()


class _TrioAlarm(Alarm):
    """One task that sleeps until the earliest deadline; moving it wakes the task."""

    __slots__ = ("_backend", "_closed", "_scope")

    def __init__(self, callback: Callable[[float], None], backend: TrioBackend) -> None:
        super().__init__(callback)
        self._backend = backend
        self._scope: Any = None
        self._closed = False

    def set(self, when: float) -> None:
        self.when = when
        if self._scope is not None:
            self._scope.deadline = when

    def close(self) -> None:
        self._closed = True
        if self._scope is not None:
            self._scope.cancel()

    def closed(self) -> bool:
        # a method: the awaits in between change it
        return self._closed

    @internal
    async def run(self) -> None:
        trio = self._backend.trio
        # shielded: a run cancelled from outside still rolls back under its
        # deadlines; the host closes the alarm when the run is over
        with trio.CancelScope(shield=True):
            while not self.closed():
                with trio.CancelScope(deadline=self.when) as scope:
                    self._scope = scope
                    await trio.sleep_forever()
                self._scope = None
                if self.closed():
                    return
                now = trio.current_time()
                if now >= self.when:
                    self.when = math.inf
                    self._callback(now)
