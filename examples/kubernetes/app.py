"""The application that ``examples/kubernetes/deployment.yaml`` deploys, twice.

One runtime, served two ways (``docs/kubernetes.md`` walks through both):

- the ``worker`` Deployment runs it as a daemon::

      tiered run app:runtime --status-file /run/app/status.json --drain 5

  and kubelet asks ``tiered probe /run/app/status.json --ready`` (or
  ``--live``) inside the container;
- the ``api`` Deployment serves it behind uvicorn::

      uvicorn app:api --host 0.0.0.0 --port 8000 --timeout-graceful-shutdown 10

  and kubelet asks ``GET /livez`` and ``GET /readyz`` (``tiered.asgi.health``).

Two tiers: ``settings`` and ``database`` (a stand-in for a connection pool)
in tier 0, then ``orders``, which warms up from the database and keeps a
background task that watches it.  ``orders`` restarts on failure: the pod
turns not ready while it restarts, and stays live.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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

# The budgets the manifest is sized from (docs/kubernetes.md): each driver
# starts within 20 s and stops within 10 s; the whole stop takes 20 s at most;
# after SIGTERM the api stays up, not ready, for DRAIN seconds.
DRAIN = 5.0
runtime = tiered.Runtime(
    "app", start_timeout=20.0, stop_timeout=10.0, shutdown_timeout=20.0
)


@runtime.driver(tier=0)
async def settings(ctx: tiered.Context) -> AsyncIterator[dict[str, Any]]:
    """The configuration; a real one reads a ConfigMap mounted as a file."""
    yield {"page_size": 50}


@runtime.driver(tier=0)
async def database(ctx: tiered.Context) -> AsyncIterator[dict[str, int]]:
    """Stands for a connection pool: open before the first request."""
    await anyio.sleep(0.05)  # stands for connecting
    yield {"open": 3, "shipped": 12}


@runtime.driver(requires=(database, settings), restart="on-failure")
async def orders(ctx: tiered.Context) -> AsyncIterator[dict[str, int]]:
    """Orders by state, warmed from the database, kept fresh in the background."""
    counts = dict(ctx.get(database))

    async def refresh() -> None:
        while True:  # a failure here restarts orders, not the pod
            await anyio.sleep(30)
            counts.update(ctx.get(database))

    ctx.start_soon(refresh)
    ctx.status(f"{sum(counts.values())} orders")
    yield counts


async def list_orders(request: Request) -> JSONResponse:
    """Orders by state; 503 while ``orders`` restarts (tiered.asgi.health)."""
    return JSONResponse(tiered.asgi.run_from(request).get(orders))


api = Starlette(
    routes=[Route("/orders", list_orders)],
    # /livez and /readyz for kubelet; requests get 503 while the run is down
    middleware=[Middleware(tiered.asgi.health)],
    # after SIGTERM: not ready but serving, while the Service's endpoints update
    lifespan=tiered.asgi.lifespan(runtime, drain=DRAIN),
)
