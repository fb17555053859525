"""How a plan reads: the text of ``tiered check`` and the graphs of ``tiered graph``.

Apart from ``_plan`` because only the command line and users who print a
plan need it: a daemon's start-up does not import it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._plan import Plan

__all__ = ["plan_dot", "plan_mermaid", "plan_text"]


def plan_text(plan: Plan) -> str:
    """The plan as ``tiered check`` prints it: tiers, then each driver's options."""
    count = len(plan.drivers)
    lines = [
        f"runtime {plan.name!r}: {count} driver{'s' * (count != 1)} "
        f"in {len(plan.tiers)} tier{'s' * (len(plan.tiers) != 1)}"
    ]
    for k, names in enumerate(plan.tiers):
        lines.append(f"tier {k}:" + ("" if names else " (empty)"))
        for name in names:
            d = plan.drivers[name]
            extra = []
            if d.requires:
                extra.append("requires " + ", ".join(d.requires))
            if d.after:
                extra.append("after " + ", ".join(d.after))
            if d.optional:
                extra.append("optional")
            if d.inferred:
                extra.append("tier inferred")
            extra.append(
                f"start {_seconds(d.start_timeout)}, stop {_seconds(d.stop_timeout)}"
            )
            if d.restart is not None:
                r = d.restart
                extra.append(
                    f"restart up to {r.max_restarts} in {_seconds(r.window)}, "
                    f"delay {r.delay:g}s to {r.max_delay:g}s"
                )
            lines.append(f"  {name}: " + "; ".join(extra))
    return "\n".join(lines)


def plan_mermaid(plan: Plan) -> str:
    """A Mermaid flowchart: a box per tier, an arrow to each requirement, dashed for after."""
    ids = {name: f"d{i}" for i, name in enumerate(plan.drivers)}
    lines = ["flowchart BT"]
    for k, names in enumerate(plan.tiers):
        if not names:
            continue
        lines.append(f'  subgraph tier{k}["tier {k}"]')
        lines += [f'    {ids[n]}["{_mermaid_label(n)}"]' for n in names]
        lines.append("  end")
    for name, d in plan.drivers.items():
        lines += [f"  {ids[name]} --> {ids[r]}" for r in d.requires]
        lines += [f"  {ids[name]} -.->|after| {ids[r]}" for r in d.after]
    return "\n".join(lines) + "\n"


def plan_dot(plan: Plan) -> str:
    """A Graphviz digraph: a cluster per tier, an edge to each requirement, dashed for after."""
    lines = [
        f"digraph {_dot_id(plan.name)} {{",
        "  rankdir=BT;",
        "  node [shape=box];",
    ]
    for k, names in enumerate(plan.tiers):
        if not names:
            continue
        lines.append(f'  subgraph cluster_tier{k} {{ label="tier {k}";')
        lines += [f"    {_dot_id(n)};" for n in names]
        lines.append("  }")
    for name, d in plan.drivers.items():
        lines += [f"  {_dot_id(name)} -> {_dot_id(r)};" for r in d.requires]
        lines += [
            f'  {_dot_id(name)} -> {_dot_id(r)} [style=dashed, label="after"];'
            for r in d.after
        ]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_label(name: str) -> str:
    return name.replace('"', "#quot;")


def _dot_id(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _seconds(value: float) -> str:
    return "no limit" if math.isinf(value) else f"{value:g}s"
