"""Soak: thousands of start/stop cycles of one 50-driver runtime, nothing grows.

One ``tiered.Runtime`` of 50 drivers (five tiers of ten: generators and
``Driver`` subclasses, requirements on lower tiers, background tasks,
``autostart``, ``ctx.status``, an optional driver that skips itself, one that
holds a pipe from ``initialize`` to ``stop``) runs cycle after cycle in one
event loop.  The cycles go through every path of a run: most start and stop
cleanly, some reload, some fail in start-up (a ``StartupError`` and a
rollback), some fail in ``stop`` (a ``ShutdownError``), some are cancelled
from outside while they start.  Every cycle checks that each driver that
initialized was stopped exactly once.

After a warm-up, at eleven points, ``tracemalloc`` measures the memory
Python has allocated, ``/proc/self/fd`` counts the open file descriptors and
the garbage collector counts tiered's live ``Run``, ``Context``, ``Report``
and ``DriverRecord`` objects.  At the end the descriptors and the objects
must be as many as after the warm-up, and the memory may have grown by no
more than ``MEMORY_SLACK``: a leak of a kilobyte per cycle exceeds it in the
300 cycles of ``make test``, a leak of one small object (25 bytes or more)
per cycle in the 10,000 cycles of ``make soak``.

tiered's log records are formatted (so logging's code paths run) and then
dropped: pytest keeps every record a test logs, which would look like a leak.
"""

from __future__ import annotations

import gc
import os
import tracemalloc
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import pytest

import tiered
from support.backends import BACKENDS, Backend
from support.sizes import SOAK, size
from support.soak import kib, open_fds, quiet_tiered_logs, run_on, tracing

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

pytestmark = pytest.mark.skipif(
    not os.path.isdir("/proc/self/fd"), reason="counts file descriptors in /proc"
)


CYCLES = size(300, 10_000)
WARMUP = size(60, 500)
TIERS = 5
PER_TIER = 10
#: Growth of traced memory allowed, from the lowest of the first three samples
#: to the lowest of the last three.  Not zero: set tables resize, and trio
#: keeps up to a thousand expired deadlines of cancel scopes in a heap it
#: prunes now and then, which moves the total by up to 200 KiB, up and down;
#: the lowest of three samples sees through most of that.  A leak of 1 KiB
#: per cycle exceeds it in ``make test``, one of 25 bytes in ``make soak``;
#: tiered's own objects are counted exactly.
MEMORY_SLACK = 128 * 1024

# what a cycle does, by its number
RELOAD_EVERY = 5  # cycle % 5 == 0: reload once while running
FAIL_START = 3  # cycle % 10 == 3: a required driver fails initialize
FAIL_STOP = 5  # cycle % 10 == 5: a driver's stop raises
CANCEL = 7  # cycle % 10 == 7: cancelled from outside during tier 2


class Boom(Exception):
    """What the failing driver raises."""


@dataclass
class Cycle:
    """What one cycle asks of the drivers, and what they did."""

    number: int = 0
    scope: anyio.CancelScope | None = None
    initialized: set[str] = field(default_factory=set)
    stopped: list[str] = field(default_factory=list)
    reloaded: int = 0

    def kind(self) -> int:
        return self.number % 10

    def begin(self, number: int) -> None:
        self.number = number
        self.scope = None
        self.initialized.clear()
        self.stopped.clear()
        self.reloaded = 0


class _Member(tiered.Driver):
    """A class driver of the soak runtime."""

    def __init__(self, cycle: Cycle, name: str, tier: int, requires: tuple[str, ...]):
        super().__init__()
        self.cycle = cycle
        self.name = name
        self.tier = tier
        self.requires = requires
        self.seen: list[object] = []

    async def initialize(self, ctx: tiered.Context) -> None:
        self.seen = [ctx.get(r) for r in self.requires]
        await anyio.lowlevel.checkpoint()
        if self.name == "t3d1" and self.cycle.kind() == FAIL_START:
            raise Boom(f"cycle {self.cycle.number}: {self.name} fails to start")
        if self.name == "t2d1" and self.cycle.kind() == CANCEL:
            assert self.cycle.scope is not None
            self.cycle.scope.cancel()
            await anyio.sleep_forever()
        self.cycle.initialized.add(self.name)

    async def autostart(self, ctx: tiered.Context) -> None:
        ctx.status(f"{self.name} up in cycle {self.cycle.number}")
        await anyio.lowlevel.checkpoint()

    async def reload(self, ctx: tiered.Context) -> None:
        self.cycle.reloaded += 1
        await anyio.lowlevel.checkpoint()

    async def stop(self, ctx: tiered.Context) -> None:
        self.cycle.stopped.append(self.name)
        self.seen = []
        await anyio.lowlevel.checkpoint()
        if self.name == "t1d1" and self.cycle.kind() == FAIL_STOP:
            raise Boom(f"cycle {self.cycle.number}: {self.name} fails to stop")


async def _ticker(interval: float) -> None:
    while True:  # noqa: ASYNC110 - a periodic task, as drivers have them
        await anyio.sleep(interval)


def soak_runtime(cycle: Cycle) -> tiered.Runtime:
    """The 50 drivers: five tiers of ten."""
    runtime = tiered.Runtime("soak", start_timeout=30.0, stop_timeout=30.0)
    for tier in range(TIERS):
        for i in range(PER_TIER):
            name = f"t{tier}d{i}"
            requires = (
                tuple(f"t{tier - 1}d{j}" for j in range(i % 3 + 1)) if tier else ()
            )
            if i % 2:
                runtime.add(_Member(cycle, name, tier, requires))
            else:
                _generator(runtime, cycle, name, tier, requires)
    return runtime


def _generator(
    runtime: tiered.Runtime,
    cycle: Cycle,
    name: str,
    tier: int,
    requires: tuple[str, ...],
) -> None:
    optional = name == "t4d8"

    async def driver(ctx: tiered.Context) -> AsyncIterator[dict[str, Any]]:
        value = {"name": name, "deps": [ctx.get(r) for r in requires]}
        if name == "t4d8":
            raise tiered.Skip("not on this host")
        if name == "t0d2":
            ctx.start_soon(_ticker, 0.5, name=f"{name} ticker")
        read, write = os.pipe() if name == "t0d4" else (-1, -1)
        try:
            await anyio.lowlevel.checkpoint()
            cycle.initialized.add(name)
            yield value
        finally:
            if read >= 0:
                os.close(read)
                os.close(write)
        cycle.stopped.append(name)
        await anyio.lowlevel.checkpoint()

    runtime.driver(name=name, tier=tier, requires=requires, optional=optional)(driver)


async def one_cycle(runtime: tiered.Runtime, cycle: Cycle) -> None:
    """Run the runtime once, as the cycle's number says; check what stopped."""
    kind = cycle.kind()
    error: Exception | None = None
    with anyio.CancelScope() as scope:
        cycle.scope = scope
        try:
            async with runtime.run() as run:
                assert kind not in (FAIL_START, CANCEL), f"cycle {cycle.number} started"
                if cycle.number % RELOAD_EVERY == 0:
                    assert await run.reload() == ()
                    assert cycle.reloaded == TIERS * PER_TIER // 2
        except (tiered.StartupError, tiered.ShutdownError) as exc:
            error = exc
    expected = {FAIL_START: tiered.StartupError, FAIL_STOP: tiered.ShutdownError}
    if kind in expected:
        assert isinstance(error, expected[kind]), (cycle.number, error)
        assert [type(e) for e in error.exceptions] == [Boom], error
    else:
        assert error is None, (cycle.number, error)
    assert scope.cancelled_caught == (kind == CANCEL), cycle.number
    stopped = sorted(cycle.stopped)
    assert stopped == sorted(cycle.initialized), (
        f"cycle {cycle.number}: initialized {sorted(cycle.initialized)} but "
        f"stopped {stopped}"
    )
    assert len(stopped) == len(set(stopped)), f"cycle {cycle.number}: {stopped}"


#: tiered's objects of one run: none may outlive it
CENSUS = (tiered.Run, tiered.Context, tiered.Report, tiered.DriverRecord)


@dataclass(frozen=True, slots=True)
class Sample:
    """Traced memory, open descriptors and live tiered objects after some cycles."""

    cycles: int
    memory: int
    fds: int
    objects: int


def sample(cycles: int) -> Sample:
    gc.collect()
    objects = sum(1 for o in gc.get_objects() if isinstance(o, CENSUS))
    return Sample(cycles, tracemalloc.get_traced_memory()[0], open_fds(), objects)


async def soak(cycles: int, warmup: int) -> list[Sample]:
    """Warm up, then run ``cycles`` cycles, sampling memory and descriptors."""
    cycle = Cycle()
    runtime = soak_runtime(cycle)
    assert len(runtime.check().drivers) == TIERS * PER_TIER
    for n in range(warmup):
        cycle.begin(n)
        await one_cycle(runtime, cycle)
    every = max(1, cycles // 10)
    # made before the first sample, so that the samples themselves add nothing
    samples: list[Sample | None] = [None] * (cycles // every + 2)
    samples[0] = sample(0)
    taken = 1
    for n in range(1, cycles + 1):
        cycle.begin(warmup + n)
        await one_cycle(runtime, cycle)
        if n % every == 0 or n == cycles:
            samples[taken] = sample(n)
            taken += 1
    return [s for s in samples if s is not None]


def run_soak(backend: Backend) -> list[Sample]:
    samples: list[Sample] = run_on(backend, soak, CYCLES, WARMUP)
    return samples


@pytest.mark.timeout(0 if SOAK else 120)
@pytest.mark.parametrize("backend", BACKENDS)
def test_start_stop_cycles_leak_nothing(
    backend: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    """Thousands of cycles of a 50-driver runtime: no memory or descriptor growth."""
    with tracing(), quiet_tiered_logs():
        samples = run_soak(backend)
    first, last = samples[0], samples[-1]
    trail = ", ".join(
        f"{s.cycles}: {kib(s.memory)}, {s.fds} fds, {s.objects} objects"
        for s in samples
    )
    summary = (
        f"soak {backend}: {CYCLES} cycles of {TIERS * PER_TIER} drivers after "
        f"{WARMUP} warm-up; memory {kib(first.memory)} -> {kib(last.memory)} "
        f"({last.memory - first.memory:+d} bytes), open fds {first.fds} -> "
        f"{last.fds}, live Run/Context/Report/DriverRecord objects "
        f"{first.objects} -> {last.objects}"
    )
    if SOAK:  # the figures of a long run, shown as it goes
        with capsys.disabled():
            print(f"\n{summary}")
    assert last.fds == first.fds, f"{summary}\n{trail}"
    assert last.objects == first.objects, f"{summary}\n{trail}"
    growth = min(s.memory for s in samples[-3:]) - min(s.memory for s in samples[:3])
    assert growth <= MEMORY_SLACK, f"{summary}\n{trail}"
