"""Liveness and readiness over HTTP, and requests turned away with 503.

The body of both endpoints is the status file's object (tiered/_status.py)
without its ``updated`` time: ``runtime``, ``pid``, ``state``, ``ready``,
``live`` and ``drivers``, so that one reader understands both.  As in the
status file, ``state`` is ``"stopping"`` from the stop signal on, while the
drain keeps the drivers running.

The guard stands between the server and an application: once the run
failed (or after it stopped) a request gets 503 without reaching the
application; and a request whose handler meets the run down (tiered's
``UsageError`` or ``DependencyError`` from ``run.get()``, before any
response) gets 503 instead of the server's 500.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any, Final, TypeAlias

from ._asgi_serving import serving_of
from ._exceptions import DependencyError, UsageError
from ._run import Run

__all__ = [
    "STATE_KEY",
    "ASGIApp",
    "Health",
    "Receive",
    "Scope",
    "Send",
    "find_run",
    "guard",
    "no_run_message",
    "refusal",
    "status_of",
]

log = logging.getLogger("tiered")

# The ASGI callables, spelled as Starlette spells them (starlette.types).
Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]
ASGIApp: TypeAlias = Callable[[Scope, Receive, Send], Awaitable[None]]

STATE_KEY: Final = "tiered"

#: WebSocket close code 1013, "try again later" (RFC 6455, IANA registry).
_TRY_AGAIN_LATER: Final = 1013


def find_run(scope: object) -> Run | None:
    """The run in an ASGI scope's state, if there is one."""
    state = scope.get("state") if isinstance(scope, Mapping) else None
    run = state.get(STATE_KEY) if isinstance(state, Mapping) else None
    return run if isinstance(run, Run) else None


def no_run_message(source: object) -> str:
    """What run_from() and the health endpoints say when there is no run."""
    return (
        f"no tiered run in the state of {source!r}: give the application "
        "lifespan=tiered.asgi.lifespan(runtime) or wrap it in "
        "tiered.asgi.LifespanMiddleware(app, runtime), and serve it with the "
        "lifespan protocol on (uvicorn --lifespan on)"
    )


def status_of(run: Run) -> dict[str, Any]:
    """The run as the status file shows it (without ``updated``)."""
    serving = serving_of(run)
    state: str = run.state
    live = run.live
    if state == "new":
        state = "starting"
    elif state in ("running", "restarting") and (
        not live or (serving is not None and serving.stopping)
    ):
        state = "stopping"  # the drivers still run, but the server stops
    return {
        "runtime": run.plan.name,
        "pid": os.getpid(),
        "state": state,
        "ready": state == "running",
        "live": live,
        "drivers": run.statuses(),
    }


def refusal(run: Run) -> str | None:
    """Why no request reaches the application now, or None when they may.

    None while the run lives: starting (no server sends requests then, and
    a handler's ``run.get()`` would be turned into 503 anyway), running,
    restarting a driver, draining, stopping on the server's word (it sends
    the lifespan shutdown only after the last response).  Not once the run
    failed, nor after it stopped.
    """
    if not run.live:
        serving = serving_of(run)
        failure = serving.failure if serving is not None else None
        return f"runtime {run.plan.name!r} failed" + (f": {failure}" if failure else "")
    if run.state == "stopped":
        return f"runtime {run.plan.name!r} is stopped"
    return None


def _unavailable(run: Run, exc: Exception) -> str:
    """Why a handler met the run down, for the 503 it gets instead."""
    why = refusal(run)
    if why is not None:
        return why
    state = run.state
    if state in ("running", "restarting"):
        return str(exc)  # the driver it asked for is restarting: says so
    return f"runtime {run.plan.name!r} is {'starting' if state == 'new' else state}"


async def _send_json(
    send: Send, status: int, body: Mapping[str, Any], *, head: bool = False
) -> None:
    payload = (json.dumps(body, ensure_ascii=False) + "\n").encode("utf-8")
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode("ascii")),
        (b"cache-control", b"no-store"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else payload})


async def refuse(
    run: Run, why: str, scope: Scope, receive: Receive, send: Send
) -> None:
    """Answer 503 (HTTP) or close with 1013 (WebSocket), saying why."""
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        # a close reason is at most 123 bytes of UTF-8 (RFC 6455, 5.5)
        reason = why.encode()[:120].decode(errors="ignore")
        await send(
            {"type": "websocket.close", "code": _TRY_AGAIN_LATER, "reason": reason}
        )
        return
    await _send_json(
        send, 503, {"error": why, **status_of(run)}, head=scope.get("method") == "HEAD"
    )


async def guard(
    run: Run, app: ASGIApp, scope: Scope, receive: Receive, send: Send
) -> None:
    """Pass a request to ``app`` if the run serves; 503 if not, or if it turns out not to."""
    if scope["type"] not in ("http", "websocket"):
        await app(scope, receive, send)
        return
    why = refusal(run)
    if why is not None:
        await refuse(run, why, scope, receive, send)
        return
    answered = False

    async def tracked(message: Message) -> None:
        nonlocal answered
        answered = True
        await send(message)

    try:
        await app(scope, receive, tracked)
    except (UsageError, DependencyError) as exc:
        # run.get() met the run down (it failed or stops meanwhile), or a
        # driver restarting: the client may try again.  While the run is
        # ready, the same errors are the application's bugs: they go on.
        if answered or (run.live and run.state == "running"):
            raise
        why = _unavailable(run, exc)
        log.debug("tiered: 503 for %s: %s", scope.get("path"), why)
        await refuse(run, why, scope, receive, send)


class Health:
    """The ASGI application of :func:`tiered.asgi.health`."""

    def __init__(self, app: ASGIApp | None, live: str, ready: str) -> None:
        for what, path in (("live", live), ("ready", ready)):
            if not isinstance(path, str) or not path.startswith("/"):
                msg = f"tiered.asgi.health({what}={path!r}): a path begins with '/'"
                raise ValueError(msg)
        if live == ready:
            msg = f"tiered.asgi.health(): live and ready are both {live!r}"
            raise ValueError(msg)
        self.app = app
        self.live = live
        self.ready = ready

    def __repr__(self) -> str:
        around = f" around {self.app!r}" if self.app is not None else ""
        return f"<tiered.asgi.health {self.live} {self.ready}{around}>"

    def _probe(self, scope: Scope) -> str | None:
        path: str = scope.get("path", "")
        root: str = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]  # mounted: the path below the mount
        if path == self.live:
            return "live"
        if path == self.ready:
            return "ready"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = self._probe(scope) if scope["type"] == "http" else None
        if kind is not None:
            await self._answer(kind, scope, send)
            return
        if self.app is None:
            if scope["type"] == "http":
                await _send_json(send, 404, {"error": "not found"})
            return  # lifespan and the rest: nothing to take part in
        run = find_run(scope)
        if run is None:
            await self.app(scope, receive, send)  # run_from() says what is wrong
        else:
            await guard(run, self.app, scope, receive, send)

    async def _answer(self, kind: str, scope: Scope, send: Send) -> None:
        method = scope.get("method", "GET")
        if method not in ("GET", "HEAD"):
            await send(
                {
                    "type": "http.response.start",
                    "status": 405,
                    "headers": [(b"allow", b"GET, HEAD"), (b"content-length", b"0")],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        head = method == "HEAD"
        run = find_run(scope)
        if run is None:
            # a mistake in the set-up, not an unhealthy run: 500, saying how
            await _send_json(
                send, 500, {"error": no_run_message(scope.get("path"))}, head=head
            )
            return
        body = status_of(run)
        ok = body["live"] if kind == "live" else body["ready"]
        await _send_json(send, 200 if ok else 503, body, head=head)
