"""The workloads of the benchmark suite, each returning plain data for JSON.

1. ``overhead``: no-op drivers, one full start and stop, against the anyio
   floor, the native floor and the peers (``overhead_small`` repeats it at a
   size every peer can do).
2. ``latency``: drivers that sleep 1-20 ms while starting; start-up against
   the bound, against the same sleeps by hand, one by one and in one tier.
3. ``scaling``: time per driver from 100 to 100k drivers, then memory per
   running driver under tracemalloc, in a separate pass.
4. the peers take part in 1 and 2.
5. ``importtime``: ``import tiered`` in a fresh interpreter against
   ``import anyio``, and where the time goes (``-X importtime``).
6. ``exec_ready``: daemons as real processes, from the spawn to ``READY=1``
   on a notify socket, then SIGTERM to their exit: the tiered CLI,
   ``tiered.serve()``, the same daemon by hand on anyio and on asyncio, and
   the interpreter's floor.
"""

from __future__ import annotations

import gc
import statistics
import subprocess
import sys
import time
import tracemalloc
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import anyio
import peers
import processes
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
    from pathlib import Path

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
    info_log_rounds: int = 3  # workload 1 at INFO takes about twice as long
    import_runs: int = 25
    import_profiles: int = 5  # `-X importtime` runs, per-module medians
    exec_rounds: int = 21  # one process per subject a round: short and noisy
    exec_drivers: int = 20
    exec_tiers: int = 4
    exec_timeout: float = 10.0  # for READY=1, and again for the exit
    verify_tiers: int = 3
    verify_per_tier: int = 4

    def with_rounds(self, rounds: int) -> Settings:
        """The same settings with another number of rounds (big sizes capped).

        The exec workload takes exactly ``rounds`` too.
        """
        return replace(
            self,
            rounds=rounds,
            big_rounds=min(self.big_rounds, rounds),
            info_log_rounds=min(self.info_log_rounds, rounds),
            exec_rounds=rounds,
        )


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
    info_log_rounds=1,
    import_runs=2,
    import_profiles=1,
    exec_rounds=2,
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
    info_log_rounds: int = 0,
) -> dict[str, Any]:
    """No-op drivers, one full start and stop per run, every subject interleaved.

    With ``info_log_rounds``, tiered also runs with its logger at INFO (in
    the first that many rounds), beside the default where logging is off.
    """
    plan = noop_plan(drivers, tiers)
    cases: list[Case] = []
    skipped: dict[str, str] = {}
    for s in ALL_SUBJECTS:
        if s.max_drivers is not None and drivers > s.max_drivers:
            skipped[s.key] = s.too_big
        else:
            cases.append(Case(s.key, s, plan))
    if info_log_rounds:
        info = subjects.TIERED_INFO_LOG
        cases.append(Case(info.key, info, plan, rounds=info_log_rounds))
    runs = interleave(cases, backends, rounds, progress)
    result: dict[str, Any] = {
        "drivers": drivers,
        "tiers": tiers,
        "rounds": rounds,
        "skipped": skipped,
        "backends": {},
    }
    if info_log_rounds:
        result["info_log"] = {
            "rounds": min(info_log_rounds, rounds),
            "how": subjects.TIERED_INFO_LOG.tiers,
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
        info_key = subjects.TIERED_INFO_LOG.key
        if info_key in totals and "tiered" in totals:
            # paired round by round: only the rounds the INFO runs took part in
            result["backends"][backend]["info_log_vs_off"] = ratio(
                totals[info_key], totals["tiered"]
            )
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
PROFILED = ("anyio", "tiered")
TOP_MODULES = 15


def importtime(
    runs: int, profiles: int = 1, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Wall time of fresh interpreters importing tiered, anyio, or nothing.

    Interleaved, after one warm-up of each (so byte code is compiled); then
    ``profiles`` interleaved ``-X importtime`` runs of ``import anyio`` and
    ``import tiered``, per-module medians: the modules that cost the most,
    and what ``import tiered`` imports that ``import anyio`` does not.
    """
    # the caller's environment, but byte code is written and nothing profiled
    env = processes.child_environment()
    times: dict[str, list[float]] = {k: [] for k in IMPORTS}
    for r in range(runs + 1):
        for key, code in IMPORTS.items():
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], env=env, check=True)
            if r:  # round 0 warms up
                times[key].append(time.perf_counter() - t0)
    _say(progress, f"{runs} runs each")
    profiled: dict[str, list[dict[str, dict[str, int]]]] = {k: [] for k in PROFILED}
    for _ in range(profiles):
        for key in PROFILED:
            stderr = subprocess.run(
                [sys.executable, "-X", "importtime", "-c", IMPORTS[key]],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stderr
            profiled[key].append(_parse_importtime(stderr))
    _say(progress, f"{profiles} -X importtime runs each")
    modules = _median_profile(profiled["tiered"])
    alone = _median_profile(profiled["anyio"])
    tiered_own = {k: v for k, v in modules.items() if k.split(".")[0] == "tiered"}
    # by name: a module both import is anyio's cost, whoever imports it first
    beyond = {k: v for k, v in modules.items() if k not in alone}
    median = {k: statistics.median(v) for k, v in times.items()}
    return {
        "runs": runs,
        "wall_s": {k: summary(v) for k, v in times.items()},
        "tiered_minus_python_s": median["tiered"] - median["python"],
        "anyio_minus_python_s": median["anyio"] - median["python"],
        "tiered_minus_anyio_s": median["tiered"] - median["anyio"],
        "tiered_minus_anyio_per_round_s": summary(
            [t - a for t, a in zip(times["tiered"], times["anyio"], strict=True)]
        ),
        "tiered_vs_anyio": ratio(times["tiered"], times["anyio"]),
        "importtime_us": {
            "profiles": profiles,
            "tiered_cumulative": modules.get("tiered", {}).get("cumulative"),
            # anyio as `import tiered` imports it, after tiered's first imports
            "anyio_cumulative": modules.get("anyio", {}).get("cumulative"),
            "anyio_alone_cumulative": alone.get("anyio", {}).get("cumulative"),
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
            "top_cumulative": [
                {"module": k, **v}
                for k, v in sorted(
                    modules.items(), key=lambda kv: -kv[1]["cumulative"]
                )[:TOP_MODULES]
            ],
            "beyond_anyio_self_total": sum(v["self"] for v in beyond.values()),
            "beyond_anyio_modules": len(beyond),
            "beyond_anyio": [
                {"module": k, **v}
                for k, v in sorted(beyond.items(), key=lambda kv: -kv[1]["self"])[
                    :TOP_MODULES
                ]
            ],
        },
    }


def _parse_importtime(stderr: str) -> dict[str, dict[str, int]]:
    """``-X importtime`` lines as {module: {"self", "cumulative": us, "depth"}}.

    ``depth`` is the nesting: 0 for what the command (or start-up) imported
    itself, 1 for what those imported, and so on.
    """
    modules: dict[str, dict[str, int]] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative, name = line.removeprefix("import time:").split("|")
        # one space after the bar, then two per level of nesting
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        modules[name.strip()] = {
            "self": int(self_us),
            "cumulative": int(cumulative),
            "depth": depth,
        }
    return modules


def _median_profile(
    profiles: Sequence[dict[str, dict[str, int]]],
) -> dict[str, dict[str, int]]:
    """Per module imported in every profile, the median self and cumulative us."""
    if not profiles:
        return {}
    names = [k for k in profiles[0] if all(k in p for p in profiles[1:])]
    return {
        k: {
            "self": statistics.median_low(p[k]["self"] for p in profiles),
            "cumulative": statistics.median_low(p[k]["cumulative"] for p in profiles),
            "depth": profiles[0][k]["depth"],
        }
        for k in names
    }


# -- 6. exec to READY ------------------------------------------------------------

EXEC_DAEMONS = (
    processes.TIERED_CLI,
    processes.TIERED_SERVE,
    processes.ANYIO_DAEMON,
    processes.ASYNCIO_DAEMON,
)
# what workload 6 compares on each backend: numerator ÷ denominator
EXEC_RATIOS = (
    ("tiered_cli", "anyio_daemon"),
    ("tiered_serve", "anyio_daemon"),
    ("tiered_cli", "tiered_serve"),
    ("anyio_daemon", "asyncio_daemon"),
)

Figures = list[float | None]
"""One figure per round; None where that round's run failed."""


def exec_ready(
    settings: Settings,
    backends: Sequence[Backend],
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Daemons as processes: exec to READY=1, then READY=1 to exit on SIGTERM.

    Every subject runs once untimed first (its byte code compiled and cached,
    its files read once), then once per round: all of them, on every
    backend, in one order rotated each round.  The interpreter floor runs no
    event loop; every backend's comparisons use the same floor runs.
    """
    cases: list[tuple[processes.Daemon, str | None]] = [
        (d, b.name)
        for b in backends
        for d in EXEC_DAEMONS
        if d.backends is not None and b.name in d.backends
    ]
    cases.append((processes.FLOOR, None))
    ready: dict[tuple[str, str | None], Figures] = {(d.key, b): [] for d, b in cases}
    exits: dict[tuple[str, str | None], Figures] = {(d.key, b): [] for d, b in cases}
    failed: dict[tuple[str, str | None], int] = dict.fromkeys(ready, 0)
    last: dict[tuple[str, str | None], processes.Outcome] = {}
    failures: list[dict[str, Any]] = []

    def run(
        daemon: processes.Daemon, backend: str | None, at: int, workdir: Path
    ) -> None:
        outcome = processes.run_daemon(
            daemon,
            backend,
            workdir,
            settings.exec_timeout,
            settings.exec_drivers,
            settings.exec_tiers,
        )
        key = (daemon.key, backend)
        if outcome.failure is None:
            last[key] = outcome
        else:
            failed[key] += 1
            failures.append(
                {
                    "subject": daemon.key,
                    "backend": backend,
                    "round": at,
                    "why": outcome.failure,
                }
            )
        if at:  # round 0 warms up
            ready[key].append(outcome.ready)
            exits[key].append(outcome.exit)

    with processes.scratch_dir() as workdir:
        for daemon, backend in cases:
            run(daemon, backend, 0, workdir)
        _say(progress, f"warmed up {len(cases)} daemons")
        rounds = settings.exec_rounds
        for r in range(rounds):
            shift = r % len(cases)
            for daemon, backend in cases[shift:] + cases[:shift]:
                run(daemon, backend, r + 1, workdir)
            _say(progress, f"round {r + 1}/{rounds}")

    floor = ready[processes.FLOOR.key, None]
    result: dict[str, Any] = {
        "drivers": settings.exec_drivers,
        "tiers": settings.exec_tiers,
        "rounds": settings.exec_rounds,
        "timeout_s": settings.exec_timeout,
        "subjects": {
            d.key: {
                "label": d.label,
                "how": d.how,
                "backends": sorted(d.backends) if d.backends is not None else [],
                "command": d.command(None if d.backends is None else "BACKEND"),
            }
            for d in (*EXEC_DAEMONS, processes.FLOOR)
        },
        "floor": _exec_entry(
            floor,
            exits[processes.FLOOR.key, None],
            failed[processes.FLOOR.key, None],
            last.get((processes.FLOOR.key, None)),
        ),
        "failures": failures,
        "backends": {},
    }
    for b in backends:
        entries: dict[str, Any] = {}
        for d in EXEC_DAEMONS:
            key = (d.key, b.name)
            if key not in ready:
                continue
            entry = _exec_entry(ready[key], exits[key], failed[key], last.get(key))
            vs_floor = _paired_ratio(ready[key], floor)
            if vs_floor is not None:
                entry["vs_floor"] = vs_floor
                entry["above_floor_s"] = statistics.median(
                    _figures(ready[key])
                ) - statistics.median(_figures(floor))
            entries[d.key] = entry
        ratios: dict[str, Any] = {}
        for a, c in EXEC_RATIOS:
            if (a, b.name) in ready and (c, b.name) in ready:
                paired = _paired_ratio(ready[a, b.name], ready[c, b.name])
                if paired is not None:
                    ratios[f"{a}_vs_{c}"] = paired
        result["backends"][b.name] = {"subjects": entries, "ratios": ratios}
    return result


def _figures(values: Figures) -> list[float]:
    return [v for v in values if v is not None]


def _paired_ratio(numerator: Figures, denominator: Figures) -> dict[str, Any] | None:
    """:func:`harness.ratio` over the rounds where both sides have a figure."""
    pairs = [
        (a, b)
        for a, b in zip(numerator, denominator, strict=True)
        if a is not None and b is not None
    ]
    if not pairs:
        return None
    return ratio([a for a, _ in pairs], [b for _, b in pairs])


def _exec_entry(
    ready: Figures,
    exits: Figures,
    failures: int,
    last: processes.Outcome | None,
) -> dict[str, Any]:
    """One subject's figures: seconds to READY=1 and from it to the exit."""
    ok, gone = _figures(ready), _figures(exits)
    return {
        "runs": len(ok),
        "failures": failures,
        "ready": summary(ok) if ok else None,
        "exit": summary(gone) if gone else None,
        "ready_message": last.message if last is not None else None,
        "datagrams_before_ready": last.before_ready if last is not None else None,
    }


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
