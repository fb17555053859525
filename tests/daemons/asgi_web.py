"""A Starlette app with drivers, for the uvicorn subprocess tests of tiered.asgi.

Serve it from the repository root::

    python -m uvicorn tests.daemons.asgi_web:lifespan_app --lifespan on

Two entry points, the two ways docs/fastapi.md sets an application up for
production, both with ``tiered.asgi.health`` in Starlette's middleware list
(so ``/livez`` and ``/readyz``, and 503s):

- ``lifespan_app``: ``Starlette(lifespan=tiered.asgi.lifespan(runtime))``;
- ``middleware_app``: the same application inside
  ``tiered.asgi.LifespanMiddleware``.

Drivers: ``settings`` and ``database`` (tier 0), ``storage`` (tier 1).
``storage`` starts a background task that raises once the file
``$WEB_GATE_DIR/crash.N`` exists, N counting the starts of storage (1, then
2 after a restart).  The environment sets the scenario:

- ``WEB_GATES=init.database,init.storage.2``: that start waits until the
  file ``$WEB_GATE_DIR/NAME`` exists (a test opens the gate by creating it);
  each waiting start prints ``waiting for NAME`` on stdout first;
- ``WEB_RESTART=on-failure``: storage restarts after a failure (without it,
  a failure ends the run);
- ``WEB_DRAIN=S``: the lifespan's drain, in seconds.

Routes: ``/values`` reads storage; ``/slow`` waits until the run is down,
then reads storage (a request in flight when a driver fails).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import JSONResponse
from starlette.routing import Route

import tiered
import tiered.asgi

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.requests import Request

__all__ = ["lifespan_app", "middleware_app", "runtime"]

GATES = {g.strip() for g in os.environ.get("WEB_GATES", "").split(",") if g.strip()}
GATE_DIR = anyio.Path(os.environ.get("WEB_GATE_DIR", "."))
DRAIN = float(os.environ.get("WEB_DRAIN", "0"))
RESTART = "on-failure" if os.environ.get("WEB_RESTART") == "on-failure" else None

# the tiered logger's INFO lines (the drain) on stderr, where the test reads them
_handler = logging.StreamHandler(sys.stderr)
_handler.setFormatter(logging.Formatter("tiered: %(levelname)s: %(message)s"))
logging.getLogger("tiered").addHandler(_handler)
logging.getLogger("tiered").setLevel(logging.INFO)


async def wait_for_file(path: anyio.Path) -> None:
    """Return once ``path`` exists (polled: another process makes it)."""
    while True:
        if await path.exists():
            return
        await anyio.sleep(0.01)


async def gate(name: str) -> None:
    """Wait for the test to open gate ``name``, if the scenario has it."""
    if name in GATES:
        print(f"waiting for {name}", flush=True)
        await wait_for_file(GATE_DIR / name)


runtime = tiered.Runtime("web", start_timeout=30.0, stop_timeout=10.0)
starts = {"storage": 0}


@runtime.driver(tier=0)
async def settings(ctx: tiered.Context) -> AsyncIterator[dict[str, str]]:
    yield {"greeting": "hello"}


@runtime.driver(tier=0)
async def database(ctx: tiered.Context) -> AsyncIterator[str]:
    await gate("init.database")
    yield "db-conn"


@runtime.driver(tier=1, requires=(settings, database), restart=RESTART)
async def storage(ctx: tiered.Context) -> AsyncIterator[str]:
    starts["storage"] += 1
    n = starts["storage"]
    await gate(f"init.storage.{n}")

    async def monitor() -> None:
        await wait_for_file(GATE_DIR / f"crash.{n}")
        raise RuntimeError("pool monitor lost its connection")

    ctx.start_soon(monitor)
    yield f"pools on {ctx.get(database)} (start {n})"


async def values(request: Request) -> JSONResponse:
    """What a handler that needs the drivers reads."""
    run = tiered.asgi.run_from(request)
    return JSONResponse({"storage": run.get(storage), "pid": os.getpid()})


async def slow(request: Request) -> JSONResponse:
    """A request in flight while the run goes down: it reads storage after."""
    run = tiered.asgi.run_from(request)
    down = anyio.Event()

    def stopping(event: tiered.RunEvent) -> None:
        if event.kind == "state" and event.value in ("stopping", "stopped"):
            down.set()

    unlisten = run.listen(stopping)
    print("slow request in flight", flush=True)
    try:
        with anyio.fail_after(20):
            await down.wait()
    finally:
        unlisten()
    return JSONResponse({"storage": run.get(storage)})  # raises: the run is down


routes = [Route("/values", values), Route("/slow", slow)]
health = [Middleware(tiered.asgi.health)]

lifespan_app = Starlette(
    routes=routes,
    middleware=health,
    lifespan=tiered.asgi.lifespan(runtime, drain=DRAIN),
)
middleware_app = tiered.asgi.LifespanMiddleware(
    Starlette(routes=routes, middleware=health), runtime, drain=DRAIN
)
