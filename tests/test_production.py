"""A daemon in production: its status file, the drain, the shutdown budget, restarts.

Real ``tiered run`` processes (the probe of tests/daemons/serve_probe.py),
real signals, a real notify socket (tests/support/systemd.py) and the real
``tiered probe`` command reading the real status file, on asyncio, uvloop
and trio.  Times are measured in the test process around real signals: the
bounds are generous for a loaded machine, and what is checked is a lower
bound where the behaviour is a wait (the drain) and an upper bound where it
is a cut (the budget).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import pytest

from support.daemon import ROOT, TIMEOUT, Daemon, child_env, tiered_command
from support.systemd import NotifyListener, fields

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="needs POSIX signals and subprocesses"
)

PROBE = "tests.daemons.serve_probe:runtime"
UP = "runtime 'probe' is up"
backends = pytest.mark.parametrize("backend", ["asyncio", "uvloop", "trio"])


def run(backend: str, *extra: str) -> list[str]:
    return tiered_command("run", PROBE, "--backend", backend, *extra)


def read(path: Path) -> dict[str, Any]:
    """The status file as the daemon last wrote it."""
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def wait_status(
    path: Path, want: dict[str, object], timeout: float = TIMEOUT
) -> dict[str, Any]:
    """Poll the status file until its fields equal ``want``; the whole file."""
    deadline = time.monotonic() + timeout
    seen: dict[str, Any] = {}
    while time.monotonic() < deadline:
        if path.exists():
            seen = read(path)
            if all(seen.get(k) == v for k, v in want.items()):
                return seen
        time.sleep(0.01)
    msg = f"the status file never said {want}; last: {seen}"
    raise AssertionError(msg)


def probe(path: Path, *flags: str) -> tuple[int, str]:
    """``tiered probe PATH FLAGS``: its exit status and its line."""
    out = subprocess.run(
        tiered_command("probe", str(path), *flags),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=child_env(),
        timeout=TIMEOUT,
        check=False,
    )
    return out.returncode, (out.stdout + out.stderr).strip()


@backends
def test_status_file_through_a_whole_life(backend: str, tmp_path: Path) -> None:
    """starting, running, draining (not ready, drivers up), stopped: file and probe agree."""
    status = tmp_path / "status.json"
    gates = tmp_path / "gates"
    gates.mkdir()
    env = {"PROBE_GATE": "init.c", "PROBE_GATE_DIR": str(gates)}
    extra = ("--status-file", str(status), "--drain", "1.5")
    with Daemon(run(backend, *extra), env=env) as d:
        d.wait_for("stdout", "init c")
        starting = {"a": "running", "b": "running", "c": "starting"}
        seen = wait_status(status, {"state": "starting", "drivers": starting})
        assert seen["runtime"] == "probe"
        assert seen["pid"] == d.proc.pid
        assert seen["ready"] is False
        assert seen["live"] is True
        code, line = probe(status)
        assert code == 1
        assert line == "not ready: state starting; not running: c (starting)"
        assert probe(status, "--live")[0] == 0
        (gates / "init.c").touch()
        d.wait_for("stderr", UP)
        up = dict.fromkeys("abc", "running")
        wait_status(status, {"state": "running", "ready": True, "drivers": up})
        assert probe(status) == (0, "")
        d.signal(signal.SIGTERM)
        # draining: not ready, every driver still up
        wait_status(status, {"state": "stopping", "ready": False, "drivers": up})
        assert probe(status)[0] == 1
        assert probe(status, "--live")[0] == 0
        assert d.wait() == 0, d.output()
    final = read(status)
    assert final["state"] == "stopped"
    assert final["ready"] is False
    assert set(final["drivers"].values()) == {"stopped"}
    code, line = probe(status)
    assert code == 1
    assert line.startswith(f"stale: pid {final['pid']} is gone"), line


@backends
def test_drain_keeps_serving_before_the_first_stop(backend: str) -> None:
    """With --drain 1.0 no stop begins until a second after SIGTERM; systemd hears it."""
    with NotifyListener() as systemd:
        env = {"NOTIFY_SOCKET": systemd.address}
        with Daemon(run(backend, "--drain", "1.0"), env=env) as d:
            systemd.wait_for("READY=1")
            sent = time.monotonic()
            d.signal(signal.SIGTERM)
            d.wait_for("stdout", "stop c")
            waited = time.monotonic() - sent
            assert d.wait() == 0, d.output()
        messages = systemd.sync()
    assert waited >= 1.0, f"the first stop began {waited:.3f}s after SIGTERM"
    assert waited < 1.0 + 5, waited
    stopping = [fields(m) for m in messages if "STOPPING=1" in m]
    assert stopping[0].get("STATUS") == "draining", messages
    assert "READY=1" not in "".join(
        messages[messages.index(next(m for m in messages if "STOPPING=1" in m)) :]
    )


@backends
def test_second_sigint_ends_the_drain_at_once(backend: str) -> None:
    """A SIGINT during a 30 s drain stops the daemon right away."""
    with Daemon(run(backend, "--drain", "30")) as d:
        d.wait_for("stderr", UP)
        d.signal(signal.SIGINT)
        d.wait_for("stderr", "draining for 30s")
        sent = time.monotonic()
        d.signal(signal.SIGINT)
        d.wait_for("stdout", "stop c")
        assert time.monotonic() - sent < 5
        assert d.wait() == 0, d.output()


@backends
def test_shutdown_budget_cuts_every_hanging_stop(backend: str) -> None:
    """shutdown_timeout=1: three stops that would take a minute each end in about a second."""
    env = {
        "PROBE_SHUTDOWN_TIMEOUT": "1",
        "PROBE_STOP_TIMEOUT": "120",
        "PROBE_DELAY": "stop.a=60,stop.b=60,stop.c=60",
    }
    with Daemon(run(backend), env=env) as d:
        d.wait_for("stderr", UP)
        sent = time.monotonic()
        d.signal(signal.SIGTERM)
        status = d.wait()
        took = time.monotonic() - sent
    assert status == 1, d.output()
    assert took < 1 + 4, f"the shutdown took {took:.2f}s with a 1 s budget"
    assert [line for line in d.stdout if line.startswith("stop ")] == [
        "stop c",
        "stop c interrupted",
        "stop b",
        "stop b interrupted",
        "stop a",
        "stop a interrupted",
    ]
    assert any(
        "phase stop" in line
        and "cut short: the shutdown took its whole shutdown_timeout of 1s" in line
        for line in d.stderr
    ), d.output()


@backends
def test_a_restart_is_told_to_systemd_and_the_daemon_goes_on(backend: str) -> None:
    """b crashes once after start-up: STATUS says so, b and c restart, and SIGTERM exits 0."""
    env = {"PROBE_CRASH": "b=0.2", "PROBE_CRASHES": "1", "PROBE_RESTART": "b=3"}
    with NotifyListener() as systemd:
        env["NOTIFY_SOCKET"] = systemd.address
        with Daemon(run(backend), env=env) as d:
            systemd.wait_for("READY=1")
            d.wait_for("stdout", "crash b")
            systemd.wait_for(lambda m: "running again" in m)
            d.signal(signal.SIGTERM)
            assert d.wait() == 0, d.output()
        statuses = [fields(m).get("STATUS", "") for m in systemd.sync()]
    restart = [s for s in statuses if s.startswith("restart 1 of 3 in 0.1s")]
    assert restart, statuses
    assert "driver 'b' (tier 1), phase background" in restart[0]
    assert "ConnectionError" in restart[0]
    begun = [line for line in d.stdout if line.split()[:1] in (["init"], ["stop"])]
    crash = d.stdout.index("crash b")
    after = [line for line in d.stdout[crash:] if len(line.split()) == 2]
    # the dependent stops first, then b; b starts again, then c
    assert after[:5] == ["crash b", "stop c", "stop b", "init b", "auto b"], after
    assert begun.count("init a") == 1  # what b requires keeps running


@backends
def test_giving_up_exits_1_so_the_supervisor_above_restarts_it(backend: str) -> None:
    """b crashes in every life; after its one restart the daemon stops by itself, exit 1."""
    env = {"PROBE_CRASH": "b=0.1", "PROBE_RESTART": "b=1"}
    with NotifyListener() as systemd:
        env["NOTIFY_SOCKET"] = systemd.address
        with Daemon(run(backend), env=env) as d:
            status = d.wait()
        statuses = [fields(m).get("STATUS", "") for m in systemd.sync()]
    assert status == 1, d.output()
    assert d.stdout.count("crash b") == 2
    assert any(
        "gave up restarting b (tier 1) after 1 restart(s)" in line for line in d.stderr
    ), d.output()
    assert any("gave up restarting b (tier 1)" in s for s in statuses), statuses
    # the run failing is no "running again" (it used to be told so)
    gave_up = next(i for i, s in enumerate(statuses) if "gave up restarting" in s)
    assert not any(s.startswith("running again") for s in statuses[gave_up:]), statuses
    assert [line for line in d.stdout if line in ("stop a", "stop b", "stop c")][
        -2:
    ] == [
        "stop b",
        "stop a",
    ]


@backends
def test_a_crash_without_restart_stops_the_daemon_and_says_why(backend: str) -> None:
    """A background crash of a required driver: STATUS names it, every driver stops, exit 1."""
    with NotifyListener() as systemd:
        env = {"NOTIFY_SOCKET": systemd.address, "PROBE_CRASH": "b=0.2"}
        with Daemon(run(backend), env=env) as d:
            status = d.wait()
        messages = systemd.sync()
    assert status == 1, d.output()
    statuses = [fields(m).get("STATUS", "") for m in messages]
    assert any(
        "driver 'b' (tier 1), phase background" in s and "ConnectionError" in s
        for s in statuses
    ), statuses
    assert any("STOPPING=1" in m for m in messages)
    assert [
        line for line in d.stdout if line.startswith("stop ") and len(line.split()) == 2
    ] == [
        "stop c",
        "stop b",
        "stop a",
    ]
    assert any(
        "driver 'b' (tier 1), phase background: ConnectionError" in line
        for line in d.stderr
    ), d.output()


@backends
@pytest.mark.parametrize("schedule", ["tiers", "dependencies"])
def test_run_takes_the_schedule_from_the_command_line(
    backend: str, schedule: str, tmp_path: Path
) -> None:
    """tiered run --schedule S runs with that schedule: the report says so."""
    report = tmp_path / "report.json"
    extra = ("--schedule", schedule, "--report", str(report))
    with Daemon(run(backend, *extra)) as d:
        d.wait_for("stderr", UP)
        d.signal(signal.SIGTERM)
        assert d.wait() == 0, d.output()
    data = json.loads(report.read_text())
    assert data["schedule"] == schedule
    assert [r["status"] for r in data["drivers"]] == ["stopped"] * 3
