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

For production (``docs/kubernetes.md``): :func:`health` answers liveness
and readiness probes (``/livez``, ``/readyz``) and turns requests away with
503 while the run is down; ``drain=`` keeps serving, not ready, for some
seconds after SIGTERM before the server hears it; and when the run fails
after start-up, the server is sent SIGTERM instead of serving on without
its drivers.

This module needs no web framework: it speaks ASGI with plain dicts, and
importing :mod:`tiered` does not import it.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable, MutableMapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Final

import anyio

from ._asgi_health import STATE_KEY as _STATE_KEY
from ._asgi_health import (
    ASGIApp,
    Health,
    Receive,
    Scope,
    Send,
    find_run,
    guard,
    no_run_message,
)
from ._asgi_lifespan import AppLifespan, expect, failure_message
from ._asgi_serving import Serving
from ._checks import check_seconds
from ._exceptions import ConfigError, UsageError
from ._run import Run
from ._runtime import Runtime

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

__all__ = ["STATE_KEY", "LifespanMiddleware", "health", "lifespan", "run_from"]

#: The key of the :class:`~tiered.Run` in the lifespan state and so in every
#: request's state: ``request.state.tiered`` with Starlette and FastAPI,
#: ``scope["state"]["tiered"]`` in raw ASGI.
STATE_KEY: Final = _STATE_KEY


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


def _check_drain(drain: object, where: str) -> float:
    seconds = check_seconds(drain, f"{where}(drain={drain!r})", zero=True)
    if seconds is None or math.isinf(seconds):
        msg = f"{where}(drain={drain!r}): the drain is a finite number of seconds >= 0"
        raise ConfigError(msg)
    return seconds


def lifespan(
    runtime: Runtime, *, drain: float = 0.0
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

    When the run fails after start-up (a required driver failed, or a
    restart gave up), the failure is logged with the driver's name and the
    process is sent SIGTERM, if a handler for it is installed (an ASGI
    server's), so the server shuts down instead of serving without drivers.

    Example::

        app = Starlette(
            routes=routes,
            lifespan=tiered.asgi.lifespan(runtime, drain=5),
            middleware=[Middleware(tiered.asgi.health)],  # /livez, /readyz
        )

        # in a handler
        storage = tiered.asgi.run_from(request).get(Storage)

    Args:
        runtime: the runtime to run; its plan is checked when the application
            starts, so drivers may be declared after this call.
        drain: seconds to keep serving, with readiness off (:func:`health`),
            after the first SIGTERM or SIGINT, before the server gets the
            signal and stops accepting connections; a SIGINT during the drain
            ends it.  Needs the application in the main thread and a server
            that handles signals with ``signal.signal()``, as uvicorn does.

    Returns:
        a callable taking the application (unused) and returning an async
        context manager that yields the state mapping.

    Raises:
        TypeError: ``runtime`` is not a :class:`~tiered.Runtime`.
        ConfigError: ``drain`` is not a finite number of seconds >= 0.
    """
    runtime = _check_runtime(runtime, "tiered.asgi.lifespan()")
    seconds = _check_drain(drain, "tiered.asgi.lifespan")

    @asynccontextmanager
    async def tiered_lifespan(app: object) -> AsyncIterator[dict[str, Run]]:
        run = runtime.run()
        serving = Serving(run, drain=seconds)
        outcome: Exception | None = None
        # the watcher's task group is outside the run: the run's failure
        # cancels the run's body, not the watcher that stops the server
        async with anyio.create_task_group() as tg:
            try:
                async with run:
                    await tg.start(serving.watch)
                    try:
                        yield {STATE_KEY: run}
                    finally:
                        serving.stop_watching()
            except Exception as exc:
                # raised after the task group, which would wrap it in a group
                outcome = exc
            finally:
                serving.close()
        if outcome is not None:
            raise outcome

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
    run = find_run(getattr(source, "scope", source))
    if run is None:
        raise UsageError(no_run_message(source))
    return run


def health(
    app: ASGIApp | None = None, /, *, live: str = "/livez", ready: str = "/readyz"
) -> ASGIApp:
    """Return an ASGI app answering liveness and readiness probes about the run.

    ``GET live`` answers 200 while the run is live (it has not failed), 503
    once it failed; ``GET ready`` answers 200 while every driver is up and
    the server is not stopping, 503 while the run starts, restarts a
    driver, drains or stops.  Both bodies are the same JSON object, the
    status file's (``tiered probe`` reads that one)::

        {"runtime": "web", "pid": 4242, "state": "restarting", "ready": false,
         "live": true, "drivers": {"database": "running", "storage": "restarting"}}

    ``state`` is ``"stopping"`` from SIGTERM on, while a drain keeps the
    drivers running.  HEAD is answered too, without the body.  The run is
    found in the request's state, where :func:`lifespan` and
    :class:`LifespanMiddleware` put it; without one the answer is 500,
    saying how to set it up.

    Given an application to wrap (or as Starlette middleware,
    ``Middleware(tiered.asgi.health)``), other requests go to it, guarded:
    while the run is down (it failed, or it stops) they get 503 with a JSON
    ``error`` without reaching the application, and one whose handler meets
    the run down (tiered's ``UsageError`` or ``DependencyError`` before any
    response, a driver restarting) gets 503 as well, where it would get 500.

    Example::

        Starlette(routes=routes, lifespan=tiered.asgi.lifespan(runtime),
                  middleware=[Middleware(tiered.asgi.health)])
        # or as routes, unguarded:
        probes = tiered.asgi.health()
        routes += [Route("/livez", probes), Route("/readyz", probes)]
        # or around any ASGI app:
        tiered.asgi.LifespanMiddleware(tiered.asgi.health(app), runtime)

    Args:
        app: the application for every other request; None answers 404.
        live: the liveness path, below the mount point if mounted.
        ready: the readiness path, the same way.

    Raises:
        ValueError: a path does not begin with ``/``, or both are the same.
    """
    return Health(app, live, ready)


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
    ``stop`` is reported as ``lifespan.shutdown.failed`` the same way.

    When the run ends while the server still serves (a required driver failed
    after start-up, or a restart gave up), the failure is logged at once
    with the driver's name, the process is sent SIGTERM so the server shuts
    down (as :func:`lifespan` does), and ``lifespan.shutdown.failed`` reports
    it at shutdown.  Meanwhile requests get 503: the middleware guards them as
    :func:`health` does.

    Example::

        app = tiered.asgi.LifespanMiddleware(raw_asgi_app, runtime, drain=5)
        # or, in Starlette: Starlette(middleware=[Middleware(
        #     tiered.asgi.LifespanMiddleware, runtime=runtime)])

    Args:
        app: the ASGI application to wrap.
        runtime: the runtime to run while it serves.
        drain: seconds to keep serving, not ready, after SIGTERM or SIGINT
            before the server gets the signal (see :func:`lifespan`).

    Raises:
        TypeError: ``runtime`` is not a :class:`~tiered.Runtime`.
        ConfigError: ``drain`` is not a finite number of seconds >= 0.
    """

    def __init__(self, app: ASGIApp, runtime: Runtime, *, drain: float = 0.0) -> None:
        self.app = app
        self.runtime = _check_runtime(runtime, "tiered.asgi.LifespanMiddleware()")
        self.drain = _check_drain(drain, "tiered.asgi.LifespanMiddleware")
        # the last run, kept once it ended: requests then get 503, not 500
        self._run: Run | None = None

    def __repr__(self) -> str:
        return f"<tiered.asgi.LifespanMiddleware of {self.runtime.name!r} around {self.app!r}>"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle the ``lifespan`` scope; pass every other scope to the app."""
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        run = self._run
        if run is None:  # never started: run_from() says what is wrong
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {}).setdefault(STATE_KEY, run)
        await guard(run, self.app, scope, receive, send)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        await expect(receive, "lifespan.startup")
        inner = AppLifespan(self.app, scope)
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
        scope: Scope,
        receive: Receive,
        send: Send,
        inner: AppLifespan,
        tg: TaskGroup,
    ) -> None:
        stage = "startup"
        failures: list[str] = []
        serving: Serving | None = None
        try:
            run = self.runtime.run()
            serving = Serving(run, drain=self.drain)
            # in the state from the start: a request that comes early (not
            # from uvicorn, which listens only once started) gets 503
            state = scope.get("state")
            if isinstance(state, MutableMapping):
                state[STATE_KEY] = run
            self._run = run
            async with run:
                failure = await inner.startup(tg)
                if failure is not None:
                    failures.append(failure)  # leaving the block stops the tiers
                else:
                    await tg.start(serving.watch)
                    await send({"type": "lifespan.startup.complete"})
                    stage = "serving"
                    await expect(receive, "lifespan.shutdown")
                    stage = "shutdown"
                    serving.stop_watching()
                    failure = await inner.shutdown()
                    if failure is not None:
                        failures.append(failure)
        except Exception as exc:  # StartupError, ConfigError, ShutdownError, ...
            failures.append(failure_message(exc))
        finally:
            if serving is not None:
                serving.close()
        if stage == "startup":
            await send(
                {"type": "lifespan.startup.failed", "message": "\n".join(failures)}
            )
            return
        if stage == "serving":
            # The run ended on its own; Serving logged it and told the server
            # to stop (SIGTERM); the protocol reports it at shutdown.
            await expect(receive, "lifespan.shutdown")
            failure = await inner.shutdown()
            if failure is not None:
                failures.append(failure)
        if failures:
            await send(
                {"type": "lifespan.shutdown.failed", "message": "\n".join(failures)}
            )
        else:
            await send({"type": "lifespan.shutdown.complete"})
