"""Serve ASGI applications in tests: by hand in memory, or with uvicorn in a subprocess.

:class:`LifespanServer` plays the server's side of the ASGI lifespan protocol
against an application, and calls it with HTTP scopes, on any backend;
:func:`make_runtime` and :func:`values` are a runtime and a raw application
for it, whose driver crashes when a test says so.
The rest serves a real uvicorn in a child process on a loopback port
(:func:`uvicorn_command`, :func:`free_port`) and talks HTTP/1.1 to it with
the standard library (:func:`get`), for tests about real signals and exit
statuses.
"""

from __future__ import annotations

import http.client
import json
import socket
import sys
from collections.abc import AsyncIterator, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import anyio

import tiered
import tiered.asgi

__all__ = [
    "FAILED_LINE",
    "LifespanServer",
    "Message",
    "Reply",
    "answered",
    "free_port",
    "get",
    "lifespan_server",
    "make_runtime",
    "refused",
    "start",
    "until",
    "uvicorn_command",
    "values",
]

#: What the tiered logger says when storage's background task crashed while
#: serving (tests/daemons/asgi_web.py and :func:`make_runtime` alike).
FAILED_LINE = (
    "runtime 'web' failed while the ASGI application serves: driver 'storage' "
    "(tier 1), phase background: RuntimeError: pool monitor lost its connection"
)

Message = MutableMapping[str, Any]


class Reply:
    """One HTTP response: status, headers (lower-case names) and body."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        """The body, parsed."""
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"<Reply {self.status} {self.body[:200]!r}>"


class LifespanServer:
    """Plays the server's side of the ASGI lifespan protocol against an app."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.state: dict[str, Any] = {}
        self.inbox_send, self.inbox = anyio.create_memory_object_stream[Message](4)
        self.outbox, self.outbox_receive = anyio.create_memory_object_stream[Message](4)
        self.error: Exception | None = None
        self.returned = anyio.Event()

    async def main(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": self.state}
        try:
            await self.app(scope, self.inbox.receive, self.outbox.send)
        except Exception as exc:
            self.error = exc
        finally:
            self.returned.set()

    async def ask(self, kind: str) -> Message:
        """Send lifespan.<kind>; return the app's answer."""
        with anyio.fail_after(10):
            await self.inbox_send.send({"type": f"lifespan.{kind}"})
            return await self.outbox_receive.receive()

    async def call(
        self, path: str = "/", *, method: str = "GET", root_path: str = ""
    ) -> Reply:
        """Call the app with an http scope, as the server would for a request."""
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": root_path,
            "headers": [(b"host", b"test")],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
            # a copy of the lifespan state, as ASGI servers hand it on
            "state": dict(self.state),
        }
        sent: list[Message] = []

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            sent.append(message)

        with anyio.fail_after(10):
            await self.app(scope, receive, send)
        start = sent[0]
        assert start["type"] == "http.response.start", sent
        headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
        body = b"".join(m.get("body", b"") for m in sent[1:])
        return Reply(start["status"], headers, body)

    async def request(self, path: str = "/") -> tuple[int, Any]:
        """GET ``path``; return the status and the JSON body."""
        reply = await self.call(path)
        return reply.status, reply.json()


@asynccontextmanager
async def lifespan_server(app: Any) -> AsyncIterator[LifespanServer]:
    """Run app's lifespan in a task; the caller sends the messages."""
    server = LifespanServer(app)
    with server.inbox_send, server.inbox, server.outbox, server.outbox_receive:
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.main)
            yield server
            with anyio.fail_after(10):
                await server.returned.wait()


# -- a runtime and an app to serve by hand -----------------------------------------


def make_runtime(
    *,
    gate: anyio.Event | None = None,
    reopen: anyio.Event | None = None,
    crashes: tuple[anyio.Event, ...] = (),
    restart: tiered.Restart | str | None = None,
    held: anyio.Event | None = None,
) -> tiered.Runtime:
    """database (tier 0), storage (tier 1) whose start N crashes on ``crashes[N-1]``.

    ``held``: database's stop waits for it.
    """
    rt = tiered.Runtime("web", start_timeout=10.0, stop_timeout=10.0)
    starts = [0]

    @rt.driver(tier=0)
    async def database(ctx: tiered.Context) -> AsyncIterator[str]:
        if gate is not None:
            await gate.wait()
        yield "db-conn"
        if held is not None:
            await held.wait()

    @rt.driver(tier=1, requires=(database,), restart=restart)
    async def storage(ctx: tiered.Context) -> AsyncIterator[str]:
        starts[0] += 1
        n = starts[0]
        if n > 1 and reopen is not None:
            await reopen.wait()
        if n <= len(crashes):
            crash = crashes[n - 1]

            async def monitor() -> None:
                await crash.wait()
                raise RuntimeError("pool monitor lost its connection")

            ctx.start_soon(monitor)
        yield f"pools on {ctx.get(database)} (start {n})"

    return rt


async def values(scope: Message, receive: Any, send: Any) -> None:
    """A raw ASGI app that needs the storage driver (and has no lifespan)."""
    if scope["type"] != "http":
        return
    run = tiered.asgi.run_from(scope)
    payload = f'{{"storage": "{run.get("storage")}"}}'.encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": payload})


async def until(done: Callable[[], bool]) -> None:
    """Wait until ``done()``, checking every 10 ms, for at most 10 s."""
    with anyio.fail_after(10):
        while True:
            if done():
                return
            await anyio.sleep(0.01)


async def answered(server: LifespanServer, path: str, status: int) -> Any:
    """GET ``path`` until it answers ``status``; return the JSON body."""
    with anyio.fail_after(10):
        while True:
            reply = await server.call(path)
            if reply.status == status:
                return reply.json()
            await anyio.sleep(0.01)


async def start(server: LifespanServer) -> None:
    """Start the app's lifespan; it must answer startup.complete."""
    assert await server.ask("startup") == {"type": "lifespan.startup.complete"}


# -- uvicorn in a child process ---------------------------------------------------


def free_port() -> int:
    """A loopback TCP port that nothing listens on (free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def uvicorn_command(target: str, port: int, loop: str, *extra: str) -> list[str]:
    """``python -m uvicorn TARGET`` on 127.0.0.1:PORT, lifespan on."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        target,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--loop",
        loop,
        "--lifespan",
        "on",
        *extra,
    ]


def get(port: int, path: str, *, timeout: float = 10.0) -> Reply:
    """GET ``path`` from 127.0.0.1:PORT over a fresh connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        headers = {k.lower(): v for k, v in response.getheaders()}
        return Reply(response.status, headers, response.read())
    finally:
        conn.close()


def refused(port: int) -> bool:
    """Whether a connection to 127.0.0.1:PORT is refused: nothing listens."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            return False
    except ConnectionRefusedError:
        return True
