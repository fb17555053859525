"""Workload 3: scaling, time per driver from 100 to 100k no-op drivers, then memory.

Time per driver (start plus stop) is taken interleaved across sizes, with
the anyio floor and tiered without the garbage collector beside tiered; then,
in a separate pass because tracemalloc slows everything down, bytes per
driver under tracemalloc.
"""

from __future__ import annotations

import gc
import tracemalloc
from typing import TYPE_CHECKING, Any

import anyio
import subjects
from harness import Case, interleave, noop_plan, ratio, summary, timing_summary
from workloads import say

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from harness import Backend, Plan
    from workloads import Settings

SCALED = (subjects.TIERED, subjects.TIERED_NO_GC, subjects.ANYIO_FLOOR)


def scaling(
    settings: Settings,
    backends: Sequence[Backend],
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Time per driver across sizes (interleaved), then memory of tiered.

    The anyio floor runs beside tiered at every size: how its time per
    driver grows too shows what comes from Python and the event loop (the
    cyclic garbage collector, mostly) rather than from tiered.
    """
    tiers = settings.scaling_tiers
    cases = [
        Case(
            f"{s.key}/{n}",
            s,
            noop_plan(n, tiers),
            rounds=settings.big_rounds if n >= settings.big_size else None,
        )
        for n in settings.scaling_sizes
        for s in SCALED
    ]
    runs = interleave(cases, backends, settings.rounds, progress)
    ref = settings.scaling_reference
    result: dict[str, Any] = {
        "sizes": list(settings.scaling_sizes),
        "tiers": tiers,
        "rounds": settings.rounds,
        "big_size": settings.big_size,
        "big_rounds": settings.big_rounds,
        "reference": ref,
        "backends": {},
    }
    for backend, by_case in runs.items():
        per_driver = {
            key: [t.total / int(key.split("/")[1]) for t in timings]
            for key, timings in by_case.items()
        }
        sizes: dict[str, Any] = {}
        for n in settings.scaling_sizes:
            entry: dict[str, Any] = {}
            for s in SCALED:
                key = f"{s.key}/{n}"
                entry[s.key] = {
                    **timing_summary(by_case[key]),
                    "per_driver": summary(per_driver[key]),
                }
                if f"{s.key}/{ref}" in per_driver:
                    entry[s.key]["per_driver_vs_reference"] = ratio(
                        per_driver[key], per_driver[f"{s.key}/{ref}"]
                    )
            entry["tiered_vs_anyio_floor"] = ratio(
                per_driver[f"tiered/{n}"], per_driver[f"anyio_floor/{n}"]
            )
            sizes[str(n)] = entry
        result["backends"][backend] = {"sizes": sizes}
    say(progress, "memory (tracemalloc)")
    result["memory"] = {
        "sizes": list(settings.memory_sizes),
        "backends": {
            b.name: {str(n): memory(n, tiers, b) for n in settings.memory_sizes}
            for b in backends
        },
    }
    return result


async def _memory_run(plan: Plan) -> dict[str, float]:
    functions = subjects.tiered_functions(plan)  # the user's code: not counted
    gc.collect()
    base = tracemalloc.get_traced_memory()[0]
    rt = subjects.tiered_runtime(functions)
    declared = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.reset_peak()
    async with rt.run():
        running, peak = tracemalloc.get_traced_memory()
    after = tracemalloc.get_traced_memory()[0]
    n = plan.drivers
    return {
        "declared_per_driver": declared / n,
        "running_per_driver": (running - base) / n,
        "peak_per_driver": (peak - base) / n,
        "left_after_stop_per_driver": (after - base) / n,
    }


def memory(drivers: int, tiers: int, backend: Backend) -> dict[str, float]:
    """Bytes per driver under tracemalloc, from before the drivers are declared.

    ``declared``: the runtime with its drivers; ``running``: that plus the run
    once every tier is up; ``peak``: the most at any time until then (all
    include the declarations); ``left_after_stop``: what the runtime still
    holds once the run ended.  The driver functions themselves are the
    user's code and are made before the baseline.
    """
    gc.collect()
    tracemalloc.start()
    try:
        result: dict[str, float] = anyio.run(
            _memory_run,
            noop_plan(drivers, tiers),
            backend=backend.anyio_backend,
            backend_options=backend.options,
        )
    finally:
        tracemalloc.stop()
    return result
