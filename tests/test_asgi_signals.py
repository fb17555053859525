"""tiered.asgi's drain and failure watch, by hand, on every backend, with real signals.

These tests play the server's side of the ASGI lifespan protocol in this
process (tests/support/asgi.py), on asyncio, uvloop and trio, and send the
process real signals.  A Python handler for SIGTERM and SIGINT stands for
the server's (uvicorn installs one with ``signal.signal()``) and records
what reaches it: the drain holds the signal back, then hands it on; a run
that fails sends SIGTERM at once.  tests/test_asgi_health.py does the same
with real uvicorn in a child process.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from typing import TYPE_CHECKING, Any

import anyio
import pytest

import tiered
import tiered.asgi
from support.asgi import (
    FAILED_LINE,
    Message,
    answered,
    lifespan_server,
    make_runtime,
    start,
    until,
    values,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from types import FrameType

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="SIGTERM and the drain are POSIX"
)


@pytest.fixture
def server_handler() -> Iterator[list[int]]:
    """Python handlers for SIGTERM and SIGINT, as a server's: they record signals."""
    got: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        got.append(signum)

    watched = (signal.SIGTERM, signal.SIGINT)
    before = {sig: signal.signal(sig, handler) for sig in watched}
    try:
        yield got
    finally:
        for sig, old in before.items():
            signal.signal(sig, old)


@pytest.fixture
def no_handler() -> Iterator[None]:
    """SIGTERM at its default action, as in a process without a server."""
    before = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def by_hand_body(state: str, **fields: Any) -> dict[str, Any]:
    drivers = {"database": "running", "storage": "running"}
    drivers.update(fields.pop("drivers", {}))
    out = {"runtime": "web", "pid": os.getpid(), "state": state, "ready": False}
    return {**out, "live": True, **fields, "drivers": drivers}


@pytest.mark.anyio
async def test_health_through_a_life_by_hand(server_handler: list[int]) -> None:
    """starting, ready, restarting, ready, draining (SIGTERM held), SIGINT: handed on."""
    gate, reopen, crash = anyio.Event(), anyio.Event(), anyio.Event()
    rt = make_runtime(gate=gate, reopen=reopen, crashes=(crash,), restart="on-failure")
    app = tiered.asgi.LifespanMiddleware(tiered.asgi.health(values), rt, drain=30)
    async with lifespan_server(app) as server, anyio.create_task_group() as tg:
        tg.start_soon(server.inbox_send.send, {"type": "lifespan.startup"})
        await until(lambda: "tiered" in server.state)
        starting = by_hand_body(
            "starting", drivers={"database": "starting", "storage": "pending"}
        )
        assert await server.request("/readyz") == (503, starting)
        assert await server.request("/livez") == (200, starting)
        assert await server.request("/values") == (
            503,
            {"error": "runtime 'web' is starting", **starting},
        )
        gate.set()
        assert await server.outbox_receive.receive() == {
            "type": "lifespan.startup.complete"
        }
        ready = by_hand_body("running", ready=True)
        assert await server.request("/readyz") == (200, ready)
        assert await server.request("/values") == (
            200,
            {"storage": "pools on db-conn (start 1)"},
        )

        crash.set()
        run: tiered.Run = server.state["tiered"]
        await until(lambda: run.state == "restarting")
        restarting = by_hand_body("restarting", drivers={"storage": "restarting"})
        assert await server.request("/readyz") == (503, restarting)
        assert await server.request("/livez") == (200, restarting)
        status, answer = await server.request("/values")
        assert (status, answer["state"]) == (503, "restarting")
        reopen.set()
        await until(lambda: run.ready)
        assert await server.request("/readyz") == (200, ready)

        os.kill(os.getpid(), signal.SIGTERM)  # real: taken from the "server"
        draining = by_hand_body("stopping")
        assert await answered(server, "/readyz", 503) == draining
        assert await server.request("/livez") == (200, draining)
        assert await server.request("/values") == (
            200,
            {"storage": "pools on db-conn (start 2)"},
        )
        assert server_handler == []  # held for the drain

        os.kill(os.getpid(), signal.SIGINT)  # ends the drain: SIGTERM goes on
        await until(lambda: server_handler == [signal.SIGTERM])
        assert await server.ask("shutdown") == {"type": "lifespan.shutdown.complete"}
    stopped = by_hand_body(
        "stopped", drivers={"database": "stopped", "storage": "stopped"}
    )
    # after the run, the middleware turns every request away, probes included
    refused_after = {"error": "runtime 'web' is stopped", **stopped}
    assert await server.request("/readyz") == (503, refused_after)
    assert await server.request("/values") == (503, refused_after)
    assert server_handler == [signal.SIGTERM]


def failing_app(kind: str, rt: tiered.Runtime, drain: float) -> Any:
    """The raw app under LifespanMiddleware, or Starlette with lifespan=."""
    if kind == "middleware":
        return tiered.asgi.LifespanMiddleware(
            tiered.asgi.health(values), rt, drain=drain
        )
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.routing import Route

    return Starlette(
        routes=[Route("/values", values)],
        middleware=[Middleware(tiered.asgi.health)],
        lifespan=tiered.asgi.lifespan(rt, drain=drain),
    )


@pytest.mark.anyio
@pytest.mark.parametrize("drain", [0, 30])
@pytest.mark.parametrize("kind", ["middleware", "lifespan"])
async def test_a_failed_run_sends_sigterm_by_hand(
    kind: str, drain: float, server_handler: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    """A required driver fails: one SIGTERM to the server at once (no drain), 503s."""
    crash, held = anyio.Event(), anyio.Event()
    rt = make_runtime(crashes=(crash,), held=held)
    async with lifespan_server(failing_app(kind, rt, drain)) as server:
        await start(server)
        crash.set()
        await until(lambda: server_handler == [signal.SIGTERM])
        run: tiered.Run = server.state["tiered"]
        assert run.state == "stopping"  # told before the drivers stopped
        held.set()
        await until(lambda: run.state == "stopped")
        status, answer = await server.request("/values")
        assert status == 503
        assert (
            answer["error"] == "runtime 'web' failed: " + FAILED_LINE.split(": ", 1)[1]
        )
        assert (answer["live"], answer["drivers"]["storage"]) == (False, "failed")
        assert (await server.call("/livez")).status == 503
        if kind == "lifespan":  # Starlette reports the failure at once
            reply = await server.outbox_receive.receive()
        else:
            reply = await server.ask("shutdown")
    assert reply["type"] == "lifespan.shutdown.failed"
    assert server_handler == [signal.SIGTERM]
    [line] = [
        r.getMessage() for r in caplog.records if "while the ASGI" in r.getMessage()
    ]
    assert (
        line
        == f"{FAILED_LINE}; stopping the ASGI server (SIGTERM to pid {os.getpid()})"
    )


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["middleware", "lifespan"])
async def test_a_failed_start_up_sends_no_sigterm(
    kind: str, server_handler: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    """A start-up that fails is the server's to report (it exits): no SIGTERM."""
    rt = make_runtime(gate=anyio.Event(), crashes=())

    @rt.driver(tier=0)
    async def broken(ctx: tiered.Context) -> AsyncIterator[None]:
        if ctx.name == "broken":  # always: the generator still has its yield
            raise OSError("disk /dev/sdz is gone")
        yield None

    async with lifespan_server(failing_app(kind, rt, 30)) as server:
        reply = await server.ask("startup")
    assert reply["type"] == "lifespan.startup.failed"
    assert "disk /dev/sdz is gone" in reply["message"]
    assert server_handler == []
    assert "while the ASGI application serves" not in caplog.text


@pytest.mark.anyio
async def test_a_failure_during_the_drain_ends_it(server_handler: list[int]) -> None:
    """The run fails while it drains: SIGTERM goes on at once, drivers still stopping."""
    crash, held = anyio.Event(), anyio.Event()
    rt = make_runtime(crashes=(crash,), held=held)
    app = tiered.asgi.LifespanMiddleware(tiered.asgi.health(values), rt, drain=30)
    async with lifespan_server(app) as server:
        await start(server)
        os.kill(os.getpid(), signal.SIGTERM)
        assert (await answered(server, "/readyz", 503))["live"] is True
        assert server_handler == []
        crash.set()
        await until(lambda: server_handler == [signal.SIGTERM])
        run: tiered.Run = server.state["tiered"]
        assert run.statuses()["database"] == "running"  # its stop waits
        assert (await server.call("/livez")).status == 503
        held.set()
        await server.ask("shutdown")
    assert server_handler == [signal.SIGTERM]


@pytest.mark.anyio
async def test_a_restart_that_gives_up_sends_sigterm_by_hand(
    server_handler: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    """A restart gives up: the log line says so, and the server gets SIGTERM."""
    first, second = anyio.Event(), anyio.Event()
    first.set()
    second.set()
    policy = tiered.Restart(max_restarts=1, window=60.0, delay=0.01)
    rt = make_runtime(crashes=(first, second), restart=policy)
    app = tiered.asgi.LifespanMiddleware(tiered.asgi.health(values), rt)
    async with lifespan_server(app) as server:
        await start(server)
        await until(lambda: server_handler == [signal.SIGTERM])
        assert (await server.call("/livez")).json()["live"] is False
        await server.ask("shutdown")
    [line] = [
        r.getMessage() for r in caplog.records if "while the ASGI" in r.getMessage()
    ]
    assert line.startswith(FAILED_LINE)
    assert "(gave up restarting storage (tier 1) after 1 restart(s) within 60s)" in line


@pytest.mark.anyio
async def test_without_a_sigterm_handler_nothing_is_killed(
    no_handler: None, caplog: pytest.LogCaptureFixture
) -> None:
    """No server handles SIGTERM (a test client): no signal, a warning, 503s."""
    caplog.set_level(logging.INFO, logger="tiered")
    crash = anyio.Event()
    rt = make_runtime(crashes=(crash,))
    app = tiered.asgi.LifespanMiddleware(tiered.asgi.health(values), rt, drain=30)
    async with lifespan_server(app) as server:
        await start(server)
        crash.set()
        run: tiered.Run = server.state["tiered"]
        await until(lambda: run.state == "stopped")
        assert (await server.call("/values")).status == 503
        await server.ask("shutdown")
    [line] = [
        r.getMessage() for r in caplog.records if "while the ASGI" in r.getMessage()
    ]
    assert line.endswith(
        "nothing in this process handles SIGTERM, so the server is not stopped: "
        "it answers 503 until it is"
    )
    assert "no drain of 30s on SIGTERM: no server in this process handles SIGTERM" in (
        caplog.text
    )


@pytest.mark.anyio
async def test_without_a_drain_signals_go_straight_to_the_server(
    server_handler: list[int],
) -> None:
    """drain=0 takes no signal: SIGTERM reaches the server's handler as it comes."""
    rt = make_runtime()
    app = tiered.asgi.LifespanMiddleware(tiered.asgi.health(values), rt)
    async with lifespan_server(app) as server:
        await start(server)
        os.kill(os.getpid(), signal.SIGTERM)
        await until(lambda: server_handler == [signal.SIGTERM])
        assert (await server.call("/readyz")).status == 200  # the server stops it
        await server.ask("shutdown")


@pytest.mark.anyio
async def test_a_sigterm_during_the_drain_changes_nothing(
    server_handler: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    """A second SIGTERM is not handed on: the drain ends as planned, then one SIGTERM."""
    caplog.set_level(logging.INFO, logger="tiered")
    rt = make_runtime()
    app = tiered.asgi.LifespanMiddleware(tiered.asgi.health(values), rt, drain=0.3)
    async with lifespan_server(app) as server:
        await start(server)
        os.kill(os.getpid(), signal.SIGTERM)
        await answered(server, "/readyz", 503)
        os.kill(os.getpid(), signal.SIGTERM)
        await until(lambda: "it ends as planned" in caplog.text)
        assert server_handler == []
        await until(lambda: server_handler == [signal.SIGTERM])
        await server.ask("shutdown")
    assert server_handler == [signal.SIGTERM]
    # the handlers are the server's again
    assert signal.getsignal(signal.SIGTERM) is signal.getsignal(signal.SIGINT)


@pytest.mark.anyio
async def test_app_errors_pass_while_the_run_is_ready() -> None:
    """A handler's own DependencyError while every driver is up is no 503: it propagates."""

    async def asks_for_nothing(scope: Message, receive: Any, send: Any) -> None:
        tiered.asgi.run_from(scope).get("nothing")

    app = tiered.asgi.LifespanMiddleware(asks_for_nothing, make_runtime())
    async with lifespan_server(app) as server:
        await start(server)
        with pytest.raises(tiered.DependencyError, match="no driver of that name"):
            await server.call("/")
        await server.ask("shutdown")


@pytest.mark.anyio
async def test_a_websocket_is_closed_with_1013_once_the_run_failed(
    no_handler: None,
) -> None:
    """A WebSocket to a failed run is closed with 1013, try again later."""
    crash = anyio.Event()
    rt = make_runtime(crashes=(crash,))
    app = tiered.asgi.LifespanMiddleware(values, rt)
    async with lifespan_server(app) as server:
        await start(server)
        crash.set()
        run: tiered.Run = server.state["tiered"]
        await until(lambda: not run.live)
        sent: list[Message] = []

        async def receive() -> Message:
            return {"type": "websocket.connect"}

        async def send(message: Message) -> None:
            sent.append(message)

        scope = {"type": "websocket", "path": "/", "state": dict(server.state)}
        await app(scope, receive, send)
        await server.ask("shutdown")
    [close] = sent
    assert (close["type"], close["code"]) == ("websocket.close", 1013)
    assert close["reason"].startswith("runtime 'web' failed: driver 'storage'")
