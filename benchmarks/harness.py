"""What every workload shares: plans, backends, interleaved runs and statistics.

A *plan* is the work: tiers of drivers, each driver with the seconds it sleeps
while it starts (0 for a no-op driver).  A *subject* is one way of doing that
work (tiered, a hand-written floor, a peer library); it builds its objects
from the plan, then times its own start and stop with ``time.perf_counter``
and returns a :class:`Timing`.  Every run gets a fresh event loop.

Comparisons are ratios of medians over rounds in which every subject ran once
(round-robin, the order rotated each round, a ``gc.collect()`` before each
run), with the spread of the per-round ratios.  Figures from different
invocations are never compared.
"""

from __future__ import annotations

import gc
import importlib.util
import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

if TYPE_CHECKING:
    from collections.abc import Coroutine, Sequence

BEGIN = "begin"
READY = "ready"
STOP = "stop"

Trace = list[tuple[int, int, str]]
"""(tier, index in the tier, event) in the order drivers reached them.

Only verification runs record one.
"""

Ref = tuple[int, int]
"""A driver of a plan: (tier, index in the tier)."""

Requires = tuple[tuple[tuple[Ref, ...], ...], ...]
"""Per tier, per driver, the drivers it requires (all in lower tiers)."""


@dataclass(frozen=True)
class Backend:
    """An event loop a subject can run on, through ``anyio.run``."""

    name: str
    anyio_backend: str
    options: dict[str, Any]
    module: str  # what must be importable for it

    def available(self) -> bool:
        """Whether the loop's library is installed."""
        return importlib.util.find_spec(self.module) is not None


BACKENDS: dict[str, Backend] = {
    "asyncio": Backend("asyncio", "asyncio", {}, "asyncio"),
    "uvloop": Backend("uvloop", "asyncio", {"use_uvloop": True}, "uvloop"),
    "trio": Backend("trio", "trio", {}, "trio"),
}


@dataclass(frozen=True)
class Plan:
    """Tiers of drivers; each number is what one driver sleeps while starting.

    ``requires``, when not empty, holds every driver's requirements (see
    ``dag.py``); a subject that can declare them does, the others keep the
    tiers, which keep every requirement too.  ``trace``, when set, makes
    every driver record its events in it, so a verification run can check
    the order a subject really kept.
    """

    tiers: tuple[tuple[float, ...], ...]
    trace: Trace | None = field(default=None, compare=False)
    requires: Requires = ()

    @property
    def drivers(self) -> int:
        """How many drivers the plan holds."""
        return sum(len(t) for t in self.tiers)

    @property
    def bound(self) -> float:
        """The least start-up any tiered schedule can take: per tier, the slowest."""
        return sum(max(t, default=0.0) for t in self.tiers)

    def requirements(self, tier: int, index: int) -> tuple[Ref, ...]:
        """What one driver requires: nothing in a plan without requirements."""
        return self.requires[tier][index] if self.requires else ()

    def flattened(self) -> Plan:
        """The same drivers, all in one tier (and so without requirements)."""
        return Plan((tuple(d for t in self.tiers for d in t),), self.trace)

    def traced(self) -> Plan:
        """The same plan with an empty trace to record into."""
        return Plan(self.tiers, [], self.requires)


def driver_name(tier: int, index: int) -> str:
    """What every subject calls a plan's driver."""
    return f"t{tier}d{index}"


def noop_plan(drivers: int, tiers: int) -> Plan:
    """``drivers`` no-op drivers spread evenly (round-robin) over ``tiers``."""
    return Plan(tuple((0.0,) * len(range(t, drivers, tiers)) for t in range(tiers)))


def sleep_plan(drivers: int, tiers: int, low: float, high: float, seed: int) -> Plan:
    """Drivers spread evenly over tiers, each sleeping uniformly in [low, high] s."""
    rng = random.Random(seed)
    sleeps = [rng.uniform(low, high) for _ in range(drivers)]
    return Plan(tuple(tuple(sleeps[t::tiers]) for t in range(tiers)))


@dataclass(frozen=True)
class Timing:
    """Seconds one run of a subject took to start every driver and to stop them."""

    start: float
    stop: float

    @property
    def total(self) -> float:
        """Start plus stop."""
        return self.start + self.stop


@dataclass(frozen=True)
class Subject:
    """One way of doing a plan's work.

    Args:
        key: short identifier used in the JSON.
        label: what the Markdown tables call it.
        fn: builds its objects from the plan (untimed), then times start and stop.
        backends: the backends it runs on.
        tiers: how it expresses the plan's tiers, and what it cannot express.
        max_drivers: above this many drivers it is not run (``too_big`` says why).
    """

    key: str
    label: str
    fn: Callable[[Plan], Coroutine[Any, Any, Timing]]
    backends: frozenset[str]
    tiers: str
    max_drivers: int | None = None
    too_big: str = ""


@dataclass(frozen=True)
class Case:
    """A subject doing a plan, under a name (one subject may do several plans).

    ``rounds``, when set, limits the case to the first that many rounds (for a
    slow case whose spread is small, like drivers started one by one).
    """

    key: str
    subject: Subject
    plan: Plan
    rounds: int | None = None


def run_once(case: Case, backend: Backend) -> Timing:
    """Run one case in a fresh event loop; collect garbage first, untimed."""
    gc.collect()
    result: Timing = anyio.run(
        case.subject.fn,
        case.plan,
        backend=backend.anyio_backend,
        backend_options=backend.options,
    )
    return result


def interleave(
    cases: Sequence[Case],
    backends: Sequence[Backend],
    rounds: int,
    progress: Callable[[str], None] | None = None,
) -> dict[str, dict[str, list[Timing]]]:
    """Run every case on every backend once per round, rotating the order.

    Returns ``{backend: {case key: [Timing per round]}}`` with only the cases
    the backend supports.
    """
    results: dict[str, dict[str, list[Timing]]] = {
        b.name: {c.key: [] for c in cases if b.name in c.subject.backends}
        for b in backends
    }
    for r in range(rounds):
        for backend in backends:
            runnable = [
                c
                for c in cases
                if backend.name in c.subject.backends
                and (c.rounds is None or r < c.rounds)
            ]
            shift = r % len(runnable) if runnable else 0
            for case in runnable[shift:] + runnable[:shift]:
                results[backend.name][case.key].append(run_once(case, backend))
        if progress is not None:
            progress(f"round {r + 1}/{rounds}")
    return results


# -- statistics ------------------------------------------------------------------


def summary(values: Sequence[float]) -> dict[str, float]:
    """Median, quartiles and extremes of some values."""
    ordered = sorted(values)
    if len(ordered) >= 2:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    else:
        q1 = q3 = ordered[0]
    return {
        "median": statistics.median(ordered),
        "min": ordered[0],
        "q1": q1,
        "q3": q3,
        "max": ordered[-1],
    }


def ratio(numerator: Sequence[float], denominator: Sequence[float]) -> dict[str, Any]:
    """Ratio of medians, with the spread of the per-round ratios.

    Only the rounds both sides ran in are used (a case may run in fewer).
    """
    n = min(len(numerator), len(denominator))
    a, b = numerator[:n], denominator[:n]
    return {
        "ratio": statistics.median(a) / statistics.median(b),
        "rounds": n,
        "per_round": summary([x / y for x, y in zip(a, b, strict=True)]),
    }


def timing_summary(timings: Sequence[Timing]) -> dict[str, Any]:
    """Medians (and spread) of start, stop and total, in seconds."""
    return {
        "runs": len(timings),
        "start": summary([t.start for t in timings]),
        "stop": summary([t.stop for t in timings]),
        "total": summary([t.total for t in timings]),
    }


# -- verification ----------------------------------------------------------------


def check_trace(plan: Plan, trace: Trace) -> dict[str, Any]:
    """What a traced run shows about the order a subject kept.

    ``tiers_in_order``: every driver of tier k was ready before any driver of
    tier k+1 began, and stopped after every driver of tier k+1 had stopped.
    ``concurrent``: in every tier of two or more drivers, some driver began
    before another one of the tier was ready.  ``complete``: every driver
    began, was ready and stopped exactly once.
    """
    counts = [len(t) for t in plan.tiers]
    seen: dict[tuple[int, str], list[int]] = {}
    for at, (tier, _, event) in enumerate(trace):
        seen.setdefault((tier, event), []).append(at)
    complete = all(
        len(seen.get((t, e), [])) == n
        for t, n in enumerate(counts)
        for e in (BEGIN, READY, STOP)
    )
    in_order = complete
    concurrent = complete
    if complete:
        for t in range(len(counts) - 1):
            if counts[t] and counts[t + 1]:
                in_order &= max(seen[t, READY]) < min(seen[t + 1, BEGIN])
                in_order &= min(seen[t, STOP]) > max(seen[t + 1, STOP])
        for t, n in enumerate(counts):
            if n >= 2:
                concurrent &= min(seen[t, READY]) > sorted(seen[t, BEGIN])[1]
    return {"complete": complete, "tiers_in_order": in_order, "concurrent": concurrent}


Check = Callable[[Plan, Trace], dict[str, Any]]
"""What a traced run shows: :func:`check_trace`, or ``dag.check_order``."""


def verify(
    subject: Subject, backend: Backend, plan: Plan, check: Check | None = None
) -> dict[str, Any]:
    """Run a subject once on a traced copy of ``plan`` and check its order."""
    traced = plan.traced()
    run_once(Case(subject.key, subject, traced), backend)
    assert traced.trace is not None
    return (check or check_trace)(traced, traced.trace)
