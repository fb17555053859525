"""The DAG plans of the benchmarks, their bounds and their order check.

``benchmarks/dag.py`` is pure: these tests give it plans and traces made by
hand, so that what workload 7 and the order checks report can be trusted
(tests/test_benchmarks.py runs them for real, at tiny size).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def benchmark_module(name: str) -> ModuleType:
    """A module of ``benchmarks/``, imported as run.py would."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


def test_dag_plan_is_seeded_and_points_down() -> None:
    """The DAG is the same for one seed, its sleeps are sleep_plan's, its requirements lie below."""
    dag = benchmark_module("dag")
    harness = benchmark_module("harness")
    args = (200, 8, (0.001, 0.020), 5, 12, 3)
    plan = dag.dag_plan(*args)
    assert plan == dag.dag_plan(*args)
    assert plan.tiers == harness.sleep_plan(200, 8, 0.001, 0.020, 5).tiers
    assert plan.requires != dag.dag_plan(*args[:4], 13, 3).requires
    assert plan.requires[0] == ((),) * len(plan.tiers[0])
    counts = set()
    for t, tier in enumerate(plan.requires):
        assert len(tier) == len(plan.tiers[t])
        for needs in tier:
            counts.add(len(needs))
            assert len(set(needs)) == len(needs)
            for u, i in needs:
                assert u < t
                assert 0 <= i < len(plan.tiers[u])
    assert counts == {0, 1, 2, 3}
    assert dag.edges(plan) == sum(len(n) for tier in plan.requires for n in tier)


def test_chain_plan_requires_one_driver_of_the_tier_below() -> None:
    """chain_plan: driver i of tier t requires driver i (mod the tier's size) of tier t-1."""
    dag = benchmark_module("dag")
    harness = benchmark_module("harness")
    chain = dag.chain_plan(harness.noop_plan(7, 3))  # tiers of 3, 2 and 2
    assert chain.requires == (
        ((), (), ()),
        (((0, 0),), ((0, 1),)),
        (((1, 0),), ((1, 1),)),
    )
    assert dag.edges(chain) == 4


def test_critical_path_is_the_longest_chain_of_sleeps() -> None:
    """The critical path follows requirements, not tiers: a long driver alone beats a chain."""
    dag = benchmark_module("dag")
    harness = benchmark_module("harness")
    requires = (((), ()), (((0, 0),),), (((1, 0),), ()))
    plan = harness.Plan(((0.001, 0.004), (0.001,), (0.001, 0.005)), None, requires)
    # chains: t0d0 -> t1d0 -> t2d0 = 3 ms; t2d1 alone = 5 ms; t0d1 alone = 4 ms
    assert dag.critical_path(plan) == (pytest.approx(0.005), 1)
    assert plan.bound == pytest.approx(0.004 + 0.001 + 0.005)
    longer = harness.Plan(((0.003, 0.004), (0.001,), (0.001, 0.002)), None, requires)
    assert dag.critical_path(longer) == (pytest.approx(0.005), 3)
    assert dag.critical_path(harness.Plan(((0.002,), (0.003,)))) == (
        pytest.approx(0.003),
        1,
    )


ORDER_PLAN_REQUIRES = (((), ()), (((0, 0),),))
"""Two drivers in tier 0, and one in tier 1 that requires only t0d0."""


@pytest.mark.parametrize(
    ("trace", "verdict"),
    [
        (  # the barrier: t1d0 waits for all of tier 0
            "0.0b 0.1b 0.0r 0.1r 1.0b 1.0r 1.0s 0.0s 0.1s",
            {"requirements_first": True, "dependents_first": True, "barrier": True},
        ),
        (  # no barrier: t1d0 begins once t0d0 is up, before t0d1 is
            "0.0b 0.1b 0.0r 1.0b 0.1r 1.0r 1.0s 0.1s 0.0s",
            {"requirements_first": True, "dependents_first": True, "barrier": False},
        ),
        (  # t1d0 begins before what it requires is up
            "0.0b 0.1b 1.0b 0.0r 0.1r 1.0r 1.0s 0.0s 0.1s",
            {"requirements_first": False, "barrier": False},
        ),
        (  # t0d0 stops before t1d0, which requires it
            "0.0b 0.1b 0.0r 0.1r 1.0b 1.0r 0.0s 1.0s 0.1s",
            {"requirements_first": True, "dependents_first": False},
        ),
        (  # t0d1 never stops: incomplete, and nothing else is claimed
            "0.0b 0.1b 0.0r 0.1r 1.0b 1.0r 1.0s 0.0s",
            {
                "complete": False,
                "requirements_first": False,
                "barrier": False,
                "concurrent": False,
            },
        ),
        (  # one at a time: in order, but nothing concurrent
            "0.0b 0.0r 0.1b 0.1r 1.0b 1.0r 1.0s 0.0s 0.1s",
            {"barrier": True, "concurrent": False},
        ),
    ],
)
def test_check_order_reads_what_happened(trace: str, verdict: dict[str, bool]) -> None:
    """check_order catches a start before a requirement, a stop after one, a barrier."""
    dag = benchmark_module("dag")
    harness = benchmark_module("harness")
    plan = harness.Plan(((0.0, 0.0), (0.0,)), None, ORDER_PLAN_REQUIRES)
    events = {"b": harness.BEGIN, "r": harness.READY, "s": harness.STOP}
    marks = [(int(word[0]), int(word[2]), events[word[3]]) for word in trace.split()]
    check = dag.check_order(plan, marks)
    expected = {"complete": True, "concurrent": True, **verdict}
    assert {k: check[k] for k in expected} == expected
