"""The five workloads of the benchmark suite, each returning plain data for JSON.

1. ``overhead``: no-op drivers, one full start and stop, against the anyio
   floor, the native floor and the peers (``overhead_small`` repeats it at a
   size every peer can do).
2. ``latency``: drivers that sleep 1-20 ms while starting; start-up against
   the bound, against the same sleeps by hand, one by one and in one tier.
3. ``scaling``: time per driver from 100 to 100k drivers, then memory per
   running driver under tracemalloc, in a separate pass.
4. the peers take part in 1 and 2.
5. ``importtime``: ``import tiered`` in a fresh interpreter against
   ``import anyio``.
"""

from __future__ import annotations

import gc
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import anyio
import peers
import subjects
from harness import (
    BACKENDS,
    Backend,
    Case,
    Plan,
    Subject,
    interleave,
    noop_plan,
    ratio,
    sleep_plan,
    summary,
    timing_summary,
    verify,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

ALL_SUBJECTS: tuple[Subject, ...] = (
    subjects.TIERED,
    subjects.ANYIO_FLOOR,
    subjects.NATIVE_FLOOR,
    subjects.EXITSTACK,
    peers.FACET,
    peers.AIOMISC,
    peers.DEPENDENCY_INJECTOR,
)
# what "tiered ÷ X" is reported against, in this order
OVERHEAD_BASES = (
    "anyio_floor",
    "native_floor",
    "facet",
    "aiomisc",
    "dependency_injector",
    "exitstack",
)


@dataclass(frozen=True)
class Settings:
    """Sizes and repetitions of one benchmark run."""

    rounds: int = 7
    overhead_drivers: int = 10_000
    overhead_tiers: int = 10
    small_drivers: int = 1_000
    small_tiers: int = 10
    latency_drivers: int = 200
    latency_tiers: int = 8
    latency_sleep: tuple[float, float] = (0.001, 0.020)
    latency_seed: int = 5
    sequential_rounds: int = 3  # the one-by-one start takes ~15x the others
    scaling_sizes: tuple[int, ...] = (100, 1_000, 10_000, 100_000)
    scaling_tiers: int = 10
    scaling_reference: int = 1_000  # the goal compares the largest size to this
    big_size: int = 100_000  # sizes from here on run in big_rounds only
    big_rounds: int = 3
    memory_sizes: tuple[int, ...] = (100, 1_000, 10_000, 100_000)
    import_runs: int = 25
    verify_tiers: int = 3
    verify_per_tier: int = 4

    def with_rounds(self, rounds: int) -> Settings:
        """The same settings with another number of rounds (big sizes capped)."""
        return replace(self, rounds=rounds, big_rounds=min(self.big_rounds, rounds))


FULL = Settings()
QUICK = Settings(
    rounds=1,
    overhead_drivers=20,
    overhead_tiers=4,
    small_drivers=12,
    small_tiers=3,
    latency_drivers=12,
    latency_tiers=3,
    latency_sleep=(0.001, 0.004),
    sequential_rounds=1,
    scaling_sizes=(10, 20, 40),
    scaling_tiers=4,
    scaling_reference=20,
    big_size=40,
    big_rounds=1,
    memory_sizes=(10, 40),
    import_runs=2,
    verify_tiers=3,
    verify_per_tier=3,
)


def _say(progress: Callable[[str], None] | None, text: str) -> None:
    if progress is not None:
        progress(text)


# -- verification ----------------------------------------------------------------


def verification(
    settings: Settings, backends: Sequence[Backend]
) -> dict[str, dict[str, Any]]:
    """Check, with a traced run, that each subject keeps the tiers it claims.

    Drivers sleep 0-2 ms so the order within a tier is shuffled: a subject
    that ran tiers together or started a tier's drivers one by one shows it.
    """
    plan = sleep_plan(
        settings.verify_tiers * settings.verify_per_tier,
        settings.verify_tiers,
        0.0,
        0.002,
        seed=settings.latency_seed,
    )
    return {
        s.key: {b.name: verify(s, b, plan) for b in backends if b.name in s.backends}
        for s in ALL_SUBJECTS
        if any(b.name in s.backends for b in backends)
    }


# -- 1. overhead -----------------------------------------------------------------


def overhead(
    drivers: int,
    tiers: int,
    rounds: int,
    backends: Sequence[Backend],
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """No-op drivers, one full start and stop per run, every subject interleaved."""
    plan = noop_plan(drivers, tiers)
    cases: list[Case] = []
    skipped: dict[str, str] = {}
    for s in ALL_SUBJECTS:
        if s.max_drivers is not None and drivers > s.max_drivers:
            skipped[s.key] = s.too_big
        else:
            cases.append(Case(s.key, s, plan))
    runs = interleave(cases, backends, rounds, progress)
    result: dict[str, Any] = {
        "drivers": drivers,
        "tiers": tiers,
        "rounds": rounds,
        "skipped": skipped,
        "backends": {},
    }
    for backend, by_case in runs.items():
        totals = {k: [t.total for t in v] for k, v in by_case.items()}
        result["backends"][backend] = {
            "subjects": {k: timing_summary(v) for k, v in by_case.items()},
            "tiered_vs": {
                base: ratio(totals["tiered"], totals[base])
                for base in OVERHEAD_BASES
                if base in totals and "tiered" in totals
            },
            "vs_anyio_floor": {
                k: ratio(v, totals["anyio_floor"])
                for k, v in totals.items()
                if "anyio_floor" in totals
            },
        }
    return result


# -- 2. latency ------------------------------------------------------------------


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


# -- 3. scaling ------------------------------------------------------------------


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
    _say(progress, "memory (tracemalloc)")
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


# -- 5. import time --------------------------------------------------------------

IMPORTS = {"python": "pass", "anyio": "import anyio", "tiered": "import tiered"}


def importtime(
    runs: int, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Wall time of fresh interpreters importing tiered, anyio, or nothing.

    Interleaved, after one warm-up of each (so byte code is compiled); then
    one ``-X importtime`` run for the breakdown of ``import tiered``.
    """
    # the caller's environment, but byte code is written and nothing profiled
    unset = {"PYTHONDONTWRITEBYTECODE", "PYTHONPROFILEIMPORTTIME", "PYTHONDEVMODE"}
    env = {k: v for k, v in os.environ.items() if k not in unset}
    times: dict[str, list[float]] = {k: [] for k in IMPORTS}
    for r in range(runs + 1):
        for key, code in IMPORTS.items():
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], env=env, check=True)
            if r:  # round 0 warms up
                times[key].append(time.perf_counter() - t0)
    _say(progress, f"{runs} runs each")
    breakdown = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import tiered"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stderr
    modules = _parse_importtime(breakdown)
    tiered_own = {k: v for k, v in modules.items() if k.split(".")[0] == "tiered"}
    return {
        "runs": runs,
        "wall_s": {k: summary(v) for k, v in times.items()},
        "tiered_minus_python_s": statistics.median(times["tiered"])
        - statistics.median(times["python"]),
        "anyio_minus_python_s": statistics.median(times["anyio"])
        - statistics.median(times["python"]),
        "tiered_vs_anyio": ratio(times["tiered"], times["anyio"]),
        "importtime_us": {
            "tiered_cumulative": modules.get("tiered", {}).get("cumulative"),
            "anyio_cumulative": modules.get("anyio", {}).get("cumulative"),
            "tiered_modules_self": {
                k: v["self"]
                for k, v in sorted(tiered_own.items(), key=lambda kv: -kv[1]["self"])
            },
            "slowest_cumulative": dict(
                sorted(
                    ((k, v["cumulative"]) for k, v in modules.items()),
                    key=lambda kv: -kv[1],
                )[:10]
            ),
        },
    }


def _parse_importtime(stderr: str) -> dict[str, dict[str, int]]:
    """``-X importtime`` lines as {module: {"self": us, "cumulative": us}}."""
    modules: dict[str, dict[str, int]] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative, name = line.removeprefix("import time:").split("|")
        modules[name.strip()] = {"self": int(self_us), "cumulative": int(cumulative)}
    return modules


def available_backends(names: Sequence[str]) -> tuple[list[Backend], dict[str, str]]:
    """The requested backends that are installed, and why others are not run."""
    chosen, missing = [], {}
    for name in names:
        backend = BACKENDS[name]
        if backend.available():
            chosen.append(backend)
        else:
            missing[name] = f"{backend.module} is not installed"
    return chosen, missing
