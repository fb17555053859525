"""How the results read: labels, times, ratios and Markdown tables."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

LABELS = {
    "tiered": "tiered",
    "tiered_classes": "tiered, drivers written as classes (`tiered.Driver`)",
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
    "tiered_requires": "tiered, tiers, one requirement each",
    "tiered_dependencies": 'tiered, `schedule="dependencies"`, one requirement each',
}
# workload 7's cases, and the subjects of its order check
DAG_LABELS = {
    "tiered": 'tiered, `schedule="tiers"`',
    "tiered_tiers": 'tiered, `schedule="tiers"`',
    "tiered_dependencies": 'tiered, `schedule="dependencies"`',
    "dag_by_hand": "by hand (an anyio task and event per driver)",
}
OVERHEAD_LIMIT, OVERHEAD_AIM = 1.5, 1.2


def ms(seconds: float) -> str:
    """Seconds as milliseconds, with as many digits as they deserve."""
    ms = seconds * 1000
    if ms >= 100:
        return f"{ms:,.0f}"
    if ms >= 10:
        return f"{ms:.1f}"
    return f"{ms:.2f}"


def ratio_cell(r: dict[str, Any]) -> str:
    """A ratio of medians, then the lowest and highest per-round ratio."""
    spread = r["per_round"]
    return f"{r['ratio']:.2f}x ({spread['min']:.2f}-{spread['max']:.2f})"


def table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> list[str]:
    """A Markdown table's lines."""
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def backends_of(workload: dict[str, Any]) -> list[str]:
    """The backends a workload ran on, in the order it ran them."""
    return list(workload["backends"])


def label(key: str) -> str:
    """What the tables call a subject or a case."""
    return LABELS.get(key, key)


def short(key: str) -> str:
    """A subject's label without what is in brackets, for "tiered ÷ X" rows."""
    return label(key).split(" (")[0]


def all_yes(values: Iterable[bool]) -> str:
    """ "yes", "no", or "on some backends"."""
    values = list(values)
    if all(values):
        return "yes"
    if not any(values):
        return "no"
    return "on some backends"
