"""The machine, the goals of issue 5, and the Markdown fragment of the results.

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
}
OVERHEAD_LIMIT, OVERHEAD_AIM = 1.5, 1.2
LATENCY_LIMIT = 1.02
SCALING_LIMIT = 1.25
MEMORY_LIMIT = 4096


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
    return f"{value:.3f}x"


def goals(workloads: dict[str, Any]) -> list[dict[str, Any]]:
    """Each goal of issue 5, and whether this run met it."""
    over = workloads.get("overhead")
    lat = workloads.get("latency")
    scal = workloads.get("scaling")

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
    return [overhead, latency, scaling_time, scaling_memory, peers]


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
    lines += _table(["ratio of total times", *backends], rows)
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
    heaviest = [
        (k, v)
        for k, v in i["importtime_us"]["slowest_cumulative"].items()
        if k != "tiered"
    ][:6]
    slowest = ", ".join(f"`{k}` {v / 1000:.1f}" for k, v in heaviest)
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
    cumulative = i["importtime_us"]["tiered_cumulative"]
    lines += [
        "",
        f"`import tiered` adds {_ms(i['tiered_minus_python_s'])} ms to a bare "
        f"interpreter, `import anyio` {_ms(i['anyio_minus_python_s'])} ms; "
        f"tiered ÷ anyio (whole process): {_ratio(i['tiered_vs_anyio'])}. "
        + (
            f"One `python -X importtime -c 'import tiered'` puts `tiered` at "
            f"{cumulative / 1000:.1f} ms cumulative; the heaviest imports in it "
            f"(cumulative ms): {slowest}."
            if cumulative
            else ""
        ),
    ]
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
