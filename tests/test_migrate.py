"""The migration examples run, before (the peer) and after (tiered), alike.

docs/migrating.md shows these files; each pair must do the same things to the
same resources (examples/migrate/resources.py), only wired differently.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

MIGRATE = Path(__file__).resolve().parent.parent / "examples" / "migrate"


def run(name: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-W", "error", str(MIGRATE / f"{name}.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=MIGRATE,
    )
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    return out.stdout.splitlines()


@pytest.mark.parametrize("peer", ["exitstack", "facet", "aiomisc"])
def test_before_and_after_do_the_same(peer: str) -> None:
    """Both versions open, use and close the same resources, then stop."""
    before, after = run(f"{peer}_before"), run(f"{peer}_after")
    assert "apple: 12 in stock" in after
    assert sorted(before) == sorted(after)
    assert after[-1] == "stopped"


@pytest.mark.parametrize("peer", ["exitstack", "facet", "aiomisc"])
def test_after_stops_in_reverse_tier_order(peer: str) -> None:
    """tiered closes the database only after the request was answered."""
    after = run(f"{peer}_after")
    assert after.index("apple: 12 in stock") < after.index("database closed")
    assert after.index("cache warmed with 3 items") > after.index(
        "database connected to postgres://db.internal/shop"
    )
