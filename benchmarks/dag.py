"""Plans with requirements between drivers, their bounds, and their order.

A *DAG plan* is a :class:`~harness.Plan` whose ``requires`` names, for
every driver, drivers of lower tiers it needs.  Under ``schedule="tiers"``
the barrier keeps them; under ``schedule="dependencies"`` (and by hand,
with one event per driver) only the requirements order the start, so
start-up can take the longest chain of sleeps through requirements, the
*critical-path bound*, rather than the *tier bound* (the sum over tiers of
each tier's slowest driver).

:func:`check_order` reads a traced run the way :func:`harness.check_trace`
does for tiers: from what happened, not from what a subject claims.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from harness import BEGIN, READY, STOP, Plan, Ref, sleep_plan

if TYPE_CHECKING:
    from harness import Trace


def dag_plan(
    drivers: int,
    tiers: int,
    sleep: tuple[float, float],
    sleep_seed: int,
    requires_seed: int,
    most: int,
) -> Plan:
    """:func:`harness.sleep_plan`'s drivers, each requiring 0 to ``most`` others.

    The sleeps are exactly ``sleep_plan(drivers, tiers, *sleep, sleep_seed)``;
    a second generator, seeded with ``requires_seed``, draws how many
    requirements each driver has (uniformly, 0 to ``most``, fewer in tier 1
    when fewer drivers lie below) and which ones, uniformly among the
    drivers of every lower tier.  Tier 0 requires nothing.
    """
    sleeps = sleep_plan(drivers, tiers, *sleep, sleep_seed)
    rng = random.Random(requires_seed)
    lower: list[Ref] = []
    requires: list[tuple[tuple[Ref, ...], ...]] = []
    for t, delays in enumerate(sleeps.tiers):
        requires.append(
            tuple(
                tuple(sorted(rng.sample(lower, rng.randint(0, min(most, len(lower))))))
                for _ in delays
            )
        )
        lower += [(t, i) for i in range(len(delays))]
    return Plan(sleeps.tiers, requires=tuple(requires))


def chain_plan(plan: Plan) -> Plan:
    """``plan`` with driver i of each tier above 0 requiring one of the tier below.

    Driver i of tier t requires driver ``i % n`` of tier t-1 (n drivers):
    every driver but tier 0's waits on exactly one other, so the DAG has
    the tiers' shape, and the order a tiers schedule keeps is kept either way.
    """
    sizes = [len(delays) for delays in plan.tiers]
    requires = tuple(
        tuple(
            ((t - 1, i % sizes[t - 1]),) if t and sizes[t - 1] else () for i in range(n)
        )
        for t, n in enumerate(sizes)
    )
    return Plan(plan.tiers, plan.trace, requires)


def freed(plan: Plan, ref: Ref) -> Plan:
    """``plan`` with the driver ``ref`` requiring nothing."""
    t, i = ref
    tier = plan.requires[t]
    requires = (
        *plan.requires[:t],
        (*tier[:i], (), *tier[i + 1 :]),
        *plan.requires[t + 1 :],
    )
    return Plan(plan.tiers, plan.trace, requires)


def critical_path(plan: Plan) -> tuple[float, int]:
    """The longest chain of sleeps through requirements: (seconds, drivers on it).

    No schedule that starts a driver only once its requirements are up can
    start every driver sooner.
    """
    done: dict[Ref, tuple[float, int]] = {}
    for t, delays in enumerate(plan.tiers):  # requirements lie in lower tiers
        for i, delay in enumerate(delays):
            before = max((done[r] for r in plan.requirements(t, i)), default=(0.0, 0))
            done[t, i] = (before[0] + delay, before[1] + 1)
    return max(done.values(), default=(0.0, 0))


def edges(plan: Plan) -> int:
    """How many requirements the plan declares."""
    return sum(len(r) for tier in plan.requires for r in tier)


def check_order(plan: Plan, trace: Trace) -> dict[str, Any]:
    """What a traced run shows about the requirements a subject kept.

    ``complete``: every driver began, was ready and stopped exactly once.
    ``requirements_first``: no driver began before each driver it requires
    was ready.  ``dependents_first``: no driver stopped before each driver
    that requires it had stopped.  ``barrier``: no driver began
    before every driver of every lower tier was ready (the barrier).
    ``concurrent``: some driver began before another was ready.
    """
    at: dict[tuple[Ref, str], list[int]] = {}
    for n, (tier, index, event) in enumerate(trace):
        at.setdefault(((tier, index), event), []).append(n)
    refs = [(t, i) for t, delays in enumerate(plan.tiers) for i in range(len(delays))]
    complete = all(
        len(at.get((r, e), [])) == 1 for r in refs for e in (BEGIN, READY, STOP)
    )
    result = dict.fromkeys(
        ("requirements_first", "dependents_first", "barrier", "concurrent"),
        False,
    )
    result["complete"] = complete
    if not complete:
        return result

    def when(ref: Ref, event: str) -> int:
        return at[ref, event][0]

    needs = [(r, need) for r in refs for need in plan.requirements(*r)]
    result["requirements_first"] = all(
        when(need, READY) < when(r, BEGIN) for r, need in needs
    )
    result["dependents_first"] = all(
        when(need, STOP) > when(r, STOP) for r, need in needs
    )
    # the last ready of tiers 0..t-1, against the first begin of tier t
    last_ready = -1
    in_order = True
    for t, delays in enumerate(plan.tiers):
        begins = [when((t, i), BEGIN) for i in range(len(delays))]
        in_order &= not begins or min(begins) > last_ready
        last_ready = max(
            [last_ready, *(when((t, i), READY) for i in range(len(delays)))]
        )
    result["barrier"] = in_order
    ready = sorted(when(r, READY) for r in refs)
    begins = sorted(when(r, BEGIN) for r in refs)
    result["concurrent"] = len(refs) >= 2 and begins[1] < ready[0]
    return result
