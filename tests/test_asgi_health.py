"""tiered.asgi in production: health endpoints, the drain, and a failed run that stops the server.

The first tests serve ``tests/daemons/asgi_web.py`` with real uvicorn in a
child process on a loopback port, send it real signals and read its exit
status; uvicorn runs only on asyncio (its own loop, or uvloop's), never on
trio, so they run on asyncio and uvloop.  The others call the health app
in this process, on asyncio, uvloop and trio.  tests/test_asgi_signals.py
tests the drain and the failure watch by hand, on the three backends.
"""

from __future__ import annotations

import math
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pytest

import tiered
import tiered.asgi
from support.asgi import (
    FAILED_LINE,
    Reply,
    free_port,
    get,
    lifespan_server,
    make_runtime,
    refused,
    start,
    uvicorn_command,
    values,
)
from support.daemon import TIMEOUT, Daemon

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="SIGTERM and the drain are POSIX"
)

LOOPS = ["asyncio", "uvloop"]  # uvicorn's --loop; it does not run on trio
RUNNING = {"settings": "running", "database": "running", "storage": "running"}


def body(
    state: str, *, pid: int, ready: bool = False, live: bool = True, **drivers: str
) -> dict[str, Any]:
    """What /livez and /readyz answer: the status file's object."""
    return {
        "runtime": "web",
        "pid": pid,
        "state": state,
        "ready": ready,
        "live": live,
        "drivers": {**RUNNING, **drivers},
    }


def poll(port: int, path: str, done: Callable[[Reply], bool]) -> Reply:
    """GET ``path`` until ``done(reply)``; fail after TIMEOUT seconds."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        reply = get(port, path)
        if done(reply):
            return reply
        assert time.monotonic() < deadline, f"{path} never got there: {reply}"
        time.sleep(0.02)


def web(entry: str, port: int, loop: str, tmp_path: Path, **env: str) -> Daemon:
    """uvicorn serving tests/daemons/asgi_web.py's ``entry``, gates in tmp_path."""
    return Daemon(
        uvicorn_command(f"tests.daemons.asgi_web:{entry}", port, loop),
        env={"WEB_GATE_DIR": str(tmp_path), **env},
    )


# -- real uvicorn, real signals ----------------------------------------------------


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("entry", ["lifespan_app", "middleware_app"])
def test_probes_through_a_life(entry: str, loop: str, tmp_path: Path) -> None:
    """Refused while starting; 200 ready; 503 restarting; 200 again; 503 draining; stopped."""
    port = free_port()
    scenario = {
        "WEB_GATES": "init.database,init.storage.2",
        "WEB_RESTART": "on-failure",
        "WEB_DRAIN": "30",
    }
    with web(entry, port, loop, tmp_path, **scenario) as d:
        d.wait_for("stdout", "waiting for init.database")
        assert refused(port)  # uvicorn listens only once every tier is up
        (tmp_path / "init.database").touch()
        d.wait_for("stderr", "Uvicorn running on")
        for path in ("/readyz", "/livez"):
            reply = get(port, path)
            assert (reply.status, reply.json()) == (
                200,
                body("running", pid=d.pid, ready=True),
            )
            assert reply.headers["content-type"] == "application/json"
        assert get(port, "/values").json()["storage"] == "pools on db-conn (start 1)"

        (tmp_path / "crash.1").touch()  # storage fails; restart="on-failure"
        d.wait_for("stdout", "waiting for init.storage.2")
        restarting = body("restarting", pid=d.pid, storage="restarting")
        reply = get(port, "/readyz")
        assert (reply.status, reply.json()) == (503, restarting)
        assert (get(port, "/livez").status, get(port, "/livez").json()) == (
            200,
            restarting,
        )
        values = get(port, "/values")  # run.get(storage) raised DependencyError
        assert values.status == 503
        assert values.json()["error"].startswith(
            "run.get('storage'): storage (tier 1) is restarting"
        )

        (tmp_path / "init.storage.2").touch()
        reply = poll(port, "/readyz", lambda r: r.status == 200)
        assert reply.json() == body("running", pid=d.pid, ready=True)
        assert get(port, "/values").json()["storage"] == "pools on db-conn (start 2)"

        d.signal(signal.SIGTERM)
        d.wait_for("stderr", "SIGTERM: not ready; serving for 30s more")
        draining = body("stopping", pid=d.pid)
        assert (get(port, "/readyz").status, get(port, "/readyz").json()) == (
            503,
            draining,
        )
        assert get(port, "/livez").status == 200
        assert get(port, "/values").status == 200  # the drain: still serving
        assert not any("Shutting down" in line for line in d.stderr)

        d.signal(signal.SIGINT)  # ends the drain at once
        d.wait_for("stderr", "SIGINT during the drain: the ASGI server stops now")
        # uvicorn got SIGTERM, stopped, and re-raised it: killed by SIGTERM (143)
        assert d.wait() == -signal.SIGTERM
    assert refused(port)
    assert any("storage (tier 1) stopped" in line for line in d.stderr)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_drain_serves_then_stops_by_itself(loop: str, tmp_path: Path) -> None:
    """drain=1: after SIGTERM, not ready but serving for 1 s; then uvicorn stops (143)."""
    port = free_port()
    with web("lifespan_app", port, loop, tmp_path, WEB_DRAIN="1") as d:
        d.wait_for("stderr", "Uvicorn running on")
        sent = time.monotonic()
        d.signal(signal.SIGTERM)
        d.wait_for("stderr", "SIGTERM: not ready; serving for 1s more")
        assert get(port, "/readyz").status == 503
        assert get(port, "/values").status == 200
        assert d.wait() == -signal.SIGTERM
        took = time.monotonic() - sent
    assert took >= 1.0
    drained = d.stderr.index(next(x for x in d.stderr if "serving for 1s more" in x))
    assert d.stderr.index("INFO:     Shutting down") > drained


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize(
    ("entry", "drain"), [("lifespan_app", "0"), ("middleware_app", "30")]
)
def test_a_failed_driver_stops_uvicorn(
    entry: str, drain: str, loop: str, tmp_path: Path
) -> None:
    """A required driver crashes: logged by name, 503 to the request in flight, exit 143."""
    port = free_port()
    with (
        web(entry, port, loop, tmp_path, WEB_DRAIN=drain) as d,
        ThreadPoolExecutor(1) as pool,
    ):
        d.wait_for("stderr", "Uvicorn running on")
        in_flight = pool.submit(get, port, "/slow")
        d.wait_for("stdout", "slow request in flight")
        (tmp_path / "crash.1").touch()
        line = d.wait_for("stderr", "failed while the ASGI application serves")
        assert line == (
            f"tiered: ERROR: {FAILED_LINE}; stopping the ASGI server "
            f"(SIGTERM to pid {d.pid})"
        )
        reply = in_flight.result(timeout=TIMEOUT)
        # a drain of 30 s would outlast the wait: the failure skips it
        assert d.wait() == -signal.SIGTERM
    assert reply.status == 503
    answer = reply.json()
    assert answer["error"] == "runtime 'web' failed: " + FAILED_LINE.split(": ", 1)[1]
    assert (answer["live"], answer["drivers"]["storage"]) == (False, "failed")
    assert refused(port)
    assert not any("serving for" in x for x in d.stderr)
    if entry == "middleware_app":  # the middleware reports it at shutdown
        assert "ERROR:    Application shutdown failed. Exiting." in d.stderr


# -- the health app itself ----------------------------------------------------------


@pytest.mark.anyio
async def test_health_answers_head_refuses_post_and_404s_the_rest() -> None:
    """HEAD: the status without a body; POST: 405; any other path: 404."""
    probes = tiered.asgi.health()
    async with lifespan_server(
        tiered.asgi.LifespanMiddleware(probes, make_runtime())
    ) as server:
        await start(server)
        head = await server.call("/readyz", method="HEAD")
        assert (head.status, head.body) == (200, b"")
        assert head.headers["cache-control"] == "no-store"
        post = await server.call("/livez", method="POST")
        assert (post.status, post.headers["allow"]) == (405, "GET, HEAD")
        assert (await server.call("/metrics")).status == 404
        await server.ask("shutdown")


@pytest.mark.anyio
async def test_health_below_a_mount_point_and_with_its_own_paths() -> None:
    """Mounted (root_path), the paths are below the mount; live= and ready= rename them."""
    probes = tiered.asgi.health(live="/alive", ready="/ready")
    async with lifespan_server(
        tiered.asgi.LifespanMiddleware(probes, make_runtime())
    ) as server:
        await start(server)
        mounted = await server.call("/ops/alive", root_path="/ops")
        assert (mounted.status, mounted.json()["state"]) == (200, "running")
        assert (await server.call("/ops/ready", root_path="/ops")).status == 200
        assert (await server.call("/livez")).status == 404
        await server.ask("shutdown")


@pytest.mark.anyio
async def test_health_without_a_run_is_a_500_that_says_how() -> None:
    """No lifespan put a run in the state: 500 naming lifespan() and the middleware."""
    async with lifespan_server(tiered.asgi.health()) as server:
        reply = await server.call("/livez")  # its lifespan: nothing to do
    assert reply.status == 500
    assert "lifespan=tiered.asgi.lifespan(runtime)" in reply.json()["error"]


def test_health_paths_are_checked() -> None:
    """A path without a leading slash, or the same path twice, is refused at once."""
    with pytest.raises(ValueError, match="begins with '/'"):
        tiered.asgi.health(live="livez")
    with pytest.raises(ValueError, match="both '/z'"):
        tiered.asgi.health(live="/z", ready="/z")
    assert repr(tiered.asgi.health()) == "<tiered.asgi.health /livez /readyz>"


@pytest.mark.parametrize("drain", [-1, math.inf, "5"])
def test_a_drain_is_finite_seconds(drain: Any) -> None:
    """drain= takes finite seconds >= 0, in both entry points."""
    rt = make_runtime()
    with pytest.raises(tiered.ConfigError, match="drain"):
        tiered.asgi.lifespan(rt, drain=drain)
    with pytest.raises(tiered.ConfigError, match="drain"):
        tiered.asgi.LifespanMiddleware(values, rt, drain=drain)
