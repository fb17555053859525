"""After: the services of ``facet_before.py`` as tiered drivers.

A facet service maps onto a ``tiered.Driver`` class: ``start`` becomes
``initialize``, ``stop`` stays ``stop``, ``add_task`` becomes
``ctx.start_soon``, and the nested ``dependencies`` lists become tiers and
``requires``.  Drivers reach each other through ``ctx.get()`` instead of
attributes set in ``__init__``, so the runtime knows, and checks, who needs
whom.
"""

from __future__ import annotations

import anyio
from resources import Cache, Database, Metrics, Worker, log

import tiered

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


class CacheDriver(tiered.Driver):
    name = "cache"
    requires = (DatabaseDriver,)  # tier 1, inferred

    async def initialize(self, ctx: tiered.Context) -> None:
        self.cache = Cache()
        await self.cache.warm(ctx.get(DatabaseDriver).db)


class WorkerDriver(tiered.Driver):
    name = "worker"
    requires = (CacheDriver,)  # tier 2, inferred

    async def initialize(self, ctx: tiered.Context) -> None:
        self.worker = Worker(ctx.get(CacheDriver).cache)
        ctx.start_soon(self.worker.run)  # cancelled when the driver stops


for driver in (DatabaseDriver(), MetricsDriver(), CacheDriver(), WorkerDriver()):
    runtime.add(driver)


async def main() -> None:
    """Start, answer one request, stop."""
    async with runtime.run() as run:
        log(run.get(WorkerDriver).worker.handle("apple"))
    log("stopped")


if __name__ == "__main__":
    anyio.run(main)
