"""The Markdown sections of the in-process workloads: 1, 2, 3 and 7."""

from __future__ import annotations

from typing import Any

from tables import (
    DAG_LABELS,
    LABELS,
    all_yes,
    backends_of,
    label,
    ms,
    ratio_cell,
    short,
    table,
)


def _ratio_row(
    text: str, w: dict[str, Any], backends: list[str], *path: str
) -> list[str]:
    """One row: the ratio at ``path`` in each backend's entry, or a dash."""
    cells = []
    for b in backends:
        r: Any = w["backends"][b]
        for step in path:
            r = r.get(step) if isinstance(r, dict) else None
        cells.append(ratio_cell(r) if r else "—")
    return [text, *cells]


def _keys(w: dict[str, Any], backends: list[str], part: str) -> list[str]:
    """The keys of ``part`` in every backend's entry, in the order first seen."""
    keys: list[str] = []
    for b in backends:
        keys += [k for k in w["backends"][b].get(part, {}) if k not in keys]
    return keys


def overhead_section(o: dict[str, Any], title: str) -> list[str]:
    """Workload 1 (or 1b): the subjects' times, then the ratios."""
    backends = backends_of(o)
    lines = [
        f"### {title}: {o['drivers']:,} no-op drivers in {o['tiers']} tiers",
        "",
        f"One full start and stop; rounds: {o['rounds']}. Milliseconds, "
        "median: total (start + stop).",
        "",
    ]
    rows = []
    for k in _keys(o, backends, "subjects"):
        row = [label(k)]
        for b in backends:
            s = o["backends"][b]["subjects"].get(k)
            row.append(
                f"{ms(s['total']['median'])} ({ms(s['start']['median'])} + "
                f"{ms(s['stop']['median'])})"
                if s
                else "—"
            )
        rows.append(row)
    lines += table(["subject", *backends], rows)
    rows = [
        _ratio_row(f"tiered ÷ {short(base)}", o, backends, "tiered_vs", base)
        for base in _keys(o, backends, "tiered_vs")
    ]
    rows += [
        _ratio_row(text, o, backends, *path)
        for text, path in MORE_ROWS
        if any(_has(o["backends"][b], path) for b in backends)
    ]
    lines += ["", *table(["ratio of total times", *backends], rows)]
    declared = o.get("requirements", {}).get("tiered_dependencies")
    if declared and _keys(o, backends, "dependencies_vs"):
        lines += [
            "",
            "The two rows marked *one requirement each* ran the same drivers "
            "with the same declarations, one requirement each: driver i of "
            f"tier t (t > 0) requires driver i of tier t-1 ({declared:,} "
            "requirements in all), so that the dependency schedule has "
            "something to schedule; only `schedule=` differs between them.",
        ]
    info = o.get("info_log")
    if info:
        lines += [
            "",
            f"{LABELS['tiered_info_log']}: {info['how']} It ran in the first "
            f"{info['rounds']} round(s) only, and its ratio pairs those rounds "
            "with tiered's.",
        ]
    for k, why in o["skipped"].items():
        lines += ["", f"Not run: {label(k)}: {why}"]
    return lines


# workload 1's rows beyond "tiered ÷ X": (text, path in a backend's entry)
MORE_ROWS = (
    ("tiered, drivers as classes ÷ facet", ("classes_vs", "facet")),
    ("tiered, drivers as classes ÷ aiomisc", ("classes_vs", "aiomisc")),
    (
        "tiered, drivers as classes ÷ tiered (generator drivers)",
        ("classes_vs", "tiered"),
    ),
    (
        "tiered, dependencies ÷ tiers, the same requirements",
        ("dependencies_vs", "tiered_requires"),
    ),
    ("tiered, dependencies ÷ tiered", ("dependencies_vs", "tiered")),
    ("tiered, tiers, one requirement each ÷ tiered", ("requires_vs_tiered",)),
    ("tiered at INFO ÷ tiered, logging off", ("info_log_vs_off",)),
)


def _has(entry: dict[str, Any], path: tuple[str, ...]) -> bool:
    r: Any = entry
    for step in path:
        r = r.get(step) if isinstance(r, dict) else None
    return r is not None


def latency_section(lat: dict[str, Any]) -> list[str]:
    backends = backends_of(lat)
    low, high = lat["sleep_s"]
    lines = [
        f"### 2. Latency: {lat['drivers']} drivers in {lat['tiers']} tiers that "
        f"sleep {low * 1000:g}-{high * 1000:g} ms while starting (seed {lat['seed']})",
        "",
        f"Start-up in milliseconds (median; rounds: {lat['rounds']}, "
        "fewer for the one-by-one start), and start-up ÷ the bound, the sum "
        f"over tiers of the slowest driver: {ms(lat['bound_s'])} ms. All in "
        f"one tier the bound is {ms(lat['one_tier_bound_s'])} ms; one after "
        f"another it is the sum of the sleeps, {ms(lat['sum_of_sleeps_s'])} ms.",
        "",
    ]
    keys: list[str] = []
    for b in backends:
        keys += [k for k in lat["backends"][b]["subjects"] if k not in keys]
    rows = []
    for k in keys:
        row = [label(k)]
        for b in backends:
            s = lat["backends"][b]["subjects"].get(k)
            if not s:
                row.append("—")
                continue
            cell = f"{ms(s['startup']['median'])}, {ratio_cell(s['vs_bound'])}"
            if "vs_own_bound" in s:
                cell += f"; own bound {s['vs_own_bound']['ratio']:.2f}x"
            row.append(cell)
        rows.append(row)
    lines += table(["start-up (ms, ÷ bound)", *backends], rows)
    lines += [""]
    lines += table(
        ["ratio of start-ups", *backends],
        [
            [
                "tiered ÷ the same sleeps by hand",
                *(
                    ratio_cell(lat["backends"][b]["tiered_vs_by_hand"])
                    if "tiered_vs_by_hand" in lat["backends"][b]
                    else "—"
                    for b in backends
                ),
            ]
        ],
    )
    return lines


def scaling_section(s: dict[str, Any]) -> list[str]:
    backends = backends_of(s)
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
                    cell += f", {ratio_cell(e['per_driver_vs_reference'])}"
                row.append(cell)
            rows.append(row)
        lines += table([f"{LABELS[key].split(' (')[0]}: drivers", *backends], rows)
        lines += [""]
    rows = [
        [
            f"{n:,}",
            *(
                ratio_cell(s["backends"][b]["sizes"][str(n)]["tiered_vs_anyio_floor"])
                for b in backends
            ),
        ]
        for n in s["sizes"]
    ]
    lines += table(["tiered ÷ anyio floor: drivers", *backends], rows)
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
        lines += table(["drivers", *mem["backends"]], rows)
    return lines


DAG_ORDER = ("tiered_tiers", "tiered_dependencies", "dag_by_hand")
DAG_RATIO_ROWS = (
    ("tiers ÷ dependencies", "tiered_tiers_vs_tiered_dependencies"),
    ("dependencies ÷ by hand", "tiered_dependencies_vs_dag_by_hand"),
    ("tiers ÷ by hand", "tiered_tiers_vs_dag_by_hand"),
)


def dag_section(d: dict[str, Any] | None, order: dict[str, Any] | None) -> list[str]:
    """Workload 7: the seeded DAG's start-ups and bounds; then the order check."""
    lines = ["### 7. Dependency schedule: a seeded DAG"]
    if d is not None:
        lines[0] += f" of {d['drivers']} drivers in {d['tiers']} tiers"
        lines += ["", *_dag_figures(d)]
    if order is not None:
        lines += ["", *_dag_order(order)]
    return lines


def _dag_figures(d: dict[str, Any]) -> list[str]:
    backends = backends_of(d)
    low, high = d["sleep_s"]
    lines = [
        f"Workload 2's drivers and sleeps ({low * 1000:g}-{high * 1000:g} ms, "
        f"seed {d['sleep_seed']}), each driver requiring 0 to "
        f"{d['most_requires']} drivers of lower tiers, drawn uniformly with "
        f"seed {d['requires_seed']}: {d['requirements']} requirements; "
        f"{d['without_requirements_above_tier_0']} drivers above tier 0 "
        "require nothing. Start-up in milliseconds (median; rounds: "
        f"{d['rounds']}), ÷ the tier bound (the sum over tiers of each tier's "
        f"slowest driver: {ms(d['tier_bound_s'])} ms) and ÷ the critical-path "
        "bound (the longest chain of sleeps through requirements: "
        f"{ms(d['critical_path_s'])} ms, {d['critical_path_drivers']} drivers).",
        "",
    ]
    rows = []
    for k in DAG_ORDER:
        row = [DAG_LABELS[k]]
        for b in backends:
            s = d["backends"][b]["subjects"].get(k)
            row.append(
                f"{ms(s['startup']['median'])}; {ratio_cell(s['vs_tier_bound'])}; "
                f"{ratio_cell(s['vs_critical_path'])}"
                if s
                else "—"
            )
        rows.append(row)
    lines += table(["start-up (ms; ÷ tier bound; ÷ critical path)", *backends], rows)
    rows = [
        _ratio_row(text, d, backends, "ratios", key) for text, key in DAG_RATIO_ROWS
    ]
    lines += ["", *table(["ratio of start-ups", *backends], rows)]
    rows = [
        [
            DAG_LABELS[k],
            *(
                ms(d["backends"][b]["subjects"][k]["stop"]["median"])
                if k in d["backends"][b]["subjects"]
                else "—"
                for b in backends
            ),
        ]
        for k in DAG_ORDER
    ]
    lines += ["", *table(["stop (ms)", *backends], rows)]
    return lines


def _dag_order(order: dict[str, Any]) -> list[str]:
    lines = [
        "Checked by a traced run of each subject on each backend, on a DAG "
        f"drawn the same way ({order['drivers']} drivers in {order['tiers']} "
        f"tiers, {order['requirements']} requirements, sleeps of 0-2 ms): "
        "*requirements first* means no driver began before every driver it "
        "requires was up; *dependents first* means no driver stopped before "
        "every driver that requires it had stopped; *barrier* means no driver "
        "began before every driver of the tiers below it was up.",
        "",
    ]
    rows = []
    for key, checks in order["subjects"].items():
        if not checks:
            continue
        rows.append(
            [
                DAG_LABELS.get(key, key),
                ", ".join(checks),
                all_yes(
                    c["complete"] and c["requirements_first"] for c in checks.values()
                ),
                all_yes(c["dependents_first"] for c in checks.values()),
                all_yes(c["barrier"] for c in checks.values()),
                all_yes(c["concurrent"] for c in checks.values()),
            ]
        )
    header = ["subject", "backends", "requirements first", "dependents first"]
    lines += table([*header, "barrier", "concurrent"], rows)
    return lines
