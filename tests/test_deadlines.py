"""The heap of deadlines on its own: order, clearing, extending, and bounded memory.

The runs' own tests (tests/test_timeouts.py) pin what a deadline means for a
driver; these pin the mechanism with a fake alarm and fake targets, where
every case is exact: a deadline set and cleared between two rings costs no
heap entry, and however many are set and cleared without a ring, what the
mechanism keeps stays bounded by the deadlines still running.
"""

from __future__ import annotations

import math

from tiered._backend import Alarm
from tiered._deadlines import Deadlines


class Target:
    def __init__(self, name: str, log: list[tuple[str, float]]) -> None:
        self.name = name
        self.deadline = math.inf
        self.token = 0
        self.log = log

    def expire(self, now: float) -> None:
        self.log.append((self.name, now))


class FakeAlarm(Alarm):
    def __init__(self) -> None:
        super().__init__(lambda now: None)
        self.armed: list[float] = []

    def set(self, when: float) -> None:
        self.when = when
        self.armed.append(when)


def _deadlines() -> tuple[Deadlines, FakeAlarm, list[tuple[str, float]]]:
    deadlines, alarm = Deadlines(), FakeAlarm()
    deadlines.attach(alarm)
    return deadlines, alarm, []


def test_deadlines_expire_in_order_and_the_alarm_follows_the_earliest() -> None:
    deadlines, alarm, log = _deadlines()
    a, b, c = (Target(n, log) for n in "abc")
    deadlines.set(b, 2.0)
    deadlines.set(a, 1.0)
    deadlines.set(c, 3.0)
    assert alarm.when == 1.0
    deadlines.ring(2.5)
    assert log == [("a", 2.5), ("b", 2.5)]
    assert alarm.when == 3.0
    deadlines.ring(3.0)
    assert log[-1] == ("c", 3.0)
    assert alarm.when == math.inf


def test_a_cleared_deadline_never_expires_and_an_extended_one_later() -> None:
    deadlines, alarm, log = _deadlines()
    a, b = Target("a", log), Target("b", log)
    deadlines.set(a, 1.0)
    deadlines.set(b, 1.0)
    deadlines.clear(a)
    assert deadlines.extend(b, 5.0)
    assert not deadlines.extend(a, 5.0)  # it has none
    deadlines.ring(1.0)
    assert log == []
    assert alarm.when == 5.0
    deadlines.ring(5.0)
    assert log == [("b", 5.0)]


def test_a_deadline_set_while_expiring_is_kept() -> None:
    """An expiry that sets deadlines (a cut sets every stop's to now) rings them too.

    The alarm used to be set for the heap alone after a ring, missing the
    deadlines an expiry had just set: a cut shutdown waited for the stops'
    own timeouts (tests/test_timeouts.py, the shutdown budget).
    """
    deadlines, alarm, log = _deadlines()
    stop = Target("stop", log)
    later = Target("later", log)

    class Budget(Target):
        def expire(self, now: float) -> None:
            super().expire(now)
            deadlines.set(stop, now)
            deadlines.set(later, now + 1.0)

    budget = Budget("budget", log)
    deadlines.set(stop, 60.0)
    deadlines.set(budget, 5.0)
    deadlines.ring(5.0)
    assert log == [("budget", 5.0), ("stop", 5.0)]
    assert alarm.when == 6.0


def test_setting_and_clearing_without_a_ring_keeps_little() -> None:
    """A long life of phases that end in time: what is kept stays bounded."""
    deadlines, _, log = _deadlines()
    running = [Target(f"r{i}", log) for i in range(10)]
    for i, target in enumerate(running):
        deadlines.set(target, 1000.0 + i)
    churn = Target("churn", log)
    for n in range(100_000):
        deadlines.set(churn, float(n))
        deadlines.clear(churn)
    assert deadlines.kept < 200, deadlines.kept
    deadlines.ring(1000.0)
    assert log == [("r0", 1000.0)]
