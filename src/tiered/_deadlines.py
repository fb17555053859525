"""One mechanism for every deadline of a run: a heap and one alarm.

A driver's start, its stop, the wait for its background tasks, a reload and
the whole shutdown are each bounded.  A timer per driver (a cancel scope
with a deadline) costs a heap entry on trio and a timer handle on asyncio for
each of them, which ten thousand drivers feel; a heap ordered by time with
one alarm for its earliest entry costs one tuple per timed phase, and works
whether or not anybody is waiting (tests/test_timeouts.py).

A target (a driver's slot, the shutdown budget) keeps its own current
``deadline`` and a ``token`` naming its entry.  Moving a deadline later
(``ctx.extend_timeout()``) only changes the target; the alarm finds out when
it rings and files the entry again.  Clearing it only forgets the token:
stale entries are skipped when they come up, and the heap is rebuilt when
they outnumber the live ones, so it never holds more than a few times the
phases under way.

Most deadlines are cleared long before they come: a hook returns well within
its timeout.  So a new deadline is not filed in the heap at once: the target
joins a plain list of recent ones, and the alarm is moved to it if it is the
earliest.  When the alarm rings, the recent targets still timed are filed in
the heap first, then the heap is read as before.  A phase that ends in time
costs an append and a few stores, no tuple and no heap operation (at 10,000
drivers, a start and a stop deadline each: docs/benchmarks.md).
"""

from __future__ import annotations

import heapq
import logging
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the protocol is for type checkers only: a class costs start-up
    from typing import Protocol

    from ._backend import Alarm

    class Timed(Protocol):
        """What can be given a deadline: it says what expiring means for it."""

        deadline: float
        token: int

        def expire(self, now: float) -> None:
            """The deadline has come (called from the alarm: must not block)."""


__all__ = ["Deadlines"]

log = logging.getLogger("tiered")


class Deadlines:
    """Deadlines of one run, rung by one alarm."""

    __slots__ = ("_alarm", "_heap", "_live", "_recent", "_seq", "_stale")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Timed]] = []
        # timed since the alarm last rang, not filed in the heap yet
        self._recent: list[Timed] = []
        self._seq = 0
        self._live = 0
        self._stale = 0
        self._alarm: Alarm | None = None

    def attach(self, alarm: Alarm) -> None:
        """Ring ``alarm`` (from the backend's host) for the earliest deadline."""
        self._alarm = alarm
        earliest = self._heap[0][0] if self._heap else math.inf
        for target in self._recent:
            if target.token and target.deadline < earliest:
                earliest = target.deadline
        alarm.set(earliest)

    def set(self, target: Timed, when: float) -> None:
        """Give ``target`` the deadline ``when``, earlier or later than before."""
        if when == math.inf:
            self.clear(target)
            return
        target.deadline = when
        if target.token:
            self._stale += 1  # its old entry, if it was filed
        else:
            self._live += 1
        self._seq += 1
        target.token = self._seq
        self._recent.append(target)
        alarm = self._alarm
        if alarm is not None and when < alarm.when:
            alarm.set(when)

    def extend(self, target: Timed, when: float) -> bool:
        """Move a running deadline later (never earlier); whether there was one."""
        if not target.token:
            return False
        if when > target.deadline:
            target.deadline = when
        return True

    def clear(self, target: Timed) -> None:
        """``target`` has no deadline any more."""
        target.deadline = math.inf
        if target.token:
            target.token = 0
            self._live -= 1
            self._stale += 1
            if self._stale > 64 and self._stale > 3 * self._live:
                self._compact()

    @property
    def kept(self) -> int:
        """How many entries are kept, live or stale (bounded: tests/test_deadlines.py)."""
        return len(self._heap) + len(self._recent)

    def _compact(self) -> None:
        self._heap = [e for e in self._heap if e[1] == e[2].token]
        heapq.heapify(self._heap)
        self._recent = [t for t in self._recent if t.token]
        self._stale = 0

    def _file_recent(self) -> None:
        """File the recent targets still timed in the heap, each once."""
        recent, self._recent = self._recent, []
        heap = self._heap
        filed: set[int] = set()
        for target in recent:
            token = target.token
            if token and token not in filed:
                filed.add(token)
                heapq.heappush(heap, (target.deadline, token, target))

    def ring(self, now: float) -> None:
        """Expire every deadline that has come; set the alarm for the next."""
        self._expire(now)
        while self._recent:  # an expiry set deadlines (a cut sets them to now)
            self._expire(now)
        if self._alarm is not None:
            heap = self._heap
            self._alarm.set(heap[0][0] if heap else math.inf)

    def _expire(self, now: float) -> None:
        if self._recent:
            self._file_recent()
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, token, target = heapq.heappop(heap)
            if token != target.token:
                self._stale -= 1
                continue  # cleared, or filed again since
            if target.deadline > now:  # extended: file it again
                self._seq += 1
                target.token = self._seq
                heapq.heappush(heap, (target.deadline, self._seq, target))
                continue
            target.token = 0
            target.deadline = math.inf
            self._live -= 1
            try:
                target.expire(now)
            except Exception:  # a bug of ours: keep every other deadline alive
                log.exception("tiered: expiring the deadline of %r failed", target)
