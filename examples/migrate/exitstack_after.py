"""After: the lifespan of ``exitstack_before.py`` as tiered drivers.

Each ``await x.open(); stack.push_async_callback(x.close)`` pair becomes a
driver that yields once; the order of the ``with`` statements becomes tiers
and ``requires``.  ``database`` and ``metrics`` need nothing from each other,
so they now start together, in tier 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
from resources import Cache, Database, Metrics, Worker, log

import tiered

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

runtime = tiered.Runtime("shop", start_timeout=10.0, stop_timeout=5.0)


@runtime.driver(tier=0)
async def database(ctx: tiered.Context) -> AsyncIterator[Database]:
    """Open the pool; close it after every driver above it stopped."""
    db = Database("postgres://db.internal/shop")
    await db.connect()
    yield db
    await db.close()


@runtime.driver(tier=0)
async def metrics(ctx: tiered.Context) -> AsyncIterator[Metrics]:
    """Export metrics; starts with the database, not after it."""
    exporter = Metrics(port=9100)
    await exporter.start()
    yield exporter
    await exporter.stop()


@runtime.driver(requires=(database,))  # tier 1, inferred
async def cache(ctx: tiered.Context) -> AsyncIterator[Cache]:
    """Warm the cache from the database, which is up by now."""
    warm = Cache()
    await warm.warm(ctx.get(database))
    yield warm


@runtime.driver(requires=(cache,))  # tier 2, inferred
async def worker(ctx: tiered.Context) -> AsyncIterator[Worker]:
    """Answer requests; its loop is a background task of the driver."""
    w = Worker(ctx.get(cache))
    ctx.start_soon(w.run)  # cancelled when the driver stops
    yield w


async def main() -> None:
    """Start, answer one request, stop."""
    async with runtime.run() as run:
        log(run.get(worker).handle("apple"))
    log("stopped")


if __name__ == "__main__":
    anyio.run(main)
