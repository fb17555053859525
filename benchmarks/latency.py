"""Start-up latency: drivers that sleep while starting, standing for I/O.

Workload 2 keeps tiers: start-up against the tier bound (the sum over tiers
of each tier's slowest driver), the same sleeps by hand, one by one and in
one tier, and the peers.

Workload 7 gives the same drivers requirements, a seeded DAG
(:func:`dag.dag_plan`), and runs it three ways: tiered on its tiers
schedule, tiered on its dependency schedule, and by hand with one anyio
event per driver.  Its bounds are the tier bound and the critical-path
bound (the longest chain of sleeps through requirements).
"""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Any

import dag
import peers
import subjects
from harness import Case, interleave, ratio, sleep_plan, summary

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from harness import Backend, Plan, Timing
    from workloads import Settings


def latency(
    settings: Settings,
    backends: Sequence[Backend],
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Start-up of drivers that sleep while starting, against the bound."""
    low, high = settings.latency_sleep
    plan = sleep_plan(
        settings.latency_drivers,
        settings.latency_tiers,
        low,
        high,
        settings.latency_seed,
    )
    one_tier = plan.flattened()
    cases = [
        Case("tiered", subjects.TIERED, plan),
        Case("anyio_by_hand", subjects.ANYIO_FLOOR, plan),
        Case("tiered_one_tier", subjects.TIERED, one_tier),
        Case("exitstack", subjects.EXITSTACK, plan, rounds=settings.sequential_rounds),
        Case("facet", peers.FACET, plan),
        Case("aiomisc", peers.AIOMISC, plan),
        Case("dependency_injector", peers.DEPENDENCY_INJECTOR, plan),
    ]
    runs = interleave(cases, backends, settings.rounds, progress)
    result: dict[str, Any] = {
        "drivers": plan.drivers,
        "tiers": len(plan.tiers),
        "sleep_s": [low, high],
        "seed": settings.latency_seed,
        "rounds": settings.rounds,
        "bound_s": plan.bound,
        "one_tier_bound_s": one_tier.bound,
        "sum_of_sleeps_s": sum(sum(t) for t in plan.tiers),
        "backends": {},
    }
    for backend, by_case in runs.items():
        starts = {k: [t.start for t in v] for k, v in by_case.items()}
        entry: dict[str, Any] = {
            "subjects": {
                k: {
                    "startup": summary(v),
                    "runs": len(v),
                    "vs_bound": _vs_constant(v, plan.bound),
                }
                for k, v in starts.items()
            }
        }
        if "tiered_one_tier" in starts:
            entry["subjects"]["tiered_one_tier"]["vs_own_bound"] = _vs_constant(
                starts["tiered_one_tier"], one_tier.bound
            )
        if "tiered" in starts and "anyio_by_hand" in starts:
            entry["tiered_vs_by_hand"] = ratio(
                starts["tiered"], starts["anyio_by_hand"]
            )
        result["backends"][backend] = entry
    return result


def _vs_constant(values: Sequence[float], bound: float) -> dict[str, Any]:
    return {
        "ratio": statistics.median(values) / bound,
        "per_round": summary([v / bound for v in values]),
    }


# -- 7. the seeded DAG -----------------------------------------------------------

# the cases of workload 7, by key; tiered's tiers schedule is subjects.TIERED
DAG_TIERS = "tiered_tiers"
DAG_DEPENDENCIES = "tiered_dependencies"
DAG_BY_HAND = "dag_by_hand"
# what workload 7 compares on each backend: numerator ÷ denominator
DAG_RATIOS = (
    (DAG_TIERS, DAG_DEPENDENCIES),
    (DAG_DEPENDENCIES, DAG_BY_HAND),
    (DAG_TIERS, DAG_BY_HAND),
)


def dag_startup(
    settings: Settings,
    backends: Sequence[Backend],
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The seeded DAG: tiered's two schedules and the DAG by hand, interleaved.

    The drivers and sleeps are workload 2's (the same seed), so its tier
    bound is workload 2's bound; only the requirements are new.
    """
    plan = dag_plan(settings)
    critical, chain = dag.critical_path(plan)
    cases = [
        Case(DAG_TIERS, subjects.TIERED, plan),
        Case(DAG_DEPENDENCIES, subjects.TIERED_DEPENDENCIES, plan),
        Case(DAG_BY_HAND, subjects.DAG_BY_HAND, plan),
    ]
    runs = interleave(cases, backends, settings.rounds, progress)
    low, high = settings.latency_sleep
    above = [r for tier in plan.requires[1:] for r in tier]
    result: dict[str, Any] = {
        "drivers": plan.drivers,
        "tiers": len(plan.tiers),
        "sleep_s": [low, high],
        "sleep_seed": settings.latency_seed,
        "requires_seed": settings.dag_seed,
        "most_requires": settings.dag_requires,
        "requirements": dag.edges(plan),
        "without_requirements_above_tier_0": sum(1 for r in above if not r),
        "rounds": settings.rounds,
        "tier_bound_s": plan.bound,
        "critical_path_s": critical,
        "critical_path_drivers": chain,
        "sum_of_sleeps_s": sum(sum(t) for t in plan.tiers),
        "backends": {},
    }
    for backend, by_case in runs.items():
        result["backends"][backend] = _dag_entry(by_case, plan.bound, critical)
    return result


def dag_plan(settings: Settings) -> Plan:
    """Workload 7's DAG: workload 2's drivers and sleeps, with requirements."""
    return dag.dag_plan(
        settings.latency_drivers,
        settings.latency_tiers,
        settings.latency_sleep,
        settings.latency_seed,
        settings.dag_seed,
        settings.dag_requires,
    )


def _dag_entry(
    by_case: dict[str, list[Timing]], tier_bound: float, critical: float
) -> dict[str, Any]:
    """One backend's start-ups against both bounds, and the ratios of start-ups."""
    starts = {k: [t.start for t in v] for k, v in by_case.items()}
    return {
        "subjects": {
            k: {
                "runs": len(v),
                "startup": summary(v),
                "stop": summary([t.stop for t in by_case[k]]),
                "vs_tier_bound": _vs_constant(v, tier_bound),
                "vs_critical_path": _vs_constant(v, critical),
            }
            for k, v in starts.items()
        },
        "ratios": {
            f"{a}_vs_{b}": ratio(starts[a], starts[b])
            for a, b in DAG_RATIOS
            if a in starts and b in starts
        },
    }
