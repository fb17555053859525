"""Before: the service of the migration examples on aiomisc.

aiomisc starts every service of an entrypoint at once.  Services wait for
each other through the entrypoint's context: one sets
``self.context["database"]``, another awaits it.  ``docs/migrating.md`` turns
it into ``aiomisc_after.py``.
"""

from __future__ import annotations

from typing import Any

import aiomisc
from resources import Cache, Database, Metrics, Worker, log


class DatabaseService(aiomisc.Service):
    async def start(self) -> None:
        self.db = Database("postgres://db.internal/shop")
        await self.db.connect()
        self.context["database"] = self.db  # wakes whoever awaits it

    async def stop(self, exception: Exception | None = None) -> None:
        await self.db.close()


class MetricsService(aiomisc.Service):
    async def start(self) -> None:
        self.exporter = Metrics(port=9100)
        await self.exporter.start()

    async def stop(self, exception: Exception | None = None) -> None:
        await self.exporter.stop()


class CacheService(aiomisc.Service):
    async def start(self) -> None:
        database: Database = await self.context["database"]  # an unchecked name
        self.cache = Cache()
        await self.cache.warm(database)
        self.context["cache"] = self.cache


class WorkerService(aiomisc.Service):
    async def start(self) -> None:
        self.worker = Worker(await self.context["cache"])
        self.context["worker"] = self.worker
        self.start_event.set()  # started; the rest of start() runs on
        await self.worker.run()  # cancelled at shutdown


async def main() -> None:
    """Answer one request; the entrypoint stops the services afterwards."""
    worker: Any = await aiomisc.get_context()["worker"]
    log(worker.handle("apple"))


if __name__ == "__main__":
    services = (DatabaseService(), MetricsService(), CacheService(), WorkerService())
    with aiomisc.entrypoint(*services, log_config=False) as loop:
        loop.run_until_complete(main())
    log("stopped")
