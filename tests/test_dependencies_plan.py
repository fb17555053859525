"""``after=`` in the plan, ``tiered check`` and ``tiered graph``, and bad limits (issue 12).

``after=`` follows the rule of ``requires``: a lower tier only, inferred
tiers count it, a cycle through it is reported; the plan's text says
"after X" and its graphs draw it dashed.  ``max_concurrent_starts`` is an
integer >= 1 or None.  At run time: tests/test_dependencies.py.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import pytest

import tiered
from support.daemon import ROOT, child_env
from support.probes import Probe, runtime
from support.recorder import Recorder

if TYPE_CHECKING:
    from pathlib import Path


# -- after= in the plan -------------------------------------------------------------


def plan_of(*drivers: tiered.Driver) -> tiered.Plan:
    return runtime(*drivers).check()


@pytest.mark.parametrize("tier", [1, 2])
def test_after_a_driver_of_the_same_or_a_higher_tier_is_a_config_error(
    tier: int,
) -> None:
    """after follows the requires rule: a lower tier only, both drivers named."""
    rec = Recorder()
    with pytest.raises(tiered.ConfigError) as info:
        plan_of(Probe(rec, "a", tier), Probe(rec, "b", 1, after=("a",)))
    assert str(info.value) == (
        f"runtime 'dag': b (tier 1) is after a (tier {tier}): a driver may only be "
        f"after drivers of lower tiers; put 'a' in a tier below 1, or raise 'b' "
        f"above tier {tier} (or drop its tier= to infer it)"
    )


def test_an_inferred_tier_counts_after() -> None:
    """An inferred tier is one above the highest of what it requires and is after."""
    rec = Recorder()
    plan = plan_of(
        Probe(rec, "low", 0),
        Probe(rec, "high", 4),
        Probe(rec, "x", requires=("low",), after=("high",)),
    )
    assert plan.drivers["x"].tier == 5
    assert plan.drivers["x"].inferred
    assert plan.drivers["x"].after == ("high",)
    assert plan.drivers["x"].requires == ("low",)


def test_a_cycle_through_after_is_reported_with_its_path() -> None:
    """a requires b, b is after a (both inferred): a cycle, its whole path shown."""
    rec = Recorder()
    with pytest.raises(tiered.ConfigError, match=r"cycle: a -> b -> a"):
        plan_of(Probe(rec, "a", requires=("b",)), Probe(rec, "b", after=("a",)))


def test_after_and_requires_of_the_same_driver_is_a_config_error() -> None:
    """Naming a driver in both requires and after is refused: requires already orders."""
    rec = Recorder()
    with pytest.raises(tiered.ConfigError, match="both requires and is after 'a'"):
        plan_of(Probe(rec, "a", 0), Probe(rec, "b", 1, requires=("a",), after=("a",)))


def test_after_an_unknown_driver_is_a_config_error() -> None:
    """after naming no driver is refused with a suggestion."""
    rec = Recorder()
    with pytest.raises(tiered.ConfigError, match=r"is after 'netwrok'.*'network'"):
        plan_of(Probe(rec, "network", 0), Probe(rec, "b", 1, after=("netwrok",)))


def test_check_and_graph_show_after_apart_from_requires() -> None:
    """to_text says "after X"; mermaid draws -.-> and dot style=dashed for after only."""
    rec = Recorder()
    plan = plan_of(
        Probe(rec, "net", 0),
        Probe(rec, "store", 0),
        Probe(rec, "vm", 1, requires=("store",), after=("net",)),
    )
    assert "  vm: requires store; after net; start 90s, stop 90s" in plan.to_text()
    mermaid = plan.to_mermaid()
    assert "  d2 --> d1\n" in mermaid
    assert "  d2 -.->|after| d0\n" in mermaid
    assert mermaid.count("-.->") == 1
    dot = plan.to_dot()
    assert '  "vm" -> "store";\n' in dot
    assert '  "vm" -> "net" [style=dashed, label="after"];\n' in dot
    assert dot.count("dashed") == 1


CHECKED = """\
import tiered

runtime = tiered.Runtime("ordered", schedule="dependencies")


@runtime.driver(tier=0)
async def network(ctx):
    yield None


@runtime.driver(after=[network])
async def storage(ctx):
    yield None
"""


def test_tiered_check_shows_after_in_a_real_process(tmp_path: Path) -> None:
    """`tiered check` run as a process prints the after ordering and the inferred tier."""
    (tmp_path / "ordered_daemon.py").write_text(CHECKED, encoding="utf-8")
    env = child_env({"PYTHONPATH": str(tmp_path)})
    done = subprocess.run(
        [sys.executable, "-m", "tiered", "check", "ordered_daemon:runtime"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == textwrap.dedent(
        """\
        runtime 'ordered': 2 drivers in 2 tiers
        tier 0:
          network: start 90s, stop 90s
        tier 1:
          storage: after network; tier inferred; start 90s, stop 90s
        """
    )


# -- max_concurrent_starts --------------------------------------------------------


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "2"])
def test_a_bad_max_concurrent_starts_is_a_config_error(bad: object) -> None:
    """max_concurrent_starts is an integer >= 1 or None; anything else is refused."""
    with pytest.raises(tiered.ConfigError, match=r"max_concurrent_starts=.*>= 1"):
        tiered.Runtime("x", max_concurrent_starts=bad)  # type: ignore[arg-type]
    assert tiered.Runtime("x", max_concurrent_starts=None).max_concurrent_starts is None
    assert tiered.Runtime("x", max_concurrent_starts=4).max_concurrent_starts == 4
