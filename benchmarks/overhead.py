"""Workload 1: overhead, no-op drivers, one full start and stop per run.

Every subject of :data:`workloads.ALL_SUBJECTS` does the same no-op drivers
in tiers, interleaved; tiered also runs with its logger at INFO (in the
first few rounds), and on its dependency schedule.

The dependency schedule needs requirements to have anything to schedule:
without any, every driver would begin at once and the run would measure a
flat start, not the schedule.  So it runs on the same drivers with one
requirement each (:func:`dag.chain_plan`: driver i of tier t requires
driver i of tier t-1), and tiered's tiers schedule runs on those very
declarations too.  "dependencies ÷ tiers" pairs the two: the same
runtime, only ``schedule=`` differs, so the ratio is what the schedule
costs, not what declaring and checking the requirements costs (that is
"tiers, one requirement each ÷ tiered").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import dag
import subjects
from harness import Case, Timing, interleave, noop_plan, ratio, timing_summary
from workloads import ALL_SUBJECTS

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from harness import Backend

# what "tiered ÷ X" is reported against, in this order
OVERHEAD_BASES = (
    "anyio_floor",
    "native_floor",
    "facet",
    "aiomisc",
    "dependency_injector",
    "exitstack",
)
# tiered with drivers written as classes, and what it is reported against
CLASSES = subjects.TIERED_CLASSES.key
CLASSES_BASES = ("facet", "aiomisc", "tiered")
# tiered's tiers schedule on the chain plan, and its dependency schedule
REQUIRES = "tiered_requires"
DEPENDENCIES = "tiered_dependencies"
# what the dependency schedule is reported against: the same declarations
# on the tiers schedule first (the goal's), then tiered without requirements
DEPENDENCY_BASES = (REQUIRES, "tiered")


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
    chain = dag.chain_plan(plan)
    cases: list[Case] = []
    skipped: dict[str, str] = {}
    for s in ALL_SUBJECTS:
        if s.max_drivers is not None and drivers > s.max_drivers:
            skipped[s.key] = s.too_big
        else:
            cases.append(Case(s.key, s, plan))
    cases += [
        Case(REQUIRES, subjects.TIERED, chain),
        Case(DEPENDENCIES, subjects.TIERED_DEPENDENCIES, chain),
    ]
    if info_log_rounds:
        info = subjects.TIERED_INFO_LOG
        cases.append(Case(info.key, info, plan, rounds=info_log_rounds))
    runs = interleave(cases, backends, rounds, progress)
    result: dict[str, Any] = {
        "drivers": drivers,
        "tiers": tiers,
        "rounds": rounds,
        "skipped": skipped,
        # what each case declared: the chain plan's, or none
        "requirements": {c.key: dag.edges(c.plan) for c in cases},
        "backends": {},
    }
    if info_log_rounds:
        result["info_log"] = {
            "rounds": min(info_log_rounds, rounds),
            "how": subjects.TIERED_INFO_LOG.tiers,
        }
    for backend, by_case in runs.items():
        result["backends"][backend] = _backend_entry(by_case)
    return result


def _backend_entry(by_case: dict[str, list[Timing]]) -> dict[str, Any]:
    """One backend's summaries and ratios of total times."""
    totals = {k: [t.total for t in v] for k, v in by_case.items()}
    entry: dict[str, Any] = {
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
    if CLASSES in totals:
        # the peers' shape: one object per driver, start and stop methods
        entry["classes_vs"] = {
            base: ratio(totals[CLASSES], totals[base])
            for base in CLASSES_BASES
            if base in totals
        }
    if DEPENDENCIES in totals:
        entry["dependencies_vs"] = {
            base: ratio(totals[DEPENDENCIES], totals[base])
            for base in DEPENDENCY_BASES
            if base in totals
        }
    if REQUIRES in totals and "tiered" in totals:
        entry["requires_vs_tiered"] = ratio(totals[REQUIRES], totals["tiered"])
    info_key = subjects.TIERED_INFO_LOG.key
    if info_key in totals and "tiered" in totals:
        # paired round by round: only the rounds the INFO runs took part in
        entry["info_log_vs_off"] = ratio(totals[info_key], totals["tiered"])
    return entry
