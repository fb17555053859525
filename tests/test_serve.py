"""``tiered run`` as a real daemon: real subprocesses, real signals, real exits.

Each test starts ``python -m tiered run tests.daemons.serve_probe:runtime``
on one backend (asyncio, uvloop, trio), waits for what the child prints (its
drivers print an event line per hook on stdout; tiered logs on stderr), sends
signals and checks the order of events and the exit status.  Scenarios are set
up with the probe's environment variables (see tests/daemons/serve_probe.py).
No fixed sleeps decide anything: a test waits for a line, with a timeout.
"""

from __future__ import annotations

import json
import signal
import sys
import time
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

import pytest

from support.daemon import ROOT, Daemon, tiered_command

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="needs POSIX signals and subprocesses"
)

PROBE = "tests.daemons.serve_probe:runtime"
BAD_PLAN = "tests.daemons.bad_plan:runtime"
UP = "runtime 'probe' is up"
BAD_PLAN_ERROR = (
    "tiered: runtime 'bad': storage (tier 0) requires qemu (tier 1): a driver "
    "may only require drivers of lower tiers; put 'qemu' in a tier below 0, or "
    "raise 'storage' above tier 1 (or drop its tier= to infer it)"
)

BACKENDS = ["asyncio", "uvloop", "trio"]
backends = pytest.mark.parametrize("backend", BACKENDS)

STARTED = ["init a", "auto a", "init b", "auto b", "init c", "auto c"]


def run(backend: str, *extra: str) -> list[str]:
    """The command line serving the probe on ``backend``."""
    return tiered_command("run", PROBE, "--backend", backend, *extra)


def hooks(lines: list[str], *kinds: str) -> list[str]:
    """The probe's ``KIND NAME`` begin lines of the given kinds, in order."""
    return [
        line for line in lines if len(parts := line.split()) == 2 and parts[0] in kinds
    ]


def open_gate(gates: Path, key: str) -> None:
    """Let the probe's hook ``key`` (``init.c``) go on."""
    (gates / key).touch()


def assert_no_traceback(d: Daemon) -> None:
    """Nothing on stderr looks like a crash."""
    text = "\n".join(d.stderr)
    assert "Traceback" not in text, d.output()
    assert "Exception ignored" not in text, d.output()


# -- stopping ------------------------------------------------------------------


@backends
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_signal_stops_in_reverse_tier_order(
    backend: str, signum: signal.Signals
) -> None:
    """SIGTERM or SIGINT stops every driver, last tier first, and exits 0."""
    with Daemon(run(backend)) as d:
        d.wait_for("stderr", UP)
        d.signal(signum)
        assert d.wait() == 0, d.output()
    assert hooks(d.stdout, "init", "auto") == STARTED
    assert hooks(d.stdout, "stop") == ["stop c", "stop b", "stop a"]
    assert any(f"{signum.name}: stopping" in line for line in d.stderr)
    assert_no_traceback(d)


@backends
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_signal_during_startup_rolls_back(
    backend: str, signum: signal.Signals, tmp_path: Path
) -> None:
    """A signal while tier 2 initializes stops tiers 1 and 0 only, and exits 0."""
    env = {"PROBE_GATE": "init.c", "PROBE_GATE_DIR": str(tmp_path)}
    with Daemon(run(backend), env=env) as d:
        d.wait_for("stdout", "init c")
        d.signal(signum)
        assert d.wait() == 0, d.output()
    events = d.stdout
    assert "init c interrupted" in events
    assert hooks(events, "stop") == ["stop b", "stop a"]
    assert events.index("init c interrupted") < events.index("stop b")
    assert "auto c" not in events
    assert any(f"{signum.name} during start-up: rolling back" in x for x in d.stderr)
    assert not any(UP in line for line in d.stderr)
    assert_no_traceback(d)


@backends
def test_failing_stop_during_a_rollback_exits_1(backend: str, tmp_path: Path) -> None:
    """A stop that fails while SIGTERM rolls the start-up back: exit 1, one line."""
    env = {
        "PROBE_GATE": "init.c",
        "PROBE_GATE_DIR": str(tmp_path),
        "PROBE_FAIL": "stop.b",
    }
    with Daemon(run(backend), env=env) as d:
        d.wait_for("stdout", "init c")
        d.signal(signal.SIGTERM)
        status = d.wait()
    assert hooks(d.stdout, "stop") == ["stop b", "stop a"]
    assert status == 1, d.output()
    assert any(
        x.startswith("tiered: ")
        and "'b' (tier 1), phase stop: RuntimeError: probe: stop of b failed" in x
        for x in d.stderr
    ), d.output()
    assert_no_traceback(d)


@backends
@pytest.mark.parametrize(
    ("first", "reload_first", "logged"),
    [
        ("SIGINT", False, "second SIGINT"),
        ("SIGINT", True, "second SIGINT"),
        ("SIGTERM", False, "SIGINT after SIGTERM"),
    ],
    ids=["running", "after-reload", "after-sigterm"],
)
def test_second_sigint_cuts_a_slow_stop_short(
    backend: str, first: str, reload_first: bool, logged: str
) -> None:
    """A SIGINT during a 60 s stop ends it at once: exit 1, and stderr says why.

    The stop began with a SIGINT (so this one is the second) or a SIGTERM.
    """
    env = {"PROBE_DELAY": "stop.a=60", "PROBE_STOP_TIMEOUT": "120"}
    with Daemon(run(backend), env=env) as d:
        d.wait_for("stderr", UP)
        if reload_first:  # a reload swaps the drivers' scopes, then puts them back
            d.signal(signal.SIGHUP)
            d.wait_for("stderr", "tiered: reloaded")
        d.signal(signal.Signals[first])
        d.wait_for("stdout", "stop a")
        cut = time.monotonic()
        d.signal(signal.SIGINT)
        status = d.wait()
        took = time.monotonic() - cut
    assert status == 1, d.output()
    assert took < 10, f"the cut-short stop took {took:.1f}s"
    assert hooks(d.stdout, "stop") == ["stop c", "stop b", "stop a"]
    assert "stop a interrupted" in d.stdout
    assert any(f"{logged}: cutting the stop short" in x for x in d.stderr)
    if first != "SIGINT":
        assert not any("second SIGINT" in x for x in d.stderr), d.output()
    assert any(
        x.startswith("tiered: ")
        and "'a' (tier 0), phase stop" in x
        and "cut short" in x
        for x in d.stderr
    ), d.output()
    assert_no_traceback(d)


@backends
def test_second_sigint_cuts_a_rollback_short(backend: str, tmp_path: Path) -> None:
    """A second SIGINT during a start-up rollback ends it too: exit 1, says why."""
    env = {
        "PROBE_GATE": "init.c",
        "PROBE_GATE_DIR": str(tmp_path),
        "PROBE_DELAY": "stop.b=60",
        "PROBE_STOP_TIMEOUT": "120",
    }
    with Daemon(run(backend), env=env) as d:
        d.wait_for("stdout", "init c")
        d.signal(signal.SIGINT)
        d.wait_for("stdout", "stop b")
        cut = time.monotonic()
        d.signal(signal.SIGINT)
        status = d.wait()
        took = time.monotonic() - cut
    assert took < 10, f"the cut-short rollback took {took:.1f}s"
    assert hooks(d.stdout, "stop") == ["stop b", "stop a"]
    assert "stop b interrupted" in d.stdout
    assert status == 1, d.output()
    assert any(
        x.startswith("tiered: ")
        and "'b' (tier 1), phase stop" in x
        and "cut short" in x
        for x in d.stderr
    ), d.output()
    assert_no_traceback(d)


# -- reloading -----------------------------------------------------------------


@backends
def test_sighup_reloads_tier_by_tier(backend: str) -> None:
    """SIGHUP reloads tier 0, then 1, then 2; each tier ends before the next."""
    env = {"PROBE_DELAY": "reload.a=0.05,reload.b=0.05"}
    with Daemon(run(backend), env=env) as d:
        d.wait_for("stderr", UP)
        d.signal(signal.SIGHUP)
        d.wait_for("stderr", "tiered: reloaded")
        d.signal(signal.SIGTERM)
        assert d.wait() == 0, d.output()
    events = d.stdout
    reload_lines = [line for line in events if line.startswith("reload")]
    assert reload_lines == [
        "reload a",
        "reload a done",
        "reload b",
        "reload b done",
        "reload c",
        "reload c done",
    ]
    assert events.index("reload c done") < events.index("stop c")
    assert_no_traceback(d)


@backends
def test_sighups_after_the_stop_do_not_kill_it(backend: str) -> None:
    """SIGHUPs that keep coming while it exits (logrotate, say) leave exit status 0.

    asyncio gives a signal back to its default action when it stops listening,
    which for SIGHUP is to die: serve() puts back the handler it found, and
    ``tiered run`` ignores SIGHUP outside serve().
    """
    with Daemon(run(backend)) as d:
        d.wait_for("stderr", UP)
        d.signal(signal.SIGTERM)
        while d.proc.poll() is None:
            d.signal(signal.SIGHUP)
            time.sleep(0.001)
        assert d.wait() == 0, d.output()
    assert hooks(d.stdout, "stop") == ["stop c", "stop b", "stop a"]
    assert_no_traceback(d)


@backends
def test_sighup_during_startup_is_ignored(backend: str, tmp_path: Path) -> None:
    """A SIGHUP while tiers still start is logged and ignored; the daemon comes up."""
    env = {"PROBE_GATE": "init.c", "PROBE_GATE_DIR": str(tmp_path)}
    with Daemon(run(backend), env=env) as d:
        d.wait_for("stdout", "init c")
        d.signal(signal.SIGHUP)
        d.wait_for("stderr", "SIGHUP ignored: the daemon is starting")
        open_gate(tmp_path, "init.c")
        d.wait_for("stderr", UP)
        d.signal(signal.SIGTERM)
        assert d.wait() == 0, d.output()
    assert hooks(d.stdout, "reload") == []
    assert hooks(d.stdout, "stop") == ["stop c", "stop b", "stop a"]
    assert_no_traceback(d)


@backends
def test_sighups_during_a_reload_are_coalesced(backend: str, tmp_path: Path) -> None:
    """Three SIGHUPs during a reload make one more reload, not three."""
    env = {"PROBE_GATE": "reload.b", "PROBE_GATE_DIR": str(tmp_path)}
    with Daemon(run(backend), env=env) as d:
        d.wait_for("stderr", UP)
        d.signal(signal.SIGHUP)
        d.wait_for("stdout", "reload b")  # the first reload waits at tier 1
        for _ in range(3):
            d.signal(signal.SIGHUP)
        time.sleep(0.3)  # let the signals land; the gate keeps the reload waiting
        open_gate(tmp_path, "reload.b")
        d.wait_for("stdout", "reload c done", count=2)
        d.wait_for("stderr", "tiered: reloaded", count=2)
        d.signal(signal.SIGTERM)
        assert d.wait() == 0, d.output()
    reloads = hooks(d.stdout, "reload").count("reload a")
    assert 2 <= reloads < 4, d.output()
    assert hooks(d.stdout, "stop") == ["stop c", "stop b", "stop a"]
    assert_no_traceback(d)


# -- failures ------------------------------------------------------------------


@backends
def test_failing_initialize_exits_1_with_one_line(backend: str) -> None:
    """A driver failing in initialize: exit 1, a line naming it, no traceback."""
    with Daemon(run(backend), env={"PROBE_FAIL": "init.b"}) as d:
        assert d.wait() == 1, d.output()
    events = d.stdout
    assert "init b interrupted" in events
    assert hooks(events, "stop") == ["stop a"]
    assert "init c" not in events
    failures = [x for x in d.stderr if x.startswith("tiered: ")]
    assert failures == [
        "tiered: runtime 'probe' failed to start: b (tier 1)",
        "tiered:   driver 'b' (tier 1), phase initialize: "
        "RuntimeError: probe: init of b failed on purpose",
    ], d.output()
    assert_no_traceback(d)


@backends
def test_traceback_option_shows_the_traceback(backend: str) -> None:
    """``tiered --traceback run`` shows the failure's traceback (exit 1)."""
    command = tiered_command("--traceback", "run", PROBE, "--backend", backend)
    with Daemon(command, env={"PROBE_FAIL": "init.b"}) as d:
        assert d.wait() == 1, d.output()
    text = "\n".join(d.stderr)
    assert "Traceback (most recent call last)" in text
    assert "StartupError" in text
    assert "RuntimeError: probe: init of b failed on purpose" in text
    assert "driver 'b' (tier 1), phase initialize" in text


# -- the report ----------------------------------------------------------------


@backends
def test_report_svg(backend: str, tmp_path: Path) -> None:
    """``--report out.svg`` writes the run's timeline as SVG when the daemon ends."""
    out = tmp_path / "reports" / "out.svg"
    with Daemon(run(backend, "--report", str(out))) as d:
        d.wait_for("stderr", UP)
        d.signal(signal.SIGTERM)
        assert d.wait() == 0, d.output()
    root = ET.fromstring(out.read_text(encoding="utf-8"))
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    labels = "".join(root.itertext())
    for name in ("a", "b", "c"):
        assert name in labels
    assert any(f"report written to {out}" in x for x in d.stderr)


@backends
def test_report_json(backend: str, tmp_path: Path) -> None:
    """``--report out.json`` writes the whole run, stop phases included."""
    out = tmp_path / "out.json"
    with Daemon(run(backend, "--report", str(out))) as d:
        d.wait_for("stderr", UP)
        d.signal(signal.SIGTERM)
        assert d.wait() == 0, d.output()
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["name"] == "probe"
    assert [t["index"] for t in report["tiers"]] == [0, 1, 2]
    drivers = {r["name"]: r for r in report["drivers"]}
    assert sorted(drivers) == ["a", "b", "c"]
    for record in drivers.values():
        assert record["status"] == "stopped"
        assert set(record["phases"]) == {"initialize", "autostart", "stop"}
    assert report["ready_at"] <= report["stopping_at"] <= report["stopped_at"]


# -- mistakes of the user ------------------------------------------------------


@backends
@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("nope:runtime", "tiered: cannot import 'nope': no module named 'nope'"),
        ("x", "tiered: 'x' is not MODULE:ATTR"),
        (
            "tests.daemons.serve_probe:NOT_A_RUNTIME",
            "tiered: tests.daemons.serve_probe:NOT_A_RUNTIME is a str, not a tiered.Runtime",
        ),
        (
            "tests.daemons.serve_probe:nothing",
            "tiered: module 'tests.daemons.serve_probe' has no attribute 'nothing'",
        ),
    ],
    ids=["no-module", "no-colon", "not-a-runtime", "no-attribute"],
)
def test_usage_error_exits_2_with_one_line(
    backend: str, target: str, message: str
) -> None:
    """A wrong MODULE:ATTR is one line on stderr and exit status 2."""
    with Daemon(tiered_command("run", target, "--backend", backend)) as d:
        assert d.wait() == 2, d.output()
    assert len(d.stderr) == 1, d.output()
    assert d.stderr[0].startswith(message), d.output()
    assert d.stdout == []


@backends
def test_run_refuses_a_bad_plan(backend: str) -> None:
    """``tiered run`` on an invalid plan starts nothing: the message and exit 1."""
    with Daemon(tiered_command("run", BAD_PLAN, "--backend", backend)) as d:
        assert d.wait() == 1, d.output()
    assert d.stdout == []
    assert d.stderr == [BAD_PLAN_ERROR], d.output()


# -- check and graph (no backend involved: run through both entry points) ------

entry_points = pytest.mark.parametrize(
    "script", [False, True], ids=["python-m", "script"]
)


@entry_points
def test_check_prints_the_plan(script: bool) -> None:
    """``tiered check`` prints every tier and driver and exits 0."""
    with Daemon(tiered_command("check", PROBE, script=script)) as d:
        assert d.wait() == 0, d.output()
    assert d.stdout == [
        "runtime 'probe': 3 drivers in 3 tiers",
        "tier 0:",
        "  a: start 30s, stop 30s",
        "tier 1:",
        "  b: requires a; start 30s, stop 30s",
        "tier 2:",
        "  c: requires b; start 30s, stop 30s",
    ]
    assert d.stderr == []


@entry_points
def test_check_refuses_a_bad_plan(script: bool) -> None:
    """``tiered check`` on an invalid plan prints the ConfigError and exits 1."""
    with Daemon(tiered_command("check", BAD_PLAN, script=script)) as d:
        assert d.wait() == 1, d.output()
    assert d.stdout == []
    assert d.stderr == [BAD_PLAN_ERROR]


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        (
            "mermaid",
            [
                "flowchart BT",
                '  subgraph tier0["tier 0"]',
                '    d0["a"]',
                "  end",
                '  subgraph tier1["tier 1"]',
                '    d1["b"]',
                "  end",
                '  subgraph tier2["tier 2"]',
                '    d2["c"]',
                "  end",
                "  d1 --> d0",
                "  d2 --> d1",
            ],
        ),
        (
            "dot",
            [
                'digraph "probe" {',
                "  rankdir=BT;",
                "  node [shape=box];",
                '  subgraph cluster_tier0 { label="tier 0";',
                '    "a";',
                "  }",
                '  subgraph cluster_tier1 { label="tier 1";',
                '    "b";',
                "  }",
                '  subgraph cluster_tier2 { label="tier 2";',
                '    "c";',
                "  }",
                '  "b" -> "a";',
                '  "c" -> "b";',
                "}",
            ],
        ),
    ],
)
def test_graph(fmt: str, expected: list[str]) -> None:
    """``tiered graph --format mermaid|dot`` prints the plan as a graph."""
    with Daemon(tiered_command("graph", PROBE, "--format", fmt), cwd=ROOT) as d:
        assert d.wait() == 0, d.output()
    assert d.stdout == expected
    assert d.stderr == []
