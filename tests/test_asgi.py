"""tiered.asgi: a runtime that lives as long as an ASGI application serves.

Two kinds of tests.  The first serve a real Starlette app with real uvicorn on
a loopback port and talk HTTP/1.1 to it over a TCP socket.  uvicorn runs only
on asyncio (with or without uvloop), never on trio, so those tests run on
asyncio and uvloop only.  The second play the server's side of the ASGI
lifespan protocol by hand (``lifespan.startup``, ``lifespan.shutdown``) and
run on all three backends, which is what an ASGI server on trio (Hypercorn)
relies on.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import re
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

import tiered
import tiered.asgi
from support.asgi import lifespan_server
from support.recorder import Recorder

if TYPE_CHECKING:
    from types import ModuleType

    from starlette.requests import Request

ROOT = Path(__file__).resolve().parent.parent

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# uvicorn drives an asyncio event loop (uvloop's, or the standard one); it does
# not run on trio, so these tests override conftest's three backends.
UVICORN_LOOPS = [pytest.param(("asyncio", {}), id="asyncio")]
if sys.platform != "win32":  # pragma: no branch - uvloop does not exist there
    UVICORN_LOOPS.append(pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"))
on_uvicorn = pytest.mark.parametrize("anyio_backend", UVICORN_LOOPS)

NOTE = "driver 'storage' (tier 1), phase initialize"
CAUSE = "OSError: disk /dev/sdz is gone"


# -- a runtime and apps to serve ---------------------------------------------


def make_runtime(
    rec: Recorder,
    *,
    fail: str | None = None,
    crash: anyio.Event | None = None,
    stopped: anyio.Event | None = None,
) -> tiered.Runtime:
    """settings and database in tier 0, storage in tier 1; each records its life.

    ``fail`` names the phase in which storage fails (``initialize`` or
    ``stop``); ``crash`` makes a background task of storage crash when set;
    ``stopped`` is set once all three have stopped.
    """
    rt = tiered.Runtime("web", start_timeout=10.0, stop_timeout=10.0)

    def record_stop(name: str) -> None:
        rec.add("stop", name)
        if stopped is not None and rec.count("stop") == 3:
            stopped.set()

    @rt.driver(tier=0)
    async def settings(ctx: tiered.Context) -> AsyncIterator[dict[str, str]]:
        rec.add("up", ctx.name)
        yield {"greeting": "hello"}
        record_stop(ctx.name)

    @rt.driver(tier=0)
    async def database(ctx: tiered.Context) -> AsyncIterator[str]:
        await anyio.sleep(0.01)
        rec.add("up", ctx.name)
        yield "db-conn"
        record_stop(ctx.name)

    @rt.driver(tier=1, requires=(settings, database))
    async def storage(ctx: tiered.Context) -> AsyncIterator[str]:
        if fail == "initialize":
            raise OSError("disk /dev/sdz is gone")
        if crash is not None:

            async def watch() -> None:
                await crash.wait()
                raise RuntimeError("pool monitor lost its connection")

            ctx.start_soon(watch)
        rec.add("up", ctx.name)
        yield f"pools on {ctx.get(database)}"
        record_stop(ctx.name)
        if fail == "stop":
            raise OSError("pool 'images' is busy")

    return rt


def starlette_app(rec: Recorder, runtime: tiered.Runtime, **kwargs: Any) -> Starlette:
    """Routes that read driver values; ``lifespan=`` or ``middleware=`` in kwargs."""

    async def values(request: Request) -> JSONResponse:
        rec.add("request", request.url.path)
        run = tiered.asgi.run_from(request)
        try:
            loop = type(asyncio.get_running_loop()).__module__
        except RuntimeError:  # on trio, in the by-hand tests
            loop = "trio"
        return JSONResponse(
            {
                "storage": request.state.tiered.get("storage"),
                "greeting": run.get("settings")["greeting"],
                "loop": loop,
            }
        )

    async def health(request: Request) -> JSONResponse:
        rec.add("request", request.url.path)
        run: tiered.Run = request.state.tiered
        return JSONResponse({d.name: d.status for d in run.report.drivers})

    routes = [Route("/values", values), Route("/health", health)]
    return Starlette(routes=routes, **kwargs)


async def raw_app(scope: Scope, receive: Receive, send: Send) -> None:
    """An ASGI app without a framework, and without lifespan support."""
    if scope["type"] != "http":
        msg = f"unsupported scope type {scope['type']!r}"
        raise RuntimeError(msg)
    run = tiered.asgi.run_from(scope)
    body = json.dumps({"storage": run.get("storage")}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# -- real uvicorn, real HTTP -------------------------------------------------


def uvicorn_server(app: Any) -> uvicorn.Server:
    """A uvicorn server for app, logging to the root logger (so to caplog)."""
    # ws="none": no websockets import, so no DeprecationWarning from it
    config = uvicorn.Config(app, lifespan="on", ws="none", log_config=None)
    return uvicorn.Server(config)


async def serve_until_exit(server: uvicorn.Server, sock: socket.socket) -> int:
    """Run the server; return its exit status (3 when start-up failed)."""
    try:
        await server.serve(sockets=[sock])
    except SystemExit as exc:
        # Recent uvicorn calls sys.exit(3) on a failed start-up even in
        # serve(); caught here, in the coroutine, before asyncio's loop sees it.
        return int(exc.code or 0)
    # older uvicorn returns from serve(), and uvicorn.run() exits with 3
    return 0 if server.started else 3


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[int]:
    """Serve app with uvicorn on a loopback port; yield the port, then stop."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        server = uvicorn_server(app)
        ended = anyio.Event()

        async def run_server() -> None:
            try:
                status = await serve_until_exit(server, sock)
                assert status == 0, f"uvicorn exited with status {status}"
            finally:
                ended.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(run_server)
            with anyio.fail_after(10):
                while not server.started:
                    assert not ended.is_set(), "uvicorn did not start"
                    await anyio.sleep(0.01)
            try:
                yield port
            finally:
                server.should_exit = True


async def http_get(port: int, path: str) -> tuple[int, Any]:
    """GET path over a fresh HTTP/1.1 connection; return status and JSON body."""
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    chunks: list[bytes] = []
    with anyio.fail_after(10):
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            await stream.send(request.encode("ascii"))
            while True:
                try:
                    chunks.append(await stream.receive())
                except anyio.EndOfStream:
                    break
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)


async def start_must_fail(app: Any) -> int:
    """Serve app, expecting uvicorn to give up at start-up; return its port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        server = uvicorn_server(app)
        with anyio.fail_after(10):
            status = await serve_until_exit(server, sock)
        assert status == 3  # uvicorn's STARTUP_FAILURE
        assert not server.started
        return port


async def assert_not_serving(port: int) -> None:
    """Nothing accepts connections on the port."""
    with pytest.raises(OSError, match="connection attempts failed") as info:
        await anyio.connect_tcp("127.0.0.1", port)
    assert isinstance(info.value.__cause__, ConnectionRefusedError)


@pytest.mark.anyio
@on_uvicorn
async def test_handler_sees_driver_values(
    anyio_backend: tuple[str, dict[str, Any]],
) -> None:
    """A request handler reads driver values from request.state.tiered and run_from()."""
    rec = Recorder()
    rt = make_runtime(rec)
    app = starlette_app(rec, rt, lifespan=tiered.asgi.lifespan(rt))
    async with serving(app) as port:
        status, body = await http_get(port, "/values")
    assert status == 200
    assert body["storage"] == "pools on db-conn"
    assert body["greeting"] == "hello"
    uvloop = anyio_backend[1].get("use_uvloop", False)
    assert body["loop"].startswith("uvloop") == uvloop


@pytest.mark.anyio
@on_uvicorn
async def test_every_tier_is_up_before_the_first_request() -> None:
    """uvicorn accepts the first request only after every driver started."""
    rec = Recorder()
    rt = make_runtime(rec)
    app = starlette_app(rec, rt, lifespan=tiered.asgi.lifespan(rt))
    async with serving(app) as port:
        status, body = await http_get(port, "/health")
    assert status == 200
    assert body == {"settings": "running", "database": "running", "storage": "running"}
    first_request = rec.first("request")
    assert first_request is not None
    assert rec.names("up") == {"settings", "database", "storage"}
    assert max(rec.indices("up")) < first_request


@pytest.mark.anyio
@on_uvicorn
async def test_drivers_stop_in_reverse_after_the_last_request() -> None:
    """At shutdown, after the last response, tier 1 stops before tier 0."""
    rec = Recorder()
    rt = make_runtime(rec)
    app = starlette_app(rec, rt, lifespan=tiered.asgi.lifespan(rt))
    async with serving(app) as port:
        await http_get(port, "/values")
        await http_get(port, "/health")
        assert not rec.has("stop")
    assert rec.names("stop") == {"settings", "database", "storage"}
    last_request = rec.indices("request")[-1]
    assert last_request < min(rec.indices("stop"))
    assert rec.indices("stop", "storage")[0] < min(
        rec.first("stop", "settings") or 0, rec.first("stop", "database") or 0
    )


@pytest.mark.anyio
@on_uvicorn
async def test_failing_driver_fails_uvicorn_startup(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A failing driver: uvicorn logs driver, tier, phase and cause, and never serves."""
    rec = Recorder()
    rt = make_runtime(rec, fail="initialize")
    app = starlette_app(rec, rt, lifespan=tiered.asgi.lifespan(rt))
    with caplog.at_level(logging.ERROR, logger="uvicorn.error"):
        port = await start_must_fail(app)
    # Starlette sends the traceback as lifespan.startup.failed; uvicorn logs it
    logged = [r.getMessage() for r in caplog.records if r.name == "uvicorn.error"]
    [failure] = [m for m in logged if "StartupError" in m]
    assert NOTE in failure
    assert CAUSE in failure
    assert "Application startup failed. Exiting." in logged
    await assert_not_serving(port)
    assert not rec.has("request")
    # tier 0 had started: it was stopped again before uvicorn gave up
    assert rec.names("stop") == {"settings", "database"}


@pytest.mark.anyio
@on_uvicorn
async def test_failing_driver_fails_uvicorn_startup_with_middleware(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With LifespanMiddleware, uvicorn's log begins with one line per failed driver."""
    rec = Recorder()
    rt = make_runtime(rec, fail="initialize")
    app = tiered.asgi.LifespanMiddleware(starlette_app(rec, rt), rt)
    with caplog.at_level(logging.ERROR, logger="uvicorn.error"):
        port = await start_must_fail(app)
    logged = [r.getMessage() for r in caplog.records if r.name == "uvicorn.error"]
    [failure] = [m for m in logged if m.startswith("tiered:")]
    assert failure.splitlines()[:2] == [
        "tiered: runtime 'web' failed to start: storage (tier 1)",
        f"  {NOTE}: {CAUSE}",
    ]
    await assert_not_serving(port)
    assert rec.names("stop") == {"settings", "database"}


@pytest.mark.anyio
@on_uvicorn
async def test_middleware_serves_a_raw_asgi_app() -> None:
    """LifespanMiddleware needs no framework: a raw ASGI app gets the run in its scope."""
    rec = Recorder()
    rt = make_runtime(rec)
    async with serving(tiered.asgi.LifespanMiddleware(raw_app, rt)) as port:
        status, body = await http_get(port, "/")
    assert status == 200
    assert body == {"storage": "pools on db-conn"}
    assert rec.indices("stop", "storage")[0] < rec.indices("stop", "database")[0]


@pytest.mark.anyio
@on_uvicorn
async def test_middleware_in_starlette_middleware_list() -> None:
    """Middleware(LifespanMiddleware, runtime=...) in Starlette works like lifespan=."""
    from starlette.middleware import Middleware

    rec = Recorder()
    rt = make_runtime(rec)
    middleware = [Middleware(tiered.asgi.LifespanMiddleware, runtime=rt)]
    async with serving(starlette_app(rec, rt, middleware=middleware)) as port:
        status, body = await http_get(port, "/values")
    assert status == 200
    assert body["storage"] == "pools on db-conn"
    assert rec.names("stop") == {"settings", "database", "storage"}


def load_example() -> ModuleType:
    """Import examples/asgi_app.py afresh, as uvicorn would import it."""
    spec = importlib.util.spec_from_file_location(
        "asgi_app_example", ROOT / "examples" / "asgi_app.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the class is made
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


@pytest.mark.anyio
@on_uvicorn
async def test_example_app_serves() -> None:
    """examples/asgi_app.py starts its tiers under uvicorn, answers, and its probes say ready."""
    example = load_example()
    async with serving(example.app) as port:
        assert await http_get(port, "/items") == (200, {"apple": 12, "plum": 7})
        assert await http_get(port, "/items/pear") == (
            200,
            {"name": "pear", "in_stock": 0},
        )
        assert (await http_get(port, "/items/kiwi"))[0] == 404
        running = {"settings": "running", "database": "running", "cache": "running"}
        assert await http_get(port, "/drivers") == (200, running)
        for probe in ("/livez", "/readyz"):
            status, body = await http_get(port, probe)
            assert (status, body["state"], body["drivers"]) == (200, "running", running)


# -- the lifespan protocol, by hand, on every backend -------------------------


@pytest.mark.anyio
async def test_lifespan_protocol_by_hand() -> None:
    """lifespan(): startup.complete with the run in the state, shutdown.complete, reverse stop."""
    rec = Recorder()
    rt = make_runtime(rec)
    app = starlette_app(rec, rt, lifespan=tiered.asgi.lifespan(rt))
    async with lifespan_server(app) as server:
        assert await server.ask("startup") == {"type": "lifespan.startup.complete"}
        run = server.state[tiered.asgi.STATE_KEY]
        assert isinstance(run, tiered.Run)
        assert run.get("storage") == "pools on db-conn"
        assert set(server.state) == {"tiered"}
        status, body = await server.request("/values")
        assert (status, body["storage"]) == (200, "pools on db-conn")
        assert not rec.has("stop")
        assert await server.ask("shutdown") == {"type": "lifespan.shutdown.complete"}
    assert rec.indices("stop", "storage")[0] < rec.indices("stop", "database")[0]
    assert server.error is None


@pytest.mark.anyio
async def test_lifespan_startup_failure_by_hand() -> None:
    """lifespan(): a failed driver answers lifespan.startup.failed naming it."""
    rec = Recorder()
    rt = make_runtime(rec, fail="initialize")
    app = starlette_app(rec, rt, lifespan=tiered.asgi.lifespan(rt))
    async with lifespan_server(app) as server:
        reply = await server.ask("startup")
    assert reply["type"] == "lifespan.startup.failed"
    assert NOTE in reply["message"]
    assert CAUSE in reply["message"]
    assert isinstance(server.error, tiered.StartupError)  # Starlette re-raises
    assert rec.names("stop") == {"settings", "database"}


@pytest.mark.anyio
async def test_middleware_protocol_by_hand() -> None:
    """LifespanMiddleware: raw app, run in every request's state, reverse stop."""
    rec = Recorder()
    rt = make_runtime(rec)
    app = tiered.asgi.LifespanMiddleware(raw_app, rt)
    async with lifespan_server(app) as server:
        assert await server.ask("startup") == {"type": "lifespan.startup.complete"}
        assert isinstance(server.state["tiered"], tiered.Run)
        assert await server.request() == (200, {"storage": "pools on db-conn"})
        # a server without lifespan state: the middleware adds it per request
        server.state.clear()
        assert await server.request() == (200, {"storage": "pools on db-conn"})
        assert await server.ask("shutdown") == {"type": "lifespan.shutdown.complete"}
    assert server.error is None
    assert rec.indices("stop", "storage")[0] < rec.indices("stop", "settings")[0]


@pytest.mark.anyio
async def test_middleware_startup_failure_by_hand() -> None:
    """LifespanMiddleware: startup.failed begins with the failed driver's line."""
    rec = Recorder()
    rt = make_runtime(rec, fail="initialize")
    async with lifespan_server(tiered.asgi.LifespanMiddleware(raw_app, rt)) as server:
        reply = await server.ask("startup")
    assert reply["type"] == "lifespan.startup.failed"
    lines = reply["message"].splitlines()
    assert lines[:2] == [
        "tiered: runtime 'web' failed to start: storage (tier 1)",
        f"  {NOTE}: {CAUSE}",
    ]
    assert "Traceback" in reply["message"]
    assert server.error is None  # it answered and returned, as the spec allows
    assert rec.names("stop") == {"settings", "database"}


@pytest.mark.anyio
async def test_middleware_reports_an_invalid_plan_in_one_line() -> None:
    """A ConfigError is a user's mistake: one line in startup.failed, no traceback."""
    rt = tiered.Runtime("web")

    @rt.driver(requires=("missing",))
    async def storage(ctx: tiered.Context) -> AsyncIterator[None]:
        yield None

    async with lifespan_server(tiered.asgi.LifespanMiddleware(raw_app, rt)) as server:
        reply = await server.ask("startup")
    assert reply["type"] == "lifespan.startup.failed"
    [line] = reply["message"].splitlines()
    assert line.startswith("tiered: ConfigError: ")
    assert "'missing'" in line


@pytest.mark.anyio
async def test_middleware_nests_the_app_lifespan() -> None:
    """Tiers start before the app's own lifespan and stop after it."""
    rec = Recorder()
    rt = make_runtime(rec)

    @asynccontextmanager
    async def own(app: object) -> AsyncIterator[dict[str, Any]]:
        rec.add("app", "up")
        yield {"cache": "warm"}
        rec.add("app", "down")

    inner = starlette_app(rec, rt, lifespan=own)
    async with lifespan_server(tiered.asgi.LifespanMiddleware(inner, rt)) as server:
        assert await server.ask("startup") == {"type": "lifespan.startup.complete"}
        assert set(server.state) == {"tiered", "cache"}
        status, body = await server.request("/values")
        assert (status, body["storage"]) == (200, "pools on db-conn")
        assert await server.ask("shutdown") == {"type": "lifespan.shutdown.complete"}
    events = rec.events
    assert max(rec.indices("up")) < events.index(("app", "up"))
    assert events.index(("app", "down")) < min(rec.indices("stop"))


@pytest.mark.anyio
async def test_middleware_rolls_back_when_the_app_startup_fails() -> None:
    """The app's own startup fails: the tiers stop, startup.failed has its message."""
    rec = Recorder()
    rt = make_runtime(rec)

    def find_tenant() -> None:
        raise LookupError("no such tenant")

    @asynccontextmanager
    async def own(app: object) -> AsyncIterator[None]:
        find_tenant()
        yield

    inner = starlette_app(rec, rt, lifespan=own)
    async with lifespan_server(tiered.asgi.LifespanMiddleware(inner, rt)) as server:
        reply = await server.ask("startup")
    assert reply["type"] == "lifespan.startup.failed"
    assert "LookupError: no such tenant" in reply["message"]
    assert rec.names("stop") == {"settings", "database", "storage"}


@pytest.mark.anyio
async def test_middleware_reports_a_failing_stop() -> None:
    """A driver whose stop fails: shutdown.failed names it, phase stop, the rest stop."""
    rec = Recorder()
    rt = make_runtime(rec, fail="stop")
    async with lifespan_server(tiered.asgi.LifespanMiddleware(raw_app, rt)) as server:
        await server.ask("startup")
        reply = await server.ask("shutdown")
    assert reply["type"] == "lifespan.shutdown.failed"
    assert reply["message"].splitlines()[:2] == [
        "tiered: runtime 'web' stopped with errors (storage)",
        "  driver 'storage' (tier 1), phase stop: OSError: pool 'images' is busy",
    ]
    assert rec.names("stop") == {"settings", "database", "storage"}


@pytest.mark.anyio
async def test_middleware_reports_background_crash_at_shutdown() -> None:
    """A background task crashes while serving: the run stops, shutdown.failed says so."""
    rec = Recorder()
    crash, stopped = anyio.Event(), anyio.Event()
    rt = make_runtime(rec, crash=crash, stopped=stopped)

    @asynccontextmanager
    async def own(app: object) -> AsyncIterator[None]:
        yield
        rec.add("app", "down")

    inner = starlette_app(rec, rt, lifespan=own)
    async with lifespan_server(tiered.asgi.LifespanMiddleware(inner, rt)) as server:
        await server.ask("startup")
        crash.set()
        with anyio.fail_after(10):
            await stopped.wait()
        # the protocol has no message for this: it waits for the shutdown
        with pytest.raises(anyio.WouldBlock):
            server.outbox_receive.receive_nowait()
        # no handler reaches the run that is down: 503, saying what failed
        status, body = await server.request("/values")
        assert status == 503
        assert body["error"].startswith("runtime 'web' failed: driver 'storage'")
        assert (body["ready"], body["live"]) == (False, False)
        # the app's own lifespan was not cancelled with the run: it ends now
        assert not rec.has("app", "down")
        reply = await server.ask("shutdown")
        assert rec.has("app", "down")
    assert reply["type"] == "lifespan.shutdown.failed"
    assert (
        "  driver 'storage' (tier 1), phase background: RuntimeError: pool monitor "
        "lost its connection"
    ) in reply["message"].splitlines()


@pytest.mark.anyio
async def test_lifespan_reports_background_crash_at_once() -> None:
    """lifespan(): a background crash ends the run; Starlette says so at once."""
    rec = Recorder()
    crash = anyio.Event()
    rt = make_runtime(rec, crash=crash)
    app = starlette_app(rec, rt, lifespan=tiered.asgi.lifespan(rt))
    async with lifespan_server(app) as server:
        await server.ask("startup")
        crash.set()
        with anyio.fail_after(10):
            reply = await server.outbox_receive.receive()
    assert reply["type"] == "lifespan.shutdown.failed"
    assert "driver 'storage' (tier 1), phase background" in reply["message"]
    assert isinstance(server.error, tiered.ShutdownError)
    assert rec.names("stop") == {"settings", "database", "storage"}


@pytest.mark.anyio
async def test_middleware_serves_an_app_without_lifespan(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An app that raises on the lifespan scope is served; the tiers still run."""
    rec = Recorder()
    rt = make_runtime(rec)
    async with lifespan_server(tiered.asgi.LifespanMiddleware(raw_app, rt)) as server:
        assert await server.ask("startup") == {"type": "lifespan.startup.complete"}
        assert await server.request() == (200, {"storage": "pools on db-conn"})
        assert await server.ask("shutdown") == {"type": "lifespan.shutdown.complete"}
    assert server.error is None
    assert rec.names("stop") == {"settings", "database", "storage"}
    # it raised without asking for a message: plainly no lifespan, no warning
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.anyio
async def test_middleware_serves_an_app_that_ignores_the_scope_type(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An app that answers the lifespan scope with HTTP is served, with a warning."""

    async def naive(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    rt = make_runtime(Recorder())
    async with lifespan_server(tiered.asgi.LifespanMiddleware(naive, rt)) as server:
        assert await server.ask("startup") == {"type": "lifespan.startup.complete"}
        assert await server.request() == (200, {})
        assert await server.ask("shutdown") == {"type": "lifespan.shutdown.complete"}
    [warning] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "does not speak the ASGI lifespan protocol" in warning.getMessage()
    assert "'http.response.start'" in warning.getMessage()


# -- the module itself -------------------------------------------------------


def test_run_from_without_a_run_says_how_to_fix_it() -> None:
    """run_from() on a scope without a run raises UsageError naming both fixes."""
    with pytest.raises(tiered.UsageError, match=r"lifespan=tiered\.asgi\.lifespan"):
        tiered.asgi.run_from({"type": "http", "state": {}})
    with pytest.raises(tiered.UsageError, match="LifespanMiddleware"):
        tiered.asgi.run_from({"type": "http"})


def test_a_run_is_not_a_runtime() -> None:
    """Passing runtime.run() instead of the runtime is refused at once."""
    rt = tiered.Runtime("web")
    with pytest.raises(TypeError, match=r"not runtime\.run\(\)"):
        tiered.asgi.lifespan(rt.run())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"takes a tiered\.Runtime"):
        tiered.asgi.LifespanMiddleware(raw_app, "web")  # type: ignore[arg-type]


def test_public_names_are_documented() -> None:
    """__all__ lists what tiered.asgi defines, each with a docstring."""
    defined = {
        name
        for name, obj in vars(tiered.asgi).items()
        if not name.startswith("_") and getattr(obj, "__module__", "") == "tiered.asgi"
    }
    assert set(tiered.asgi.__all__) == defined | {"STATE_KEY"}
    for name in defined:
        assert getattr(tiered.asgi, name).__doc__, name


def test_asgi_imports_no_framework() -> None:
    """tiered.asgi imports no web framework or server; tiered does not import it."""
    code = (
        "import sys, tiered; assert 'tiered.asgi' not in sys.modules\n"
        "import tiered.asgi\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'starlette', 'fastapi', 'uvicorn', 'httpx', 'h11'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


FROM_EXAMPLE = "# from examples/asgi_app.py\n"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def test_docs_page_code_is_the_example_or_compiles() -> None:
    """docs/fastapi.md quotes examples/asgi_app.py verbatim; its other code compiles."""
    example = (ROOT / "examples" / "asgi_app.py").read_text()
    blocks = BLOCK.findall((ROOT / "docs" / "fastapi.md").read_text())
    quoted = [
        b.removeprefix(FROM_EXAMPLE) for b in blocks if b.startswith(FROM_EXAMPLE)
    ]
    assert len(quoted) >= 3
    for excerpt in quoted:
        assert excerpt.strip() in example, excerpt[:200]
    for block in blocks:
        if not block.startswith(FROM_EXAMPLE):
            compile(block, "docs/fastapi.md", "exec")
