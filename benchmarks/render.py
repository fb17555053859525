"""The machine, the goals, and the Markdown fragment of the results.

Every goal is computed from the figures of the run at hand; a goal whose
workload did not run is "not measured" (``met`` is None).
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (
    "tiered",
    "anyio",
    "trio",
    "uvloop",
    "facet",
    "aiomisc",
    "dependency-injector",
)
LABELS = {
    "tiered": "tiered",
    "anyio_floor": "anyio floor (task group per tier, by hand)",
    "anyio_by_hand": "same sleeps by hand (anyio task group per tier)",
    "native_floor": "native floor (asyncio.TaskGroup / trio nursery)",
    "exitstack": "contextlib.AsyncExitStack (one by one)",
    "facet": "facet",
    "aiomisc": "aiomisc",
    "dependency_injector": "dependency-injector",
    "tiered_one_tier": "tiered, all in one tier",
    "tiered_no_gc": "tiered, garbage collector off (a control)",
    "tiered_info_log": "tiered, `tiered` logger at INFO (to /dev/null)",
}
OVERHEAD_LIMIT, OVERHEAD_AIM = 1.5, 1.2
LATENCY_LIMIT = 1.02
SCALING_LIMIT = 1.25
MEMORY_LIMIT = 4096
EXEC_LIMIT = 1.10
IMPORT_LIMIT_S = 0.010
# workload 6's ratios, as the tables and the goal name them
EXEC_RATIO_LABELS = {
    "tiered_cli_vs_anyio_daemon": "`tiered run` ÷ anyio by hand",
    "tiered_serve_vs_anyio_daemon": "`serve()` ÷ anyio by hand",
    "tiered_cli_vs_tiered_serve": "`tiered run` ÷ `serve()`",
    "anyio_daemon_vs_asyncio_daemon": "anyio by hand ÷ asyncio by hand",
}


# -- the machine -----------------------------------------------------------------


def machine() -> dict[str, Any]:
    """CPU, cores, Python, OS, package versions, date and commit of this run."""
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": platform.platform(),
        "packages": versions,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "commit": _commit(),
        "load_average_at_start": list(os.getloadavg()),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


# -- the goals -------------------------------------------------------------------


Checks = dict[str, tuple[float, bool]]
"""What a goal checked (a backend, a peer) -> (the value, whether it passed)."""


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
    lat = workloads.get("latency")
    scal = workloads.get("scaling")
    imp = workloads.get("importtime")
    ex = workloads.get("exec")

    checks: Checks = {}
    for b, e in over["backends"].items() if over else ():
        r = e["tiered_vs"].get("anyio_floor")
        if r is not None:
            checks[b] = (r["ratio"], r["ratio"] <= OVERHEAD_LIMIT)
    overhead = _goal(
        "overhead",
        f"overhead <= {OVERHEAD_LIMIT}x the anyio floor on every backend "
        f"(aim {OVERHEAD_AIM}x)",
        checks,
        "x",
    )
    if checks:
        overhead["aim_met"] = all(v <= OVERHEAD_AIM for v, _ in checks.values())

    checks = {}
    for b, e in lat["backends"].items() if lat else ():
        r = e.get("tiered_vs_by_hand")
        if r is not None:
            checks[b] = (r["ratio"], r["ratio"] <= LATENCY_LIMIT)
    latency = _goal(
        "latency",
        "start-up within 2% of the same sleeps written by hand in task groups",
        checks,
        "x",
    )

    checks = {}
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
    scaling_time = _goal("scaling_time", goal, checks, "x")

    checks = {}
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
    scaling_memory = _goal("scaling_memory", goal, checks, "bytes")

    checks = {}
    if over and "asyncio" in over["backends"]:
        vs = over["backends"]["asyncio"]["tiered_vs"]
        for peer in ("facet", "aiomisc"):
            if peer in vs:
                checks[f"tiered ÷ {peer}"] = (
                    vs[peer]["ratio"],
                    vs[peer]["ratio"] < 1.0,
                )
    peers = _goal(
        "peers",
        "faster than facet and aiomisc on workload 1 on asyncio",
        checks,
        "x",
    )

    checks = {}
    for b, e in ex["backends"].items() if ex else ():
        for key, name in (
            ("tiered_cli_vs_anyio_daemon", "tiered run"),
            ("tiered_serve_vs_anyio_daemon", "serve()"),
        ):
            r = e["ratios"].get(key)
            if r is not None:
                checks[f"{b} {name}"] = (r["ratio"], r["ratio"] <= EXEC_LIMIT)
    exec_ready = _goal(
        "exec_ready",
        f"exec to READY within {EXEC_LIMIT:.2f}x of the anyio by-hand daemon "
        "(`tiered run` and `serve()`, workload 6)",
        checks,
        "x",
    )

    checks = {}
    if imp:
        wall = imp["wall_s"]
        extra = wall["tiered"]["median"] - wall["anyio"]["median"]
        checks["tiered minus anyio"] = (extra, extra <= IMPORT_LIMIT_S)
    import_time = _goal(
        "import_time",
        f"`import tiered` within {IMPORT_LIMIT_S * 1000:.0f} ms of `import anyio` "
        "(fresh interpreters, medians)",
        checks,
        "s",
    )
    return [
        overhead,
        latency,
        scaling_time,
        scaling_memory,
        peers,
        exec_ready,
        import_time,
    ]


# -- Markdown --------------------------------------------------------------------


def _ms(seconds: float) -> str:
    ms = seconds * 1000
    if ms >= 100:
        return f"{ms:,.0f}"
    if ms >= 10:
        return f"{ms:.1f}"
    return f"{ms:.2f}"


def _ratio(r: dict[str, Any]) -> str:
    spread = r["per_round"]
    return f"{r['ratio']:.2f}x ({spread['min']:.2f}-{spread['max']:.2f})"


def _table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> list[str]:
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _met(goal: dict[str, Any]) -> str:
    if goal["met"] is None:
        return "not measured"
    text = "**yes**" if goal["met"] else "**no**"
    if "aim_met" in goal:
        text += " (aim met)" if goal["aim_met"] else " (aim not met)"
    return text


def markdown(data: dict[str, Any]) -> str:
    """The results as a self-contained Markdown fragment (starts at ``##``)."""
    m = data["machine"]
    p = m["packages"]
    w = data["workloads"]
    lines = ["## Benchmark results", ""]
    peers = ", ".join(
        f"{k} {p[k]}" for k in ("facet", "aiomisc", "dependency-injector")
    )
    kind = "a quick run (tiny sizes: not evidence)" if data["quick"] else "a full run"
    lines += [
        f"From {kind} of `benchmarks/run.py` on {m['date']}, tiered {p['tiered']}"
        + (f" (`{m['commit']}`)" if m["commit"] else "")
        + f"; {m['cpu']}, {m['cores']} cores, {m['python']}, {m['os']}; "
        f"anyio {p['anyio']}, trio {p['trio']}, uvloop {p['uvloop']}; peers {peers}. "
        f"Load average at start: {_load(m.get('load_average_at_start'))}, "
        f"at the end: {_load(m.get('load_average_at_end'))}; the run took "
        f"{m.get('duration_s', 0) / 60:.1f} min.",
        "",
        "Each time is the median over rounds in which every subject ran once, "
        "in rotating order, each run on a fresh event loop; a ratio is the ratio "
        "of two medians, followed by the lowest and highest per-round ratio. "
        "Only figures from this one run are compared. tiered runs with its "
        "default timeouts on.",
        "",
        "### Goals",
        "",
    ]
    lines += _table(
        ["goal", "this run", "met"],
        ([g["goal"], g["detail"], _met(g)] for g in data["goals"]),
    )
    for key, title in (
        ("overhead", "1. Overhead"),
        ("overhead_small", "1b. Overhead at a size every peer can do"),
    ):
        if key in w:
            lines += ["", *_overhead(w[key], title)]
    if "latency" in w:
        lines += ["", *_latency(w["latency"])]
    if "scaling" in w:
        lines += ["", *_scaling(w["scaling"])]
    if data.get("verification"):
        lines += ["", *_expressions(data)]
    if "importtime" in w:
        lines += ["", *_importtime(w["importtime"])]
    if "exec" in w:
        lines += ["", *_exec(w["exec"])]
    return "\n".join(lines) + "\n"


README_BEGIN = "<!-- benchmarks: written by benchmarks/run.py, do not edit -->"
README_END = "<!-- end of benchmarks -->"


def readme_summary(data: dict[str, Any]) -> str:
    """The README's excerpt of a run: the goals and workload 1's ratios."""
    m = data["machine"]
    lines = [
        README_BEGIN,
        f"Measured by `make bench` on {m['date'][:10]} ({m['cpu']}, {m['cores']} "
        f"cores, {m['python']}); the whole run is in "
        "[benchmarks/results/latest.md](benchmarks/results/latest.md).",
        "",
    ]
    lines += _table(
        ["goal", "this run", "met"],
        ([g["goal"], g["detail"], _met(g)] for g in data["goals"]),
    )
    o = data["workloads"].get("overhead")
    if o is not None:
        backends = _backends(o)
        rows = []
        for base in ("anyio_floor", "facet", "aiomisc"):
            row = [f"tiered ÷ {LABELS.get(base, base).split(' (')[0]}"]
            for b in backends:
                r = o["backends"][b]["tiered_vs"].get(base)
                row.append(_ratio(r) if r else "—")
            rows.append(row)
        lines += [
            "",
            f"{o['drivers']:,} no-op drivers in {o['tiers']} tiers, one start and "
            "stop (lower is faster):",
            "",
            *_table(["time ratio", *backends], rows),
        ]
    return "\n".join([*lines, README_END]) + "\n"


def replace_readme_summary(readme: str, summary: str) -> str:
    """``readme`` with its benchmarks excerpt replaced by ``summary``."""
    begin = readme.index(README_BEGIN)
    end = readme.index(README_END) + len(README_END) + 1
    return readme[:begin] + summary + readme[end:]


def _load(values: list[float] | None) -> str:
    return " ".join(f"{x:.2f}" for x in values) if values else "?"


def _backends(workload: dict[str, Any]) -> list[str]:
    return list(workload["backends"])


def _overhead(o: dict[str, Any], title: str) -> list[str]:
    backends = _backends(o)
    lines = [
        f"### {title}: {o['drivers']:,} no-op drivers in {o['tiers']} tiers",
        "",
        f"One full start and stop; rounds: {o['rounds']}. Milliseconds, "
        "median: total (start + stop).",
        "",
    ]
    keys: list[str] = []
    for b in backends:
        keys += [k for k in o["backends"][b]["subjects"] if k not in keys]
    rows = []
    for k in keys:
        row = [LABELS.get(k, k)]
        for b in backends:
            s = o["backends"][b]["subjects"].get(k)
            row.append(
                f"{_ms(s['total']['median'])} ({_ms(s['start']['median'])} + "
                f"{_ms(s['stop']['median'])})"
                if s
                else "—"
            )
        rows.append(row)
    lines += _table(["subject", *backends], rows)
    lines += [""]
    bases: list[str] = []
    for b in backends:
        bases += [k for k in o["backends"][b]["tiered_vs"] if k not in bases]
    rows = []
    for base in bases:
        row = [f"tiered ÷ {LABELS.get(base, base).split(' (')[0]}"]
        for b in backends:
            r = o["backends"][b]["tiered_vs"].get(base)
            row.append(_ratio(r) if r else "—")
        rows.append(row)
    if any("info_log_vs_off" in o["backends"][b] for b in backends):
        rows.append(
            [
                "tiered at INFO ÷ tiered, logging off",
                *(
                    _ratio(o["backends"][b]["info_log_vs_off"])
                    if "info_log_vs_off" in o["backends"][b]
                    else "—"
                    for b in backends
                ),
            ]
        )
    lines += _table(["ratio of total times", *backends], rows)
    info = o.get("info_log")
    if info:
        lines += [
            "",
            f"{LABELS['tiered_info_log']}: {info['how']} It ran in the first "
            f"{info['rounds']} round(s) only, and its ratio pairs those rounds "
            "with tiered's.",
        ]
    for k, why in o["skipped"].items():
        lines += ["", f"Not run: {LABELS.get(k, k)}: {why}"]
    return lines


def _latency(lat: dict[str, Any]) -> list[str]:
    backends = _backends(lat)
    low, high = lat["sleep_s"]
    lines = [
        f"### 2. Latency: {lat['drivers']} drivers in {lat['tiers']} tiers that "
        f"sleep {low * 1000:g}-{high * 1000:g} ms while starting (seed {lat['seed']})",
        "",
        f"Start-up in milliseconds (median; rounds: {lat['rounds']}, "
        "fewer for the one-by-one start), and start-up ÷ the bound, the sum "
        f"over tiers of the slowest driver: {_ms(lat['bound_s'])} ms. All in "
        f"one tier the bound is {_ms(lat['one_tier_bound_s'])} ms; one after "
        f"another it is the sum of the sleeps, {_ms(lat['sum_of_sleeps_s'])} ms.",
        "",
    ]
    keys: list[str] = []
    for b in backends:
        keys += [k for k in lat["backends"][b]["subjects"] if k not in keys]
    rows = []
    for k in keys:
        row = [LABELS.get(k, k)]
        for b in backends:
            s = lat["backends"][b]["subjects"].get(k)
            if not s:
                row.append("—")
                continue
            cell = f"{_ms(s['startup']['median'])}, {_ratio(s['vs_bound'])}"
            if "vs_own_bound" in s:
                cell += f"; own bound {s['vs_own_bound']['ratio']:.2f}x"
            row.append(cell)
        rows.append(row)
    lines += _table(["start-up (ms, ÷ bound)", *backends], rows)
    lines += [""]
    lines += _table(
        ["ratio of start-ups", *backends],
        [
            [
                "tiered ÷ the same sleeps by hand",
                *(
                    _ratio(lat["backends"][b]["tiered_vs_by_hand"])
                    if "tiered_vs_by_hand" in lat["backends"][b]
                    else "—"
                    for b in backends
                ),
            ]
        ],
    )
    return lines


def _scaling(s: dict[str, Any]) -> list[str]:
    backends = _backends(s)
    ref = s["reference"]
    lines = [
        f"### 3. Scaling: no-op drivers in {s['tiers']} tiers",
        "",
        f"Start plus stop, microseconds per driver (median; rounds: {s['rounds']}, "
        f"{s['big_rounds']} from {s['big_size']:,} drivers on), and ÷ the time per "
        f"driver at {ref:,}. The anyio floor ran beside tiered, interleaved: "
        "where its time per driver grows too, the growth comes from Python "
        "and the event loop, not from tiered. tiered with the garbage "
        "collector off is a control, to see how much of it is the collector's.",
        "",
    ]
    for key in ("tiered", "tiered_no_gc", "anyio_floor"):
        if key not in s["backends"][backends[0]]["sizes"][str(ref)]:
            continue  # results from before the control was added
        rows = []
        for n in s["sizes"]:
            row = [f"{n:,}"]
            for b in backends:
                e = s["backends"][b]["sizes"][str(n)][key]
                cell = f"{e['per_driver']['median'] * 1e6:.1f} µs"
                if "per_driver_vs_reference" in e and n != ref:
                    cell += f", {_ratio(e['per_driver_vs_reference'])}"
                row.append(cell)
            rows.append(row)
        lines += _table([f"{LABELS[key].split(' (')[0]}: drivers", *backends], rows)
        lines += [""]
    rows = [
        [
            f"{n:,}",
            *(
                _ratio(s["backends"][b]["sizes"][str(n)]["tiered_vs_anyio_floor"])
                for b in backends
            ),
        ]
        for n in s["sizes"]
    ]
    lines += _table(["tiered ÷ anyio floor: drivers", *backends], rows)
    mem = s.get("memory")
    if mem and mem["sizes"]:
        lines += [
            "",
            "Memory per driver under tracemalloc, in a separate pass, "
            "declarations included: once every tier is up (what the goal "
            "counts), then the peak until then, which also holds what "
            "start-up makes and drops, then the declarations alone. The driver "
            "functions are the user's and not counted.",
            "",
        ]
        rows = []
        for n in mem["sizes"]:
            row = [f"{n:,}"]
            for b in mem["backends"]:
                e = mem["backends"][b][str(n)]
                row.append(
                    f"{e['running_per_driver'] / 1024:.2f} KiB; peak "
                    f"{e['peak_per_driver'] / 1024:.2f}; declared "
                    f"{e['declared_per_driver'] / 1024:.2f}"
                )
            rows.append(row)
        lines += _table(["drivers", *mem["backends"]], rows)
    return lines


def _importtime(i: dict[str, Any]) -> list[str]:
    wall = i["wall_s"]
    us = i["importtime_us"]
    lines = [
        "### 5. Import time",
        "",
        f"A fresh interpreter, {i['runs']} runs each, interleaved; median wall "
        "time in milliseconds.",
        "",
    ]
    lines += _table(
        ["command", "wall (ms)"],
        [
            ["`python -c pass`", _ms(wall["python"]["median"])],
            ["`python -c 'import anyio'`", _ms(wall["anyio"]["median"])],
            ["`python -c 'import tiered'`", _ms(wall["tiered"]["median"])],
        ],
    )
    extra = wall["tiered"]["median"] - wall["anyio"]["median"]
    per_round = i.get("tiered_minus_anyio_per_round_s")
    lines += [
        "",
        f"`import tiered` adds {_ms(i['tiered_minus_python_s'])} ms to a bare "
        f"interpreter, `import anyio` {_ms(i['anyio_minus_python_s'])} ms: "
        f"tiered takes {_ms(extra)} ms more than anyio"
        + (
            f" (per round {_ms(per_round['min'])} to {_ms(per_round['max'])})"
            if per_round
            else ""
        )
        + f"; tiered ÷ anyio (whole process): {_ratio(i['tiered_vs_anyio'])}.",
    ]
    top = us.get("top_cumulative")
    cumulative = us["tiered_cumulative"]
    if top:
        profiles = us.get("profiles", 1)
        lines += [
            "",
            f"Where it goes: per module, the median of {profiles} run(s) of "
            "`python -X importtime -c 'import tiered'`, by cumulative time. "
            "`-X importtime` slows imports down: compare these with one "
            "another, not with the wall times. *Depth* is the nesting: 0 for "
            "what the command (or start-up) imported itself.",
            "",
        ]
        lines += _table(
            ["module", "depth", "cumulative (ms)", "self (ms)"],
            (
                [
                    f"`{m['module']}`",
                    str(m["depth"]),
                    f"{m['cumulative'] / 1000:.1f}",
                    f"{m['self'] / 1000:.1f}",
                ]
                for m in top
            ),
        )
        beyond = us.get("beyond_anyio")
        if beyond:
            largest = ", ".join(
                f"`{m['module']}` {m['self'] / 1000:.1f}" for m in beyond[:8]
            )
            lines += [
                "",
                f"`import tiered` loads {us['beyond_anyio_modules']} modules "
                "that `import anyio` does not (by name, from the same kind of "
                f"runs), {us['beyond_anyio_self_total'] / 1000:.1f} ms of self "
                f"time in all under `-X importtime`; the largest (self ms): "
                f"{largest}.",
            ]
    elif cumulative:  # results from before the per-module table
        heaviest = [
            (k, v) for k, v in us["slowest_cumulative"].items() if k != "tiered"
        ][:6]
        slowest = ", ".join(f"`{k}` {v / 1000:.1f}" for k, v in heaviest)
        lines += [
            "",
            f"One `python -X importtime -c 'import tiered'` puts `tiered` at "
            f"{cumulative / 1000:.1f} ms cumulative; the heaviest imports in it "
            f"(cumulative ms): {slowest}.",
        ]
    return lines


EXEC_ORDER = ("tiered_cli", "tiered_serve", "anyio_daemon", "asyncio_daemon")


def _exec(e: dict[str, Any]) -> list[str]:
    backends = _backends(e)
    subjects = e["subjects"]
    floor = e["floor"]
    label = {k: v["label"] for k, v in subjects.items()}
    floor_text = (
        f"{_ms(floor['ready']['median'])} ms to READY=1 and "
        f"{_ms(floor['exit']['median'])} ms from it to the exit"
        if floor["ready"] and floor["exit"]
        else "no figure (every run failed)"
    )
    lines = [
        f"### 6. Exec to READY: daemons as processes, {e['drivers']} no-op "
        f"drivers in {e['tiers']} tiers",
        "",
        "What the user of a daemon waits for: from just before the spawn "
        "(`subprocess.Popen`) to the moment the benchmark has the `READY=1` "
        "datagram on the `AF_UNIX` notify socket it bound for the run "
        "(`NOTIFY_SOCKET`); then SIGTERM, and from READY=1 to the exit. "
        f"Rounds: {e['rounds']}, each running every daemon once on every "
        "backend in an order rotated each round, after one untimed run of "
        "each (byte code cached). Every daemon logs at INFO to a file. "
        "Milliseconds, median, and ÷ the interpreter floor (`python -m "
        f"exec_floor`, which sends READY=1 and nothing more: {floor_text}).",
        "",
    ]
    keys = [
        k
        for k in EXEC_ORDER
        if any(k in e["backends"][b]["subjects"] for b in backends)
    ]
    rows = []
    for k in keys:
        row = [label.get(k, k)]
        for b in backends:
            s = e["backends"][b]["subjects"].get(k)
            if not s or not s["ready"]:
                row.append("—")
                continue
            cell = _ms(s["ready"]["median"])
            if "vs_floor" in s:
                cell += f", {_ratio(s['vs_floor'])}"
            row.append(cell)
        rows.append(row)
    lines += _table(["exec to READY (ms, ÷ floor)", *backends], rows)
    lines += [""]
    rows = []
    for k in keys:
        row = [label.get(k, k)]
        for b in backends:
            s = e["backends"][b]["subjects"].get(k)
            row.append(_ms(s["exit"]["median"]) if s and s["exit"] else "—")
        rows.append(row)
    lines += _table(["READY to exit (ms)", *backends], rows)
    lines += [""]
    rows = []
    for key, text in EXEC_RATIO_LABELS.items():
        cells = [
            _ratio(e["backends"][b]["ratios"][key])
            if key in e["backends"][b]["ratios"]
            else "—"
            for b in backends
        ]
        if any(c != "—" for c in cells):
            rows.append([text, *cells])
    lines += _table(["ratio of exec to READY", *backends], rows)
    lines += [
        "",
        *_table(
            ["daemon", "command", "how"],
            ([v["label"], f"`{v['command']}`", v["how"]] for v in subjects.values()),
        ),
    ]
    failures = e["failures"]
    if not failures:
        lines += ["", "Failed runs: none (every daemon sent READY=1 and exited 0)."]
    else:
        lines += [
            "",
            f"Failed runs: {len(failures)} (killed if still running; no figure; "
            "round 0 is the untimed one):",
            "",
        ]
        lines += [
            f"- {label.get(f['subject'], f['subject'])}"
            + (f" on {f['backend']}" if f["backend"] else "")
            + f", round {f['round']}: {f['why']}"
            for f in failures[:10]
        ]
        if len(failures) > 10:
            lines.append(f"- and {len(failures) - 10} more (see latest.json)")
    return lines


def _expressions(data: dict[str, Any]) -> list[str]:
    ver = data["verification"]
    lines = [
        "### 4. Peers: how each subject expresses the tiers",
        "",
        "Checked by a traced run of each subject on each backend (drivers "
        "sleeping 0-2 ms so that order within a tier varies): *in order* means "
        "every driver of a tier was up before the next tier began and stopped "
        "after it; *concurrent* means drivers of one tier started together.",
        "",
    ]
    rows = []
    for key, subject in data["subjects"].items():
        checks = ver.get(key)
        if not checks:
            continue
        rows.append(
            [
                LABELS.get(key, key),
                ", ".join(checks),
                _all_yes(
                    c["tiers_in_order"] and c["complete"] for c in checks.values()
                ),
                _all_yes(c["concurrent"] for c in checks.values()),
                subject["tiers"],
            ]
        )
    lines += _table(["subject", "backends", "in order", "concurrent", "how"], rows)
    return lines


def _all_yes(values: Iterable[bool]) -> str:
    values = list(values)
    if all(values):
        return "yes"
    if not any(values):
        return "no"
    return "on some backends"
