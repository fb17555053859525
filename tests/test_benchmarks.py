"""The benchmark suite runs every workload at tiny size, so it cannot rot.

No timing is asserted here (speed is shown by ``make bench``, never by a
test): only that each workload, every subject and every peer ran, that the
results have their shape, and that the values are sane, e.g. no start-up
beats the bound, each subject kept the tiers (or the requirements) it
claims to keep, and every daemon process of workload 6 sent READY=1 and
exited cleanly.  The DAG plans, their bounds and their order check are
tested on plans and traces made by hand in tests/test_benchmark_dag.py.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ("asyncio", "uvloop", "trio")
ASYNCIO_ONLY = ("facet", "aiomisc", "dependency_injector")
EVERYWHERE = ("tiered", "tiered_classes", "anyio_floor", "native_floor", "exitstack")
# workload 1's tiered on the chain plan, on each of its schedules
DEPENDENCY_CASES = ("tiered_requires", "tiered_dependencies")
# workload 7's cases, and the subjects of its order check
DAG_CASES = ("tiered_tiers", "tiered_dependencies", "dag_by_hand")
DAG_SUBJECTS = ("tiered", "tiered_dependencies", "dag_by_hand")
# workload 6: the daemons on each backend (the floor runs on none)
EXEC_TIERED = ("tiered_cli", "tiered_serve")
EXEC_DAEMONS = {
    "asyncio": (*EXEC_TIERED, "anyio_daemon", "asyncio_daemon"),
    "uvloop": (*EXEC_TIERED, "anyio_daemon", "asyncio_daemon"),
    "trio": (*EXEC_TIERED, "anyio_daemon"),
}


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


def benchmark_module(name: str) -> ModuleType:
    """A module of ``benchmarks/``, imported as run.py would."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


def test_machine_and_settings_are_recorded(results: tuple[dict[str, Any], str]) -> None:
    """The results say what machine, packages and backends produced them."""
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
    """Every subject ran, and both of tiered's schedules on the chain plan."""
    o = results[0]["workloads"][workload]
    assert o["skipped"] == {}  # at tiny size even dependency-injector runs
    # tiered with its logger at INFO runs beside workload 1 only
    info = ("tiered_info_log",) if workload == "overhead" else ()
    assert ("info_log" in o) is bool(info)
    # both of tiered's schedules ran the chain plan: one requirement per
    # driver above tier 0 (tiers are spread round-robin); the others none
    chain = o["drivers"] - len(range(0, o["drivers"], o["tiers"]))
    assert o["requirements"] == {
        k: chain if k in DEPENDENCY_CASES else 0 for k in o["requirements"]
    }
    assert set(DEPENDENCY_CASES) <= set(o["requirements"])
    for backend in BACKENDS:
        entry = o["backends"][backend]
        expected = EVERYWHERE + (ASYNCIO_ONLY if backend != "trio" else ()) + info
        assert set(entry["subjects"]) == {*expected, *DEPENDENCY_CASES}, backend
        assert ("info_log_vs_off" in entry) is bool(info)
        if info:
            assert entry["info_log_vs_off"]["ratio"] > 0
            assert entry["info_log_vs_off"]["rounds"] == 1
        for timing in entry["subjects"].values():
            assert timing["runs"] == 1
            for part in ("start", "stop", "total"):
                assert positive(timing[part])
        assert set(entry["tiered_vs"]) == set(expected) - {
            "tiered",
            "tiered_classes",
            *info,
        }
        # drivers written as classes, against the peers' services and tiered's
        peers = {"facet", "aiomisc"} if backend != "trio" else set()
        assert set(entry["classes_vs"]) == {*peers, "tiered"}
        assert set(entry["dependencies_vs"]) == {"tiered_requires", "tiered"}
        ratios = [
            *entry["tiered_vs"].values(),
            *entry["dependencies_vs"].values(),
            entry["requires_vs_tiered"],
        ]
        for r in ratios:
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


def test_dag_start_up_beats_neither_bound(results: tuple[dict[str, Any], str]) -> None:
    """Workload 7: no subject beats the critical path, tiers mode not the tier bound.

    Every driver sleeps after what it requires is up, so no start-up is
    shorter than the longest chain of sleeps; with the barrier, not shorter
    than the sum of each tier's slowest.  uvloop's sleeps may end up to 1 ms
    early each, as in the latency test.
    """
    d = results[0]["workloads"]["dag"]
    assert d["drivers"] == results[0]["workloads"]["latency"]["drivers"]
    assert d["tier_bound_s"] == results[0]["workloads"]["latency"]["bound_s"]
    assert 0 < d["critical_path_s"] <= d["tier_bound_s"] < d["sum_of_sleeps_s"]
    assert 1 <= d["critical_path_drivers"] <= d["tiers"]
    assert 0 < d["requirements"] <= d["most_requires"] * d["drivers"]
    for backend in BACKENDS:
        slack = 0.001 if backend == "uvloop" else 0.0
        entry = d["backends"][backend]
        assert tuple(entry["subjects"]) == DAG_CASES, backend
        for name, s in entry["subjects"].items():
            assert s["runs"] == 1
            assert positive(s["stop"])
            startup = s["startup"]["min"]
            critical = d["critical_path_s"] - slack * d["critical_path_drivers"]
            assert startup >= critical, (backend, name, startup, critical)
            if name == "tiered_tiers":
                tier_bound = d["tier_bound_s"] - slack * d["tiers"]
                assert startup >= tier_bound, (backend, startup, tier_bound)
            assert s["vs_tier_bound"]["ratio"] == pytest.approx(
                s["startup"]["median"] / d["tier_bound_s"]
            )
            assert s["vs_critical_path"]["ratio"] == pytest.approx(
                s["startup"]["median"] / d["critical_path_s"]
            )
        assert set(entry["ratios"]) == {
            "tiered_tiers_vs_tiered_dependencies",
            "tiered_dependencies_vs_dag_by_hand",
            "tiered_tiers_vs_dag_by_hand",
        }
        for r in entry["ratios"].values():
            assert r["ratio"] > 0
            assert r["rounds"] == 1


def test_every_dag_subject_keeps_the_requirements(
    results: tuple[dict[str, Any], str],
) -> None:
    """The traced DAG runs: requirements up first, stopped last; a barrier in tiers mode only."""
    order = results[0]["dag_verification"]
    assert order["requirements"] > 0
    assert tuple(order["subjects"]) == DAG_SUBJECTS
    for subject, by_backend in order["subjects"].items():
        assert tuple(by_backend) == BACKENDS, subject
        for backend, check in by_backend.items():
            where = (subject, backend)
            assert check["complete"], where
            assert check["requirements_first"], where
            assert check["dependents_first"], where
            assert check["concurrent"], where
            # the top tier's last driver requires nothing: only a barrier holds it
            assert check["barrier"] is (subject == "tiered"), where


def test_scaling_reports_time_and_memory_per_driver(
    results: tuple[dict[str, Any], str],
) -> None:
    """Time per driver at each size, against the reference; memory per driver."""
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
    """Wall times of the imports, and the -X importtime profile of tiered's."""
    i = results[0]["workloads"]["importtime"]
    for command in ("python", "anyio", "tiered"):
        assert positive(i["wall_s"][command])
    assert i["tiered_vs_anyio"]["ratio"] > 0
    assert i["tiered_minus_anyio_s"] == pytest.approx(
        i["wall_s"]["tiered"]["median"] - i["wall_s"]["anyio"]["median"]
    )
    us = i["importtime_us"]
    assert us["profiles"] == 1
    assert us["tiered_cumulative"] > 0
    assert us["anyio_alone_cumulative"] > 0
    # `import tiered` imports its own modules lazily (src/tiered/__init__.py):
    # the package itself is always there, its modules only once used
    own = us["tiered_modules_self"]
    assert "tiered" in own
    assert all(m == "tiered" or m.startswith("tiered.") for m in own)
    # the top modules by cumulative time, heaviest first, each at its depth
    top = us["top_cumulative"]
    cumulative = [m["cumulative"] for m in top]
    assert top[0]["depth"] == 0  # the heaviest holds what it imports
    assert cumulative == sorted(cumulative, reverse=True)
    assert all(0 <= m["self"] <= m["cumulative"] for m in top)
    assert all(m["depth"] == 0 for m in top if m["module"] == "tiered")
    # what tiered imports beyond anyio: tiered's modules, never anyio itself
    beyond = {m["module"] for m in us["beyond_anyio"]}
    assert "tiered" in beyond or any(m.startswith("tiered.") for m in beyond)
    assert "anyio" not in beyond
    assert us["beyond_anyio_modules"] >= len(beyond)
    assert us["beyond_anyio_self_total"] >= sum(m["self"] for m in us["beyond_anyio"])


def test_exec_to_ready_runs_every_daemon(
    results: tuple[dict[str, Any], str],
) -> None:
    """Every daemon process ran each round, sent READY=1 and exited with 0."""
    e = results[0]["workloads"]["exec"]
    assert e["rounds"] == 2
    assert e["failures"] == []
    assert set(e["subjects"]) == {*EXEC_DAEMONS["asyncio"], "floor"}
    floor = e["floor"]
    assert (floor["runs"], floor["failures"]) == (2, 0)
    assert positive(floor["ready"])
    assert positive(floor["exit"])
    assert floor["ready_message"] == "READY=1"
    assert list(e["backends"]) == list(BACKENDS)
    for backend, expected in EXEC_DAEMONS.items():
        entry = e["backends"][backend]
        assert tuple(entry["subjects"]) == expected, backend
        for key, s in entry["subjects"].items():
            assert (s["runs"], s["failures"]) == (2, 0), (backend, key)
            for figure in ("ready", "exit"):
                assert positive(s[figure]), (backend, key, figure)
                assert s[figure]["max"] < e["timeout_s"]
            # READY=1 says every driver came up; tiered said each tier first
            lines = s["ready_message"].split("\n")
            assert lines[0] == "READY=1"
            assert lines[1].startswith(f"STATUS={e['drivers']} driver(s) running")
            tiered = key in EXEC_TIERED
            assert s["datagrams_before_ready"] == (e["tiers"] if tiered else 0)
            assert s["vs_floor"]["ratio"] > 0
            assert s["vs_floor"]["rounds"] == 2
            assert s["above_floor_s"] == pytest.approx(
                s["ready"]["median"] - floor["ready"]["median"]
            )
        ratios = {
            "tiered_cli_vs_anyio_daemon",
            "tiered_serve_vs_anyio_daemon",
            "tiered_cli_vs_tiered_serve",
        }
        if backend != "trio":
            ratios.add("anyio_daemon_vs_asyncio_daemon")
        assert set(entry["ratios"]) == ratios, backend
        for r in entry["ratios"].values():
            assert r["ratio"] > 0
            assert r["rounds"] == 2
            assert positive(r["per_round"])


@pytest.mark.parametrize(
    ("code", "failure"),
    [
        ("import sys; print('no notify'); sys.exit(3)", "exited with status 3"),
        ("import time; time.sleep(30)", "no READY=1 in time"),
        (  # READY=1, then deaf to SIGTERM: killed at the timeout
            "import os, signal, socket, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
            "s.sendto(b'READY=1', os.environ['NOTIFY_SOCKET'])\n"
            "time.sleep(30)",
            "did not exit after SIGTERM",
        ),
    ],
)
def test_a_failed_daemon_is_killed_and_counted(
    tmp_path: Path, code: str, failure: str
) -> None:
    """A daemon that fails gives no figure, says why, and is killed and reaped."""
    processes = benchmark_module("processes")
    pidfile = tmp_path / "pid"
    daemon = processes.Daemon(
        "bad",
        "bad",
        (
            "-c",
            f"import os; open({str(pidfile)!r}, 'w').write(str(os.getpid()))\n{code}",
        ),
        None,
        "a daemon that fails",
    )
    # the socket's path must fit in sun_path: pytest's tmp_path may not
    with processes.scratch_dir() as workdir:
        outcome = processes.run_daemon(daemon, None, workdir, 1.0, 1, 1)
    assert outcome.ready is None
    assert outcome.exit is None
    assert outcome.failure is not None
    assert outcome.failure.startswith(failure)
    with pytest.raises(ProcessLookupError):  # killed and reaped
        os.kill(int(pidfile.read_text()), 0)


def test_every_goal_is_computed(results: tuple[dict[str, Any], str]) -> None:
    """Every goal is measured by a full quick run, met or not, with its values."""
    goals = results[0]["goals"]
    assert [g["id"] for g in goals] == [
        "overhead",
        "latency",
        "scaling_time",
        "scaling_memory",
        "peers",
        "exec_ready",
        "import_time",
        "dag",
        "dependency_overhead",
    ]
    for g in goals:
        assert isinstance(g["met"], bool), g
        if g["id"] == "import_time":  # a difference of times, in seconds
            assert all(math.isfinite(v) for v in g["values"].values())
        else:
            assert all(v > 0 for v in g["values"].values())
    by_id = {g["id"]: g for g in goals}
    exec_ready = by_id["exec_ready"]
    assert len(exec_ready["values"]) == 2 * len(BACKENDS)  # tiered run and serve()
    # the two goals of the dependency schedule: the ratios the sections show
    workloads = results[0]["workloads"]
    for key, workload, path, limit in (
        ("dag", "dag", ("ratios", "tiered_dependencies_vs_dag_by_hand"), 1.05),
        (
            "dependency_overhead",
            "overhead",
            ("dependencies_vs", "tiered_requires"),
            1.2,
        ),
    ):
        figures = {
            b: workloads[workload]["backends"][b][path[0]][path[1]]["ratio"]
            for b in BACKENDS
        }
        assert by_id[key]["values"] == figures, key
        assert by_id[key]["met"] is all(v <= limit for v in figures.values()), key
    # the peers' goal compares drivers of the peers' shape: tiered's classes
    classes = workloads["overhead"]["backends"]["asyncio"]["classes_vs"]
    peers = {f"tiered ÷ {p}": classes[p]["ratio"] for p in ("facet", "aiomisc")}
    assert by_id["peers"]["values"] == peers
    assert by_id["peers"]["met"] is all(v < 1.0 for v in peers.values())
    assert "generator drivers, not judged: ÷ facet" in by_id["peers"]["detail"]


def test_markdown_is_a_fragment_with_every_section(
    results: tuple[dict[str, Any], str],
) -> None:
    """latest.md is a fragment (no top heading) with a section per workload."""
    data, text = results
    assert text.startswith("## ")
    assert not any(line.startswith("# ") for line in text.splitlines())
    for heading in ("### Goals", "### 1. Overhead", "### 2. Latency", "### 3. Scaling"):
        assert heading in text
    assert "### 4. Peers" in text
    assert "### 5. Import time" in text
    assert "### 6. Exec to READY" in text
    assert "### 7. Dependency schedule: a seeded DAG of" in text
    assert "| tiers ÷ dependencies |" in text
    assert "| dependencies ÷ by hand |" in text
    assert "| tiered, dependencies ÷ tiers, the same requirements |" in text
    assert data["machine"]["cpu"] in text


def test_only_and_backends_narrow_the_run(tmp_path: Path) -> None:
    """--only and --backends run just those; the other goals are not measured."""
    data = bench(tmp_path, "--only", "latency", "dag", "--backends", "trio")
    assert list(data["workloads"]) == ["latency", "dag"]
    for workload in ("latency", "dag"):
        assert list(data["workloads"][workload]["backends"]) == ["trio"]
    # the peers need asyncio: on trio alone only the others are verified
    assert set(data["verification"]) == set(EVERYWHERE)
    for by_backend in data["dag_verification"]["subjects"].values():
        assert list(by_backend) == ["trio"]
    met = {g["id"]: g["met"] for g in data["goals"]}
    assert met["overhead"] is None  # not measured
    assert met["dependency_overhead"] is None  # workload 1's
    assert met["exec_ready"] is None
    assert met["import_time"] is None
    assert isinstance(met["latency"], bool)
    assert isinstance(met["dag"], bool)


def test_readme_shows_the_committed_results() -> None:
    """The README's excerpt is what benchmarks/run.py wrote from latest.json."""
    render = benchmark_module("render")
    data = json.loads((ROOT / "benchmarks" / "results" / "latest.json").read_text())
    readme = (ROOT / "README.md").read_text()
    expected = render.readme_summary(data)
    assert render.replace_readme_summary(readme, expected) == readme
    assert expected in readme


def test_the_side_by_side_script_compares_two_versions() -> None:
    """benchmarks/ab.py runs each version in its own interpreters and prints a ratio per backend.

    HEAD's src (from git archive) against the working tree's: tiny sizes,
    one process each; the figures mean nothing, the line's shape is checked.
    """
    import re

    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "ab.py"),
            "HEAD",
            "--against",
            ".",
            "--processes",
            "1",
            "--drivers",
            "100",
            "--backends",
            "asyncio",
            "trio",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    lines = out.splitlines()
    assert len(lines) == 2, out
    for backend, line in zip(("asyncio", "trio"), lines, strict=True):
        pattern = (
            rf"{backend}: tiered ÷ floor, \. (\d+\.\d+) \(\S+\), HEAD (\d+\.\d+) "
            r"\(\S+\): [+-]\d+\.\d% \(1 processes each\)"
        )
        match = re.fullmatch(pattern, line)
        assert match, line
        assert float(match[1]) > 0
        assert float(match[2]) > 0


def test_the_daemons_can_run_another_version(tmp_path: Path) -> None:
    """--daemons-from REV: the daemons import REV's src/, the results say so.

    HEAD's src from git archive: the daemons must import it from the
    archive, not from the working tree, or the before/after of
    docs/benchmarks.md would measure one version twice.
    """
    data = bench(
        tmp_path,
        "--only",
        "importtime",
        "exec",
        "--backends",
        "asyncio",
        "--daemons-from",
        "HEAD",
    )
    where = data["settings"]["daemons_from"]
    assert where["rev"] == "HEAD"
    tiered_file = Path(where["tiered"])
    assert tiered_file.is_relative_to(where["src"]), where
    assert not tiered_file.is_relative_to(ROOT), where
    assert data["workloads"]["exec"]["failures"] == [], data["workloads"]["exec"]
    header = (tmp_path / "latest.md").read_text().splitlines()[2]
    assert "the `src/` of `HEAD` (`--daemons-from`)" in header


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--daemons-from", "HEAD", "--out", "x"], "--only importtime"),
        (
            ["--daemons-from", "HEAD", "--only", "exec", "overhead", "--out", "x"],
            "--only importtime",
        ),
        (["--daemons-from", "HEAD", "--only", "exec"], "give --out DIR"),
        (
            ["--daemons-from", "HEAD", "--only", "exec", "--out", "benchmarks/results"],
            "give --out DIR",
        ),
        (
            ["--daemons-from", "no-such-rev", "--only", "exec", "--out", "x"],
            "--daemons-from no-such-rev: git archive failed",
        ),
    ],
)
def test_daemons_from_refuses_what_it_cannot_measure(
    args: list[str], says: str
) -> None:
    """In-process workloads cannot run another version; benchmarks/results is kept.

    A revision git does not know is one line on stderr and status 2.
    """
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), *args],
        cwd=ROOT,  # where benchmarks/results is benchmarks/results
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2, done
    assert says in done.stderr
