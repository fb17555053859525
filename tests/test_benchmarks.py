"""The benchmark suite runs every workload at tiny size, so it cannot rot.

No timing is asserted here (speed is shown by ``make bench``, never by a
test): only that each workload, every subject and every peer ran, that the
results have their shape, and that the values are sane, e.g. no start-up
beats the bound, and each subject kept the tiers it claims to keep.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ("asyncio", "uvloop", "trio")
ASYNCIO_ONLY = ("facet", "aiomisc", "dependency_injector")
EVERYWHERE = ("tiered", "anyio_floor", "native_floor", "exitstack")


def bench(out: Path, *args: str) -> dict[str, Any]:
    """Run benchmarks/run.py --quick into ``out``; return its JSON."""
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "run.py"),
            "--quick",
            "--out",
            str(out),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=50,
        check=True,
    )
    data: dict[str, Any] = json.loads((out / "latest.json").read_text())
    return data


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    """One quick run of every workload: its JSON and its Markdown."""
    out = tmp_path_factory.mktemp("bench")
    data = bench(out)
    return data, (out / "latest.md").read_text()


def positive(summary: dict[str, float]) -> bool:
    """A summary of positive times, in order."""
    return (
        0
        < summary["min"]
        <= summary["q1"]
        <= summary["median"]
        <= summary["q3"]
        <= summary["max"]
    )


def test_machine_and_settings_are_recorded(results: tuple[dict[str, Any], str]) -> None:
    data, _ = results
    assert data["quick"] is True
    machine = data["machine"]
    assert machine["cpu"]
    assert machine["cores"] >= 1
    assert machine["python"].split()[-1].startswith("3.")
    for package in (
        "tiered",
        "anyio",
        "trio",
        "uvloop",
        "facet",
        "aiomisc",
        "dependency-injector",
    ):
        assert machine["packages"][package], package
    assert data["settings"]["backends"] == list(BACKENDS)


def test_every_subject_keeps_the_tiers(results: tuple[dict[str, Any], str]) -> None:
    """The traced runs show each subject (peers included) really did tiers."""
    verification = results[0]["verification"]
    assert set(verification) == set(EVERYWHERE + ASYNCIO_ONLY)
    for subject, by_backend in verification.items():
        expected = BACKENDS if subject in EVERYWHERE else ("asyncio", "uvloop")
        assert tuple(by_backend) == expected, subject
        for backend, check in by_backend.items():
            assert check["complete"], (subject, backend)
            assert check["tiers_in_order"], (subject, backend)
            # one after another is the point of the AsyncExitStack subject
            assert check["concurrent"] is (subject != "exitstack"), (subject, backend)


@pytest.mark.parametrize("workload", ["overhead", "overhead_small"])
def test_overhead_runs_every_subject(
    results: tuple[dict[str, Any], str], workload: str
) -> None:
    o = results[0]["workloads"][workload]
    assert o["skipped"] == {}  # at tiny size even dependency-injector runs
    for backend in BACKENDS:
        entry = o["backends"][backend]
        expected = EVERYWHERE + (ASYNCIO_ONLY if backend != "trio" else ())
        assert set(entry["subjects"]) == set(expected), backend
        for timing in entry["subjects"].values():
            assert timing["runs"] == 1
            for part in ("start", "stop", "total"):
                assert positive(timing[part])
        assert set(entry["tiered_vs"]) == set(expected) - {"tiered"}
        for r in entry["tiered_vs"].values():
            assert r["ratio"] > 0
            assert r["rounds"] == 1


def test_no_start_up_beats_its_bound(results: tuple[dict[str, Any], str]) -> None:
    """Start-up takes at least the bound: the drivers do sleep, tier after tier.

    uvloop keeps time in whole milliseconds (libuv), so each sleep on it may
    end up to 1 ms early: the bound there is lowered by 1 ms per sleep in a
    row (one per tier, or one per driver one after another).
    """
    lat = results[0]["workloads"]["latency"]
    assert lat["one_tier_bound_s"] < lat["bound_s"] < lat["sum_of_sleeps_s"]
    for backend in BACKENDS:
        slack = 0.001 if backend == "uvloop" else 0.0
        subjects = lat["backends"][backend]["subjects"]
        expected = {"tiered", "anyio_by_hand", "tiered_one_tier", "exitstack"}
        if backend != "trio":
            expected |= set(ASYNCIO_ONLY)
        assert set(subjects) == expected, backend
        for name, s in subjects.items():
            startup = s["startup"]["min"]
            if name == "tiered_one_tier":
                bound = lat["one_tier_bound_s"] - slack
            elif name == "exitstack":
                bound = lat["sum_of_sleeps_s"] - slack * lat["drivers"]
            else:
                bound = lat["bound_s"] - slack * lat["tiers"]
            assert startup >= bound, (backend, name, startup, bound)
            assert s["vs_bound"]["ratio"] > 0
        assert lat["backends"][backend]["tiered_vs_by_hand"]["ratio"] > 0


def test_scaling_reports_time_and_memory_per_driver(
    results: tuple[dict[str, Any], str],
) -> None:
    s = results[0]["workloads"]["scaling"]
    for backend in BACKENDS:
        sizes = s["backends"][backend]["sizes"]
        assert list(sizes) == [str(n) for n in s["sizes"]]
        for n, entry in sizes.items():
            for subject in ("tiered", "anyio_floor"):
                e = entry[subject]
                assert positive(e["per_driver"])
                assert e["per_driver"]["median"] == pytest.approx(
                    e["total"]["median"] / int(n)
                )
                assert e["per_driver_vs_reference"]["ratio"] > 0
            assert entry["tiered_vs_anyio_floor"]["ratio"] > 0
        memory = s["memory"]["backends"][backend]
        assert list(memory) == [str(n) for n in s["memory"]["sizes"]]
        for entry in memory.values():
            assert 0 < entry["declared_per_driver"] < entry["peak_per_driver"]
            assert entry["running_per_driver"] <= entry["peak_per_driver"]


def test_import_time_is_measured(results: tuple[dict[str, Any], str]) -> None:
    i = results[0]["workloads"]["importtime"]
    for command in ("python", "anyio", "tiered"):
        assert positive(i["wall_s"][command])
    assert i["tiered_vs_anyio"]["ratio"] > 0
    assert i["importtime_us"]["tiered_cumulative"] > 0
    assert any(
        m.startswith("tiered.") for m in i["importtime_us"]["tiered_modules_self"]
    )


def test_every_goal_is_computed(results: tuple[dict[str, Any], str]) -> None:
    goals = results[0]["goals"]
    assert [g["id"] for g in goals] == [
        "overhead",
        "latency",
        "scaling_time",
        "scaling_memory",
        "peers",
    ]
    for g in goals:
        assert isinstance(g["met"], bool), g
        assert all(v > 0 for v in g["values"].values())


def test_markdown_is_a_fragment_with_every_section(
    results: tuple[dict[str, Any], str],
) -> None:
    data, text = results
    assert text.startswith("## ")
    assert not any(line.startswith("# ") for line in text.splitlines())
    for heading in ("### Goals", "### 1. Overhead", "### 2. Latency", "### 3. Scaling"):
        assert heading in text
    assert "### 4. Peers" in text
    assert "### 5. Import time" in text
    assert data["machine"]["cpu"] in text


def test_only_and_backends_narrow_the_run(tmp_path: Path) -> None:
    data = bench(tmp_path, "--only", "latency", "--backends", "trio")
    assert list(data["workloads"]) == ["latency"]
    assert list(data["workloads"]["latency"]["backends"]) == ["trio"]
    # the peers need asyncio: on trio alone only the others are verified
    assert set(data["verification"]) == set(EVERYWHERE)
    met = {g["id"]: g["met"] for g in data["goals"]}
    assert met["overhead"] is None  # not measured
    assert isinstance(met["latency"], bool)


def test_readme_shows_the_committed_results() -> None:
    """The README's excerpt is what benchmarks/run.py wrote from latest.json."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import render
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    data = json.loads((ROOT / "benchmarks" / "results" / "latest.json").read_text())
    readme = (ROOT / "README.md").read_text()
    expected = render.readme_summary(data)
    assert render.replace_readme_summary(readme, expected) == readme
    assert expected in readme
