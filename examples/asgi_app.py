"""A Starlette application whose drivers come up in tiers before it serves.

``docs/fastapi.md`` walks through it.  Two tiers:

- tier 0, ``settings`` and ``database``, concurrently: the configuration, and
  a stand-in for a connection pool;
- tier 1, ``cache``: warms itself from the database in ``autostart``.

``tiered.asgi.lifespan(runtime)`` starts both tiers before uvicorn accepts
the first request and stops them, ``cache`` first, after it served the last
one.  Handlers reach the drivers through the run in the lifespan state;
``tiered.asgi.health`` answers ``/livez`` and ``/readyz``.  Run it with::

    python examples/asgi_app.py            # http://127.0.0.1:8000/items
    uvicorn asgi_app:app --app-dir examples

It needs ``starlette`` and ``uvicorn``, never FastAPI: the same lifespan goes
into ``FastAPI(lifespan=...)`` unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import JSONResponse
from starlette.routing import Route

import tiered
import tiered.asgi

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from starlette.requests import Request

runtime = tiered.Runtime("inventory-api", start_timeout=10.0, stop_timeout=5.0)


# -- tier 0 ------------------------------------------------------------------


@runtime.driver(tier=0)
async def settings(ctx: tiered.Context) -> AsyncGenerator[dict[str, Any], None]:
    """The application's configuration; a real one would read a file."""
    yield {"currency": "EUR", "page_size": 50}


@dataclass
class Database:
    """The value of the ``database`` driver: stands for a connection pool."""

    rows: dict[str, int] = field(default_factory=dict)
    open: bool = True

    async def fetch_stock(self) -> dict[str, int]:
        """Every item and how many are in stock."""
        await anyio.sleep(0.01)  # stands for a query
        return dict(self.rows)


@runtime.driver(tier=0)
async def database(ctx: tiered.Context) -> AsyncGenerator[Database, None]:
    """Open the pool before the first request, close it after the last."""
    await anyio.sleep(0.02)  # stands for connecting
    db = Database({"apple": 12, "pear": 0, "plum": 7})
    ctx.status(f"connected, {len(db.rows)} items")
    try:
        yield db
    finally:
        db.open = False


# -- tier 1 ------------------------------------------------------------------


class Cache(tiered.Driver):
    """Answer reads from memory, warmed from the database at start-up."""

    name = "cache"
    tier = 1
    requires = (database, settings)

    def __init__(self) -> None:
        super().__init__()
        self.stock: dict[str, int] = {}
        self.currency = ""

    async def initialize(self, ctx: tiered.Context) -> None:
        """Take the settings it needs."""
        self.currency = ctx.get(settings)["currency"]

    async def autostart(self, ctx: tiered.Context) -> None:
        """Warm up: tier 0 is complete here, so the database is open."""
        self.stock = await ctx.get(database).fetch_stock()
        ctx.status(f"{len(self.stock)} items cached")

    async def stop(self, ctx: tiered.Context) -> None:
        """Drop the cached rows."""
        self.stock.clear()


runtime.add(Cache())


# -- the application ---------------------------------------------------------


async def list_items(request: Request) -> JSONResponse:
    """Every item in stock, from the cache."""
    cache = tiered.asgi.run_from(request).get(Cache)  # typed: a Cache
    return JSONResponse({name: n for name, n in cache.stock.items() if n > 0})


async def show_item(request: Request) -> JSONResponse:
    """One item; 404 when it is unknown."""
    cache = tiered.asgi.run_from(request).get(Cache)
    name = request.path_params["name"]
    if name not in cache.stock:
        return JSONResponse({"error": f"no item {name!r}"}, status_code=404)
    return JSONResponse({"name": name, "in_stock": cache.stock[name]})


async def drivers(request: Request) -> JSONResponse:
    """Each driver's status, from the run's live report."""
    run: tiered.Run = request.state.tiered  # the same run, untyped access
    return JSONResponse({d.name: d.status for d in run.report.drivers})


app = Starlette(
    routes=[
        Route("/items", list_items),
        Route("/items/{name}", show_item),
        Route("/drivers", drivers),
    ],
    # /livez and /readyz for probes, and 503 while the run is down
    middleware=[Middleware(tiered.asgi.health)],
    lifespan=tiered.asgi.lifespan(runtime),
)


def main() -> None:
    """Serve the application on 127.0.0.1:8000 until Ctrl+C."""
    import uvicorn  # only to run the example; the app itself does not need it

    uvicorn.run(app, host="127.0.0.1", port=8000)


if __name__ == "__main__":
    main()
