"""The Markdown sections of the workloads that time processes: 5 and 6."""

from __future__ import annotations

from typing import Any

from tables import backends_of, ms, ratio_cell, table

EXEC_RATIO_LABELS = {
    "tiered_cli_vs_anyio_daemon": "`tiered run` ÷ anyio by hand",
    "tiered_serve_vs_anyio_daemon": "`serve()` ÷ anyio by hand",
    "tiered_cli_vs_tiered_serve": "`tiered run` ÷ `serve()`",
    "anyio_daemon_vs_asyncio_daemon": "anyio by hand ÷ asyncio by hand",
}


def importtime_section(i: dict[str, Any]) -> list[str]:
    """Workload 5: wall times, then where `import tiered` goes."""
    wall = i["wall_s"]
    us = i["importtime_us"]
    lines = [
        "### 5. Import time",
        "",
        f"A fresh interpreter, {i['runs']} runs each, interleaved; median wall "
        "time in milliseconds.",
        "",
    ]
    lines += table(
        ["command", "wall (ms)"],
        [
            ["`python -c pass`", ms(wall["python"]["median"])],
            ["`python -c 'import anyio'`", ms(wall["anyio"]["median"])],
            ["`python -c 'import tiered'`", ms(wall["tiered"]["median"])],
            *(
                [
                    [
                        "an anyio daemon's imports (by hand)",
                        ms(wall["anyio_daemon"]["median"]),
                    ],
                    ["a tiered daemon's imports", ms(wall["tiered_daemon"]["median"])],
                ]
                if "tiered_daemon" in wall
                else []
            ),
        ],
    )
    extra = wall["tiered"]["median"] - wall["anyio"]["median"]
    per_round = i.get("tiered_minus_anyio_per_round_s")
    lines += [
        "",
        f"`import tiered` adds {ms(i['tiered_minus_python_s'])} ms to a bare "
        f"interpreter, `import anyio` {ms(i['anyio_minus_python_s'])} ms: "
        f"tiered takes {ms(extra)} ms more than anyio"
        + (
            f" (per round {ms(per_round['min'])} to {ms(per_round['max'])})"
            if per_round
            else ""
        )
        + f"; tiered ÷ anyio (whole process): {ratio_cell(i['tiered_vs_anyio'])}.",
    ]
    if "daemon_minus_anyio_daemon_s" in i:
        # import tiered resolves its names on first use: what counts is what a
        # daemon imports, `logging, signal, socket, anyio` plus, by hand, the
        # anyio names workload 6's daemon uses, or tiered's Runtime and serve()
        lines += [
            "",
            "`import tiered` itself imports no submodule (its names load on "
            "first use), so what a daemon pays is measured too: `import "
            "logging, signal, socket, anyio` and the anyio names the daemon by "
            "hand uses, against the same plus `tiered.Runtime` and "
            f"`tiered.serve`: tiered's share is {ms(i['daemon_minus_anyio_daemon_s'])} ms.",
        ]
    return lines + _importtime_profile(us)


def _importtime_profile(us: dict[str, Any]) -> list[str]:
    """The ``-X importtime`` part of workload 5's section."""
    lines: list[str] = []
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
        lines += table(
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


def exec_section(e: dict[str, Any]) -> list[str]:
    """Workload 6: exec to READY, READY to exit, the ratios and the daemons."""
    backends = backends_of(e)
    subjects = e["subjects"]
    floor = e["floor"]
    label = {k: v["label"] for k, v in subjects.items()}
    floor_text = (
        f"{ms(floor['ready']['median'])} ms to READY=1 and "
        f"{ms(floor['exit']['median'])} ms from it to the exit"
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
            cell = ms(s["ready"]["median"])
            if "vs_floor" in s:
                cell += f", {ratio_cell(s['vs_floor'])}"
            row.append(cell)
        rows.append(row)
    lines += table(["exec to READY (ms, ÷ floor)", *backends], rows)
    lines += [""]
    rows = []
    for k in keys:
        row = [label.get(k, k)]
        for b in backends:
            s = e["backends"][b]["subjects"].get(k)
            row.append(ms(s["exit"]["median"]) if s and s["exit"] else "—")
        rows.append(row)
    lines += table(["READY to exit (ms)", *backends], rows)
    lines += [""]
    rows = []
    for key, text in EXEC_RATIO_LABELS.items():
        cells = [
            ratio_cell(e["backends"][b]["ratios"][key])
            if key in e["backends"][b]["ratios"]
            else "—"
            for b in backends
        ]
        if any(c != "—" for c in cells):
            rows.append([text, *cells])
    lines += table(["ratio of exec to READY", *backends], rows)
    lines += [
        "",
        *table(
            ["daemon", "command", "how"],
            ([v["label"], f"`{v['command']}`", v["how"]] for v in subjects.values()),
        ),
    ]
    return lines + _exec_failures(e["failures"], label)


def _exec_failures(failures: list[dict[str, Any]], label: dict[str, str]) -> list[str]:
    """The failed runs of workload 6, the first ten of them."""
    lines: list[str] = []
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
