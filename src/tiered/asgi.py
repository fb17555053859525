"""Run a runtime for the life of an ASGI application: Starlette, FastAPI, raw ASGI.

Every tier is up before the server accepts the first request, and every
driver stops, in reverse tier order, after the server stopped serving.  The
:class:`~tiered.Run` is handed to request handlers through the ASGI lifespan
*state*, under the key ``"tiered"`` (:data:`STATE_KEY`)::

    app = Starlette(routes=routes, lifespan=tiered.asgi.lifespan(runtime))

    async def pools(request: Request) -> JSONResponse:
        storage = tiered.asgi.run_from(request).get(Storage)  # a Storage
        # the same run, untyped: request.state.tiered.get("storage")
        return JSONResponse(sorted(storage.active_pools))

Two ways in, for two situations (``docs/fastapi.md`` compares them):

- :func:`lifespan` for a Starlette or FastAPI app: ``lifespan=`` of the app.
  The framework reports a failed start-up with the traceback, in which each
  failed driver's note (``driver 'storage' (tier 1), phase initialize``)
  appears under the ``StartupError``.
- :class:`LifespanMiddleware` for any ASGI application, with or without a
  framework.  It answers the ``lifespan`` scope itself, starts the tiers
  around the application's own lifespan, and reports a failed start-up as
  one line per failed driver, then the traceback.

This module needs no web framework: it speaks ASGI with plain dicts, and
importing :mod:`tiered` does not import it.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import anyio

from ._exceptions import ConfigError, ShutdownError, StartupError, UsageError
from ._run import Run
from ._runtime import Runtime

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

__all__ = ["STATE_KEY", "LifespanMiddleware", "lifespan", "run_from"]

log = logging.getLogger("tiered")

# The ASGI callables, spelled as Starlette spells them (starlette.types), so a
# Starlette app is an _ASGIApp and this middleware is a Starlette middleware.
_Scope: TypeAlias = MutableMapping[str, Any]
_Message: TypeAlias = MutableMapping[str, Any]
_Receive: TypeAlias = Callable[[], Awaitable[_Message]]
_Send: TypeAlias = Callable[[_Message], Awaitable[None]]
_ASGIApp: TypeAlias = Callable[[_Scope, _Receive, _Send], Awaitable[None]]

#: The key of the :class:`~tiered.Run` in the lifespan state and so in every
#: request's state: ``request.state.tiered`` with Starlette and FastAPI,
#: ``scope["state"]["tiered"]`` in raw ASGI.
STATE_KEY: Final = "tiered"


def _check_runtime(runtime: object, where: str) -> Runtime:
    if not isinstance(runtime, Runtime):
        hint = (
            "pass the runtime itself, not runtime.run()"
            if isinstance(runtime, Run)
            else "pass the tiered.Runtime whose drivers the application uses"
        )
        msg = f"{where} takes a tiered.Runtime, got {runtime!r}; {hint}"
        raise TypeError(msg)
    return runtime


def lifespan(
    runtime: Runtime,
) -> Callable[[object], AbstractAsyncContextManager[dict[str, Run]]]:
    """Return a lifespan that runs ``runtime`` while the application serves.

    Pass it as ``Starlette(lifespan=...)`` or ``FastAPI(lifespan=...)``.  On
    start-up it enters ``runtime.run()``, so every tier is up before the
    server accepts a request; it yields the lifespan state ``{"tiered":
    run}``; at shutdown it leaves the run, which stops every driver in
    reverse tier order.

    A failed start-up raises :class:`~tiered.StartupError` (or
    :class:`~tiered.ConfigError` for an invalid plan) out of the lifespan;
    Starlette turns it into ``lifespan.startup.failed`` carrying the
    traceback, which shows each failed driver with its tier, phase and cause,
    and the server exits.  Use :class:`LifespanMiddleware` for a shorter
    message or for an application without a framework.

    Example::

        app = Starlette(routes=routes, lifespan=tiered.asgi.lifespan(runtime))

        # in a handler
        storage = tiered.asgi.run_from(request).get(Storage)

    Args:
        runtime: the runtime to run; its plan is checked when the application
            starts, so drivers may be declared after this call.

    Returns:
        a callable taking the application (unused) and returning an async
        context manager that yields the state mapping.

    Raises:
        TypeError: ``runtime`` is not a :class:`~tiered.Runtime`.
    """
    runtime = _check_runtime(runtime, "tiered.asgi.lifespan()")

    @asynccontextmanager
    async def tiered_lifespan(app: object) -> AsyncIterator[dict[str, Run]]:
        async with runtime.run() as run:
            yield {STATE_KEY: run}

    return tiered_lifespan


def run_from(source: object, /) -> Run:
    """Return the run that the lifespan put into a request's state.

    The typed way to reach driver values from a handler:
    ``run_from(request).get(Storage)`` returns a ``Storage``, where
    ``request.state.tiered.get(Storage)`` is ``Any`` to a type checker.

    Example::

        async def list_items(request: Request) -> JSONResponse:
            cache = tiered.asgi.run_from(request).get(Cache)  # typed: a Cache
            return JSONResponse(cache.stock)

    Args:
        source: a Starlette or FastAPI ``Request`` or ``WebSocket`` (anything
            with an ASGI ``scope`` attribute), or an ASGI scope.

    Raises:
        UsageError: no run in the state: the application has neither
            :func:`lifespan` nor :class:`LifespanMiddleware`, or the server
            ran it without the lifespan protocol (uvicorn ``--lifespan off``).
    """
    scope = getattr(source, "scope", source)
    state = scope.get("state") if isinstance(scope, Mapping) else None
    run = state.get(STATE_KEY) if isinstance(state, Mapping) else None
    if not isinstance(run, Run):
        msg = (
            f"no tiered run in the state of {source!r}: give the application "
            "lifespan=tiered.asgi.lifespan(runtime) or wrap it in "
            "tiered.asgi.LifespanMiddleware(app, runtime), and serve it with the "
            "lifespan protocol on (uvicorn --lifespan on)"
        )
        raise UsageError(msg)
    return run


class LifespanMiddleware:
    """Run ``runtime`` for the life of any ASGI application.

    It answers the server's ``lifespan`` scope itself: on
    ``lifespan.startup`` it starts every tier, then the wrapped application's
    own lifespan (if it has one), and only then tells the server it may serve;
    on ``lifespan.shutdown`` it stops them in the reverse order.  Other scopes
    go to the application with the run in ``scope["state"]["tiered"]``, also
    on servers that do not support lifespan state.

    A failed start-up is reported as ``lifespan.startup.failed`` whose message
    begins with one line per failed driver (name, tier, phase, cause), then
    the traceback; the drivers that had started are stopped first.  A failing
    ``stop`` is reported as ``lifespan.shutdown.failed`` the same way.  When
    the run ends while the server still serves (a driver's background task
    crashed), that is logged at once and reported at shutdown.

    Example::

        app = tiered.asgi.LifespanMiddleware(raw_asgi_app, runtime)
        # or, in Starlette: Starlette(middleware=[Middleware(
        #     tiered.asgi.LifespanMiddleware, runtime=runtime)])

    Args:
        app: the ASGI application to wrap.
        runtime: the runtime to run while it serves.

    Raises:
        TypeError: ``runtime`` is not a :class:`~tiered.Runtime`.
    """

    def __init__(self, app: _ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = _check_runtime(runtime, "tiered.asgi.LifespanMiddleware()")
        self._run: Run | None = None

    def __repr__(self) -> str:
        return f"<tiered.asgi.LifespanMiddleware of {self.runtime.name!r} around {self.app!r}>"

    async def __call__(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        """Handle the ``lifespan`` scope; pass every other scope to the app."""
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if self._run is not None:
            scope.setdefault("state", {}).setdefault(STATE_KEY, self._run)
        await self.app(scope, receive, send)

    async def _lifespan(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        await _expect(receive, "lifespan.startup")
        inner = _AppLifespan(self.app, scope)
        try:
            # The application's lifespan runs in this task group, outside the
            # run: when a driver's background task crashes, the run ends early
            # but the application's lifespan still ends normally, at shutdown
            # (tests/test_asgi.py::test_middleware_reports_background_crash_at_shutdown).
            async with anyio.create_task_group() as tg:
                try:
                    await self._serve(scope, receive, send, inner, tg)
                finally:
                    inner.stop_talking()
        finally:
            inner.close()

    async def _serve(
        self,
        scope: _Scope,
        receive: _Receive,
        send: _Send,
        inner: _AppLifespan,
        tg: TaskGroup,
    ) -> None:
        stage = "startup"
        failures: list[str] = []
        try:
            async with self.runtime.run() as run:
                state = scope.get("state")
                if isinstance(state, MutableMapping):
                    state[STATE_KEY] = run
                self._run = run
                failure = await inner.startup(tg)
                if failure is not None:
                    failures.append(failure)  # leaving the block stops the tiers
                else:
                    await send({"type": "lifespan.startup.complete"})
                    stage = "serving"
                    await _expect(receive, "lifespan.shutdown")
                    stage = "shutdown"
                    failure = await inner.shutdown()
                    if failure is not None:
                        failures.append(failure)
        except Exception as exc:  # StartupError, ConfigError, ShutdownError, ...
            failures.append(_failure_message(exc))
        finally:
            self._run = None
        if stage == "startup":
            await send(
                {"type": "lifespan.startup.failed", "message": "\n".join(failures)}
            )
            return
        if stage == "serving":
            # The run ended on its own; the server keeps serving until it is
            # told to stop, and handlers get UsageError from run.get().
            log.error(
                "the run of %r ended while the ASGI server is serving; it is "
                "reported as lifespan.shutdown.failed when the server stops",
                self.runtime.name,
                extra={"tiered_runtime": self.runtime.name},
            )
            await _expect(receive, "lifespan.shutdown")
            failure = await inner.shutdown()
            if failure is not None:
                failures.append(failure)
        if failures:
            await send(
                {"type": "lifespan.shutdown.failed", "message": "\n".join(failures)}
            )
        else:
            await send({"type": "lifespan.shutdown.complete"})


async def _expect(receive: _Receive, kind: str) -> None:
    message = await receive()
    if message.get("type") != kind:
        msg = (
            f"the ASGI server sent {message.get('type')!r} where the lifespan "
            f"protocol has {kind!r}"
        )
        raise RuntimeError(msg)


class _AppLifespan:
    """The wrapped application's own lifespan, driven as a server drives it.

    The application speaks the lifespan protocol if it answers
    ``lifespan.startup`` with ``lifespan.startup.complete`` or ``.failed``.
    One that raises or returns instead (the ASGI spec's way of saying it does
    not), or that answers with a message of another protocol (it ignores the
    scope type), is served without a lifespan, as uvicorn's
    ``--lifespan auto`` serves it.
    """

    def __init__(self, app: _ASGIApp, scope: _Scope) -> None:
        self.app = app
        self.scope = scope
        self.to_app, self.app_inbox = anyio.create_memory_object_stream[_Message](1)
        self.app_outbox, self.from_app = anyio.create_memory_object_stream[_Message](1)
        self.asked = False  # the app called receive()
        self.active = False  # its startup completed, so it gets a shutdown
        self.error: Exception | None = None

    async def _main(self) -> None:
        with self.app_outbox:
            try:
                await self.app(self.scope, self._receive, self.app_outbox.send)
            except Exception as exc:
                self.error = exc

    async def _receive(self) -> _Message:
        self.asked = True
        return await self.app_inbox.receive()

    async def _reply(self) -> _Message | None:
        try:
            return await self.from_app.receive()
        except anyio.EndOfStream:
            return None

    async def startup(self, tg: TaskGroup) -> str | None:
        """Start the app's lifespan; return why it failed, or None."""
        tg.start_soon(self._main, name=f"lifespan of {self.app!r}")
        await self.to_app.send({"type": "lifespan.startup"})
        reply = await self._reply()
        kind = None if reply is None else reply.get("type")
        if kind in ("lifespan.startup.complete", "lifespan.startup.failed"):
            return self._outcome(reply, "startup")
        self.stop_talking()  # an app still sending gets an error and ends
        # Silent (DEBUG) only when the app clearly never took part: it did not
        # even ask for a message.  One that asked and then failed may be a
        # lifespan that crashed without saying so: that is worth a WARNING.
        # (tests/test_asgi.py::test_middleware_serves_an_app_without_lifespan)
        how = (
            f"it answered lifespan.startup with {kind!r}"
            if reply is not None
            else f"it raised {_describe(self.error)}"
            if self.error is not None
            else "it returned"
        )
        log.log(
            logging.DEBUG if reply is None and not self.asked else logging.WARNING,
            "%r does not speak the ASGI lifespan protocol (%s); serving it "
            "without its own lifespan",
            self.app,
            how,
        )
        return None

    async def shutdown(self) -> str | None:
        """Stop the app's lifespan if it started; return why it failed, or None."""
        if not self.active:
            return None
        self.active = False
        await self.to_app.send({"type": "lifespan.shutdown"})
        return self._outcome(await self._reply(), "shutdown")

    def _outcome(self, reply: _Message | None, stage: str) -> str | None:
        kind = None if reply is None else reply.get("type")
        if kind == f"lifespan.{stage}.complete":
            self.active = stage == "startup"
            return None
        if kind == f"lifespan.{stage}.failed":
            text = reply.get("message") if reply is not None else None
            return str(text) if text else f"the application's {stage} failed"
        what = f"sent {kind!r}" if reply is not None else "ended its lifespan"
        msg = (
            f"the application {what} where lifespan.{stage}.complete or "
            f"lifespan.{stage}.failed was due"
        )
        if self.error is not None:
            msg += "\n" + _traceback(self.error)
        return msg

    def stop_talking(self) -> None:
        # An app still waiting for a message, or sending one nobody reads,
        # gets an error now instead of keeping the task group open forever.
        self.to_app.close()
        self.from_app.close()

    def close(self) -> None:
        self.stop_talking()
        self.app_inbox.close()
        self.app_outbox.close()


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _traceback(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)).rstrip("\n")


def _failure_message(exc: Exception) -> str:
    """One line per failed driver, then the traceback for whoever digs deeper.

    A StartupError or ShutdownError carries its failures as records (driver,
    tier, phase, error); a server logs this message as is, so the first
    lines say what failed and where.
    """
    if isinstance(exc, ConfigError):
        # a mistake in the declarations: one clear line, no traceback
        return f"tiered: {_describe(exc)}"
    if isinstance(exc, StartupError | ShutdownError):
        lines = [f"tiered: {exc.message}"] + [f"  {f.describe()}" for f in exc.failures]
    else:
        lines = [f"tiered: {_describe(exc)}"]
    return "\n".join(lines) + "\n\n" + _traceback(exc)
