"""After: the services of ``aiomisc_before.py`` as tiered drivers.

The context keys (``self.context["database"]``) become declared requirements:
``requires`` names the driver, tiers order the start, and ``ctx.get()``
returns the value, typed, without waiting, because what a driver requires is
up before it starts.  ``tiered.serve()`` replaces the entrypoint's signal
handling (see ``docs/systemd.md``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
from resources import Cache, Database, Metrics, Worker, log

import tiered

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

runtime = tiered.Runtime("shop", start_timeout=10.0, stop_timeout=5.0)


class DatabaseDriver(tiered.Driver):
    name = "database"
    tier = 0

    async def initialize(self, ctx: tiered.Context) -> None:
        self.db = Database("postgres://db.internal/shop")
        await self.db.connect()

    async def stop(self, ctx: tiered.Context) -> None:
        await self.db.close()


class MetricsDriver(tiered.Driver):
    name = "metrics"
    tier = 0

    async def initialize(self, ctx: tiered.Context) -> None:
        self.exporter = Metrics(port=9100)
        await self.exporter.start()

    async def stop(self, ctx: tiered.Context) -> None:
        await self.exporter.stop()


@runtime.driver(tier=1, requires=(DatabaseDriver,))
async def cache(ctx: tiered.Context) -> AsyncIterator[Cache]:
    warm = Cache()
    await warm.warm(ctx.get(DatabaseDriver).db)
    yield warm


@runtime.driver(tier=2, requires=(cache,))
async def worker(ctx: tiered.Context) -> AsyncIterator[Worker]:
    w = Worker(ctx.get(cache))
    ctx.start_soon(w.run)  # replaces start_event.set(); await w.run()
    yield w


runtime.add(DatabaseDriver())
runtime.add(MetricsDriver())


async def main() -> None:
    """Start, answer one request, stop."""
    async with runtime.run() as run:
        log(run.get(worker).handle("apple"))
    log("stopped")


if __name__ == "__main__":
    anyio.run(main)
