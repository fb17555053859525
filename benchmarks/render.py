"""The machine, and the results as Markdown: the fragment and the README's excerpt.

The goals are in ``goals.py``, each workload's section in ``sections.py``
(in-process workloads) or ``process_sections.py`` (processes), and the
helpers every table uses in ``tables.py``.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from process_sections import exec_section, importtime_section
from sections import dag_section, latency_section, overhead_section, scaling_section
from tables import all_yes, backends_of, label, ratio_cell, short, table

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


def _met(goal: dict[str, Any]) -> str:
    """A goal's last column."""
    if goal["met"] is None:
        return "not measured"
    text = "**yes**" if goal["met"] else "**no**"
    if "aim_met" in goal:
        text += " (aim met)" if goal["aim_met"] else " (aim not met)"
    return text


def _daemons_from(where: dict[str, str] | None) -> str:
    """The header's note that the daemons ran another version (``--daemons-from``)."""
    if where is None:
        return ""
    return (
        f", but the daemons of workloads 5 and 6 imported tiered from the `src/` "
        f"of `{where['rev']}` (`--daemons-from`)"
    )


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
        + _daemons_from(data["settings"].get("daemons_from"))
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
    lines += table(
        ["goal", "this run", "met"],
        ([g["goal"], g["detail"], _met(g)] for g in data["goals"]),
    )
    for key, title in (
        ("overhead", "1. Overhead"),
        ("overhead_small", "1b. Overhead at a size every peer can do"),
    ):
        if key in w:
            lines += ["", *overhead_section(w[key], title)]
    if "latency" in w:
        lines += ["", *latency_section(w["latency"])]
    if "scaling" in w:
        lines += ["", *scaling_section(w["scaling"])]
    if data.get("verification"):
        lines += ["", *_expressions(data)]
    if "importtime" in w:
        lines += ["", *importtime_section(w["importtime"])]
    if "exec" in w:
        lines += ["", *exec_section(w["exec"])]
    if "dag" in w or data.get("dag_verification"):
        lines += ["", *dag_section(w.get("dag"), data.get("dag_verification"))]
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
    lines += table(
        ["goal", "this run", "met"],
        ([g["goal"], g["detail"], _met(g)] for g in data["goals"]),
    )
    o = data["workloads"].get("overhead")
    if o is not None:
        backends = backends_of(o)
        rows = []
        # tiered's own row, then its drivers written as classes (the peers' shape)
        for text, part, base in (
            (f"tiered ÷ {short('anyio_floor')}", "tiered_vs", "anyio_floor"),
            ("tiered ÷ facet", "tiered_vs", "facet"),
            ("tiered ÷ aiomisc", "tiered_vs", "aiomisc"),
            ("tiered, drivers as classes ÷ facet", "classes_vs", "facet"),
            ("tiered, drivers as classes ÷ aiomisc", "classes_vs", "aiomisc"),
        ):
            cells = [o["backends"][b].get(part, {}).get(base) for b in backends]
            if any(cells):
                rows.append([text, *(ratio_cell(r) if r else "—" for r in cells)])
        lines += [
            "",
            f"{o['drivers']:,} no-op drivers in {o['tiers']} tiers, one start and "
            "stop (lower is faster):",
            "",
            *table(["time ratio", *backends], rows),
        ]
    return "\n".join([*lines, README_END]) + "\n"


def replace_readme_summary(readme: str, summary: str) -> str:
    """``readme`` with its benchmarks excerpt replaced by ``summary``."""
    begin = readme.index(README_BEGIN)
    end = readme.index(README_END) + len(README_END) + 1
    return readme[:begin] + summary + readme[end:]


def _load(values: list[float] | None) -> str:
    return " ".join(f"{x:.2f}" for x in values) if values else "?"


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
                label(key),
                ", ".join(checks),
                all_yes(c["tiers_in_order"] and c["complete"] for c in checks.values()),
                all_yes(c["concurrent"] for c in checks.values()),
                subject["tiers"],
            ]
        )
    lines += table(["subject", "backends", "in order", "concurrent", "how"], rows)
    return lines
