"""The goals of the benchmark suite, checked from the figures of one run.

Issue 5 set the first five, the exec-to-READY and import-time goals are
about what a daemon's user feels, and issue 12 set the last two, on the
dependency schedule.  A goal whose workload did not run is "not measured"
(``met`` is None); every other goal is shown as measured, met or not.
"""

from __future__ import annotations

from typing import Any

OVERHEAD_LIMIT, OVERHEAD_AIM = 1.5, 1.2
LATENCY_LIMIT = 1.02
SCALING_LIMIT = 1.25
MEMORY_LIMIT = 4096
EXEC_LIMIT = 1.10
IMPORT_LIMIT_S = 0.010
DAG_LIMIT = 1.05
DEPENDENCY_OVERHEAD_LIMIT = 1.2

Checks = dict[str, tuple[float, bool]]
"""What a goal checked (a backend, a peer) -> (the value, whether it passed)."""

Workload = dict[str, Any] | None
"""One workload's results, or None when it did not run."""


def _goal(key: str, goal: str, checks: Checks, unit: str) -> dict[str, Any]:
    """One goal; no checks means its workload did not run."""
    if not checks:
        return {"id": key, "goal": goal, "met": None, "detail": "not measured"}
    detail = ", ".join(f"{k} {_fmt_value(v, unit)}" for k, (v, _) in checks.items())
    return {
        "id": key,
        "goal": goal,
        "met": all(ok for _, ok in checks.values()),
        "values": {k: v for k, (v, _) in checks.items()},
        "detail": detail,
    }


def _fmt_value(value: float, unit: str) -> str:
    if unit == "bytes":
        return f"{value / 1024:.2f} KiB"
    if unit == "s":
        return f"{value * 1000:.1f} ms"
    return f"{value:.3f}x"


def goals(workloads: dict[str, Any]) -> list[dict[str, Any]]:
    """Each goal, and whether this run met it."""
    over = workloads.get("overhead")
    scal = workloads.get("scaling")
    return [
        _overhead(over),
        _latency(workloads.get("latency")),
        _scaling_time(scal),
        _scaling_memory(scal),
        _peers(over),
        _exec_ready(workloads.get("exec")),
        _import_time(workloads.get("importtime")),
        _dag(workloads.get("dag")),
        _dependency_overhead(over),
    ]


def _per_backend(workload: Workload, path: tuple[str, ...], limit: float) -> Checks:
    """Per backend, the ratio at ``path`` in its entry, against ``limit``."""
    checks: Checks = {}
    for b, entry in workload["backends"].items() if workload else ():
        r: Any = entry
        for step in path:
            r = r.get(step) if r is not None else None
        if r is not None:
            checks[b] = (r["ratio"], r["ratio"] <= limit)
    return checks


def _overhead(over: Workload) -> dict[str, Any]:
    checks = _per_backend(over, ("tiered_vs", "anyio_floor"), OVERHEAD_LIMIT)
    goal = _goal(
        "overhead",
        f"overhead <= {OVERHEAD_LIMIT}x the anyio floor on every backend "
        f"(aim {OVERHEAD_AIM}x)",
        checks,
        "x",
    )
    if checks:
        goal["aim_met"] = all(v <= OVERHEAD_AIM for v, _ in checks.values())
    return goal


def _latency(lat: Workload) -> dict[str, Any]:
    return _goal(
        "latency",
        "start-up within 2% of the same sleeps written by hand in task groups",
        _per_backend(lat, ("tiered_vs_by_hand",), LATENCY_LIMIT),
        "x",
    )


def _scaling_time(scal: Workload) -> dict[str, Any]:
    checks: Checks = {}
    goal = f"time per driver at the largest size <= {SCALING_LIMIT}x the time at 1,000"
    if scal:
        largest = max(scal["sizes"])
        goal = (
            f"time per driver at {largest:,} drivers <= {SCALING_LIMIT}x "
            f"the time at {scal['reference']:,}"
        )
        for b, e in scal["backends"].items():
            tiered = e["sizes"].get(str(largest), {}).get("tiered", {})
            r = tiered.get("per_driver_vs_reference")
            if r is not None:
                checks[b] = (r["ratio"], r["ratio"] <= SCALING_LIMIT)
    return _goal("scaling_time", goal, checks, "x")


def _scaling_memory(scal: Workload) -> dict[str, Any]:
    checks: Checks = {}
    goal = f"<= {MEMORY_LIMIT // 1024} KiB per running driver"
    memory = scal.get("memory") if scal else None
    if memory and memory["sizes"]:
        largest = max(memory["sizes"])
        goal += (
            f" (once every tier is up, declarations included, at {largest:,} drivers)"
        )
        for b, sizes in memory["backends"].items():
            running = sizes[str(largest)]["running_per_driver"]
            checks[b] = (running, running <= MEMORY_LIMIT)
    return _goal("scaling_memory", goal, checks, "bytes")


def _peers(over: Workload) -> dict[str, Any]:
    """tiered against the peers on asyncio, drivers in the peers' shape.

    The peers' drivers are services, one object each with start and stop
    methods; so are tiered's ``Driver`` instances, which the goal compares.
    tiered's generator drivers (a closure each) are shown beside, not
    judged: they give the collector more of the user's objects to walk.
    """
    checks: Checks = {}
    generators: list[str] = []
    if over and "asyncio" in over["backends"]:
        entry = over["backends"]["asyncio"]
        classes = entry.get("classes_vs", {})
        for peer in ("facet", "aiomisc"):
            if peer in classes:
                r = classes[peer]["ratio"]
                checks[f"tiered ÷ {peer}"] = (r, r < 1.0)
            if peer in entry["tiered_vs"]:
                r = entry["tiered_vs"][peer]["ratio"]
                generators.append(f"÷ {peer} {_fmt_value(r, 'x')}")
    goal = _goal(
        "peers",
        "faster than facet and aiomisc on workload 1 on asyncio (drivers "
        "written as classes, as the peers' services are)",
        checks,
        "x",
    )
    if checks and generators:
        goal["detail"] += "; generator drivers, not judged: " + ", ".join(generators)
    return goal


def _exec_ready(ex: Workload) -> dict[str, Any]:
    checks: Checks = {}
    for b, e in ex["backends"].items() if ex else ():
        for key, name in (
            ("tiered_cli_vs_anyio_daemon", "tiered run"),
            ("tiered_serve_vs_anyio_daemon", "serve()"),
        ):
            r = e["ratios"].get(key)
            if r is not None:
                checks[f"{b} {name}"] = (r["ratio"], r["ratio"] <= EXEC_LIMIT)
    return _goal(
        "exec_ready",
        f"exec to READY within {EXEC_LIMIT:.2f}x of the anyio by-hand daemon "
        "(`tiered run` and `serve()`, workload 6)",
        checks,
        "x",
    )


def _import_time(imp: Workload) -> dict[str, Any]:
    checks: Checks = {}
    if imp:
        wall = imp["wall_s"]
        extra = wall["tiered"]["median"] - wall["anyio"]["median"]
        # negative: the package alone loads nothing until a name is used
        checks["import tiered alone (it loads nothing yet) minus anyio"] = (
            extra,
            extra <= IMPORT_LIMIT_S,
        )
        if "tiered_daemon" in wall:  # the honest reading: what a daemon imports
            daemon = wall["tiered_daemon"]["median"] - wall["anyio_daemon"]["median"]
            checks["a daemon's imports, minus anyio's"] = (
                daemon,
                daemon <= IMPORT_LIMIT_S,
            )
    return _goal(
        "import_time",
        f"`import tiered` within {IMPORT_LIMIT_S * 1000:.0f} ms of `import anyio` "
        "(fresh interpreters, medians; and what a daemon imports: a Runtime, "
        "a run and serve(), against the same by hand)",
        checks,
        "s",
    )


def _dag(d: Workload) -> dict[str, Any]:
    return _goal(
        "dag",
        f'start-up of the seeded DAG with `schedule="dependencies"` within '
        f"{DAG_LIMIT:.2f}x of the DAG by hand on every backend (workload 7)",
        _per_backend(d, ("ratios", "tiered_dependencies_vs_dag_by_hand"), DAG_LIMIT),
        "x",
    )


def _dependency_overhead(over: Workload) -> dict[str, Any]:
    return _goal(
        "dependency_overhead",
        f"dependency mode overhead within {DEPENDENCY_OVERHEAD_LIMIT}x of tiers "
        "mode (workload 1, the same drivers with one requirement each)",
        _per_backend(
            over,
            ("dependencies_vs", "tiered_requires"),
            DEPENDENCY_OVERHEAD_LIMIT,
        ),
        "x",
    )
