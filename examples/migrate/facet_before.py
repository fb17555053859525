"""Before: the service of the migration examples on facet.

facet services are classes with ``start`` and ``stop``; a service lists what
it needs in ``dependencies``, where the outer list runs in sequence and an
inner list concurrently.  ``docs/migrating.md`` turns it into
``facet_after.py``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from facet import AsyncioServiceMixin
from resources import Cache, Database, Metrics, Worker, log

# facet ships no py.typed, so to mypy its mixin is Any: subclassing it is
# reported (misc) on each class below.


class DatabaseService(AsyncioServiceMixin):  # type: ignore[misc]
    def __init__(self) -> None:
        self.db = Database("postgres://db.internal/shop")

    async def start(self) -> None:
        await self.db.connect()

    async def stop(self) -> None:
        await self.db.close()


class MetricsService(AsyncioServiceMixin):  # type: ignore[misc]
    def __init__(self) -> None:
        self.exporter = Metrics(port=9100)

    async def start(self) -> None:
        await self.exporter.start()

    async def stop(self) -> None:
        await self.exporter.stop()


class CacheService(AsyncioServiceMixin):  # type: ignore[misc]
    def __init__(self, database: DatabaseService) -> None:
        self.database = database
        self.cache = Cache()

    @property
    def dependencies(self) -> list[Any]:
        return [self.database]  # started before, stopped after this one

    async def start(self) -> None:
        await self.cache.warm(self.database.db)


class WorkerService(AsyncioServiceMixin):  # type: ignore[misc]
    def __init__(self, cache: CacheService) -> None:
        self.cache = cache
        self.worker = Worker(cache.cache)

    @property
    def dependencies(self) -> list[Any]:
        return [self.cache]

    async def start(self) -> None:
        self.add_task(self.worker.run())  # cancelled when the service stops


class Shop(AsyncioServiceMixin):  # type: ignore[misc]
    """The root: database and metrics together, then cache, then worker."""

    def __init__(self) -> None:
        self.database = DatabaseService()
        self.metrics = MetricsService()
        self.cache = CacheService(self.database)
        self.worker = WorkerService(self.cache)

    @property
    def dependencies(self) -> list[Any]:
        return [[self.database, self.metrics], self.cache, self.worker]


async def main() -> None:
    """Start, answer one request, stop."""
    async with Shop() as shop:
        log(shop.worker.worker.handle("apple"))
    log("stopped")


if __name__ == "__main__":
    asyncio.run(main())
