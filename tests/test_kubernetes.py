"""examples/kubernetes/deployment.yaml: parsed, sized, and its commands run for real.

The manifest is read as YAML, its budgets are checked against the
runtime of ``examples/kubernetes/app.py`` (grace period, startup probe), and
the command lines it names run in real processes: the worker's ``tiered
run`` writes a real status file, and the manifest's exec probes (``tiered
probe ... --ready`` / ``--live``, run with the installed ``tiered`` script)
answer about it while the daemon starts, runs, drains and after it
stopped; the api's uvicorn command serves the ASGI app, and the HTTP probes'
paths answer.  Only the status file's directory and the listening address
change, from the pod's to the test's.
"""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml  # type: ignore[import-untyped]

from support.asgi import free_port, get, refused
from support.daemon import ROOT, TIMEOUT, Daemon, child_env, tiered_command

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType

    import tiered

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="exec probes, SIGTERM: a Linux pod's world"
)

EXAMPLE = ROOT / "examples" / "kubernetes"
MANIFEST = EXAMPLE / "deployment.yaml"
POD_STATUS = "/run/app/status.json"
#: seconds for Python to start and import the app, before the first tier
PYTHON_START = 5


def manifest() -> list[dict[str, Any]]:
    """Every document of the manifest."""
    with MANIFEST.open(encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def deployment(name: str) -> dict[str, Any]:
    """The pod spec of the Deployment ``name``."""
    [found] = [
        d
        for d in manifest()
        if d["kind"] == "Deployment" and d["metadata"]["name"] == name
    ]
    spec: dict[str, Any] = found["spec"]["template"]["spec"]
    return spec


def container(name: str) -> dict[str, Any]:
    """The one container of the Deployment ``name``."""
    [only] = deployment(name)["containers"]
    assert isinstance(only, dict)
    return only


def option(command: list[str], flag: str) -> str:
    """The value after ``flag`` in a command line."""
    return command[command.index(flag) + 1]


def load_app() -> ModuleType:
    """Import examples/kubernetes/app.py as the pod does (``app``)."""
    spec = importlib.util.spec_from_file_location("k8s_app_example", EXAMPLE / "app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def slowest_start(app: ModuleType) -> float:
    """The longest a start-up may take: each tier waits for its slowest driver."""
    plan: tiered.Plan = app.runtime.check()
    return sum(
        max(plan.drivers[name].start_timeout for name in tier)
        for tier in plan.tiers
        if tier
    )


# -- the manifest itself ------------------------------------------------------------


def test_the_manifest_is_two_deployments_and_a_service() -> None:
    """The YAML parses; every command word is a string (no bare on, 5 or yes)."""
    kinds = [(d["kind"], d["metadata"]["name"]) for d in manifest()]
    assert kinds == [
        ("Deployment", "worker"),
        ("Deployment", "api"),
        ("Service", "api"),
    ]
    for name in ("worker", "api"):
        box = container(name)
        words = list(box["command"])
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            words += box[probe].get("exec", {}).get("command", [])
        assert all(isinstance(w, str) for w in words), words


def test_the_worker_probes_its_status_file() -> None:
    """The worker writes the status file into an emptyDir that its exec probes read."""
    box = container("worker")
    assert box["command"][:3] == ["tiered", "run", "app:runtime"]
    assert option(box["command"], "--status-file") == POD_STATUS
    probes = {
        p: box[p]["exec"]["command"]
        for p in ("startupProbe", "readinessProbe", "livenessProbe")
    }
    assert probes == {
        "startupProbe": ["tiered", "probe", POD_STATUS, "--ready"],
        "readinessProbe": ["tiered", "probe", POD_STATUS, "--ready"],
        "livenessProbe": ["tiered", "probe", POD_STATUS, "--live"],
    }
    [mount] = box["volumeMounts"]
    assert mount["mountPath"] == str(Path(POD_STATUS).parent)
    [volume] = deployment("worker")["volumes"]
    assert (volume["name"], "emptyDir" in volume) == (mount["name"], True)


def test_the_api_probes_its_endpoints() -> None:
    """The api's HTTP probes ask /readyz and /livez on the port uvicorn listens on."""
    box = container("api")
    [port] = box["ports"]
    assert option(box["command"], "--port") == str(port["containerPort"])
    paths = {
        p: box[p]["httpGet"]
        for p in ("startupProbe", "readinessProbe", "livenessProbe")
    }
    assert paths == {
        "startupProbe": {"path": "/readyz", "port": port["name"]},
        "readinessProbe": {"path": "/readyz", "port": port["name"]},
        "livenessProbe": {"path": "/livez", "port": port["name"]},
    }


def test_grace_periods_cover_the_drain_and_the_stop() -> None:
    """terminationGracePeriodSeconds >= drain + uvicorn's wait + shutdown_timeout + 5."""
    app = load_app()
    stop = app.runtime.shutdown_timeout
    assert stop is not None
    worker = container("worker")["command"]
    need = float(option(worker, "--drain")) + stop + 5
    assert deployment("worker")["terminationGracePeriodSeconds"] >= need
    api = container("api")["command"]
    need = app.DRAIN + float(option(api, "--timeout-graceful-shutdown")) + stop + 5
    assert deployment("api")["terminationGracePeriodSeconds"] >= need


@pytest.mark.parametrize("name", ["worker", "api"])
def test_the_startup_probe_outlasts_the_slowest_start(name: str) -> None:
    """failureThreshold x periodSeconds >= every tier's slowest start_timeout + Python's start."""
    probe = container(name)["startupProbe"]
    budget = probe["failureThreshold"] * probe["periodSeconds"]
    assert budget >= slowest_start(load_app()) + PYTHON_START


# -- the worker's commands, for real ------------------------------------------------


def pod_to_test(words: list[str], status: Path) -> list[str]:
    """A command of the manifest, run here: the installed script, the test's file."""
    out = [str(status) if w == POD_STATUS else w for w in words]
    if out[0] == "tiered":
        out[:1] = tiered_command(script=True)
    return out


def probe(name: str, status: Path) -> tuple[int, str]:
    """Run the manifest's exec probe ``name``; its exit status and line."""
    command = pod_to_test(container("worker")[name]["exec"]["command"], status)
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        env=child_env(),
    )
    assert done.stderr == ""
    return done.returncode, done.stdout.strip()


def probes(status: Path) -> dict[str, int]:
    """The exit status of each of the worker's three probes."""
    return {
        p: probe(p, status)[0]
        for p in ("startupProbe", "readinessProbe", "livenessProbe")
    }


def until(done: Callable[[], bool]) -> None:
    """Wait until ``done()``; fail after TIMEOUT seconds."""
    deadline = time.monotonic() + TIMEOUT
    while not done():
        assert time.monotonic() < deadline, "it never happened"
        time.sleep(0.05)


def test_worker_probes_answer_through_a_daemons_life(tmp_path: Path) -> None:
    """The exec probes, against `tiered run --status-file --drain 5`: starting, ready, draining, stopped."""
    status = tmp_path / "status.json"
    command = pod_to_test(container("worker")["command"], status)
    # a small runtime whose last tier waits at a gate: start-up can be watched
    command[command.index("app:runtime")] = "tests.daemons.serve_probe:runtime"
    gates = {"PROBE_GATE": "init.c", "PROBE_GATE_DIR": str(tmp_path)}
    with Daemon(command, env=gates) as d:
        d.wait_for("stdout", "init c")
        until(status.exists)
        assert probe("readinessProbe", status) == (
            1,
            "not ready: state starting; not running: c (starting)",
        )
        assert probes(status) == {
            "startupProbe": 1,
            "readinessProbe": 1,
            "livenessProbe": 0,
        }

        (tmp_path / "init.c").touch()
        d.wait_for("stderr", "runtime 'probe' is up")
        until(lambda: probe("readinessProbe", status)[0] == 0)
        assert probes(status) == {
            "startupProbe": 0,
            "readinessProbe": 0,
            "livenessProbe": 0,
        }

        d.signal(signal.SIGTERM)  # kubelet's, at the start of the grace period
        d.wait_for("stderr", "SIGTERM: draining for 5s, then stopping")
        until(lambda: probe("readinessProbe", status)[0] == 1)
        assert probe("readinessProbe", status) == (1, "not ready: state stopping")
        assert probe("livenessProbe", status) == (0, "")
        assert not any(line.startswith("stop ") for line in d.stdout)  # still up

        d.signal(signal.SIGINT)  # ends the drain: the test need not wait 5 s
        assert d.wait() == 0
    code, line = probe("livenessProbe", status)
    assert (code, line.split(" (")[0]) == (1, f"stale: pid {d.pid} is gone")
    assert "(state stopped" in line
    assert probe("readinessProbe", status)[0] == 1


def test_the_worker_command_runs_the_example(tmp_path: Path) -> None:
    """The manifest's own worker command on examples/kubernetes/app.py gets ready."""
    status = tmp_path / "status.json"
    command = pod_to_test(container("worker")["command"], status)
    with Daemon(command, cwd=EXAMPLE) as d:  # workingDir: /app holds app.py
        d.wait_for("stderr", "runtime 'app' is up")
        until(lambda: probe("readinessProbe", status)[0] == 0)
        assert probes(status) == {
            "startupProbe": 0,
            "readinessProbe": 0,
            "livenessProbe": 0,
        }
        d.signal(signal.SIGTERM)
        until(lambda: probe("readinessProbe", status)[0] == 1)
        d.signal(signal.SIGINT)
        assert d.wait() == 0


# -- the api's command, for real -----------------------------------------------------


def test_api_probes_answer_from_real_uvicorn() -> None:
    """The manifest's uvicorn command: /readyz and /livez 200, then /readyz 503 draining."""
    box = container("api")
    command = list(box["command"])
    port = free_port()
    command[command.index("--host") + 1] = "127.0.0.1"
    command[command.index("--port") + 1] = str(port)
    assert command[0] == "uvicorn"
    command[:1] = [sys.executable, "-m", "uvicorn"]
    ready = box["readinessProbe"]["httpGet"]["path"]
    live = box["livenessProbe"]["httpGet"]["path"]
    started = box["startupProbe"]["httpGet"]["path"]
    with Daemon(command, cwd=EXAMPLE) as d:
        d.wait_for("stderr", "Uvicorn running on")
        assert not refused(port)
        for path in (started, ready, live):
            reply = get(port, path)
            assert (reply.status, reply.json()["state"]) == (200, "running"), path
        assert get(port, "/orders").json() == {"open": 3, "shipped": 12}

        d.signal(signal.SIGTERM)
        until(lambda: get(port, ready).status == 503)  # the pod leaves the Service
        assert get(port, ready).json()["state"] == "stopping"
        assert get(port, live).status == 200
        assert get(port, "/orders").status == 200  # still serving: the drain

        d.signal(signal.SIGINT)  # ends the drain; uvicorn stops, re-raises SIGTERM
        assert d.wait() == -signal.SIGTERM
    assert refused(port)
