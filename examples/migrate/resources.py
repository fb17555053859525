"""What the service of the migration examples opens, the same in every version.

``docs/migrating.md`` moves one small service from an ``AsyncExitStack``
lifespan, from facet and from aiomisc to tiered.  Only the wiring changes
between a ``*_before.py`` and its ``*_after.py``: the resources below stay as
they are.  Each prints what happens to it, so the versions can be compared
(``tests/test_migrate.py`` does).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import anyio


def log(event: str) -> None:
    """Print one event, at once."""
    print(event, flush=True)


@dataclass
class Database:
    """Stands for a connection pool."""

    url: str
    connected: bool = False

    async def connect(self) -> None:
        """Open the pool."""
        await anyio.sleep(0.02)
        self.connected = True
        log(f"database connected to {self.url}")

    async def fetch_stock(self) -> dict[str, int]:
        """Every item and how many are in stock."""
        if not self.connected:
            msg = "the database is not connected"
            raise RuntimeError(msg)
        await anyio.sleep(0.01)
        return {"apple": 12, "pear": 0, "plum": 7}

    async def close(self) -> None:
        """Close the pool."""
        self.connected = False
        log("database closed")


@dataclass
class Metrics:
    """Stands for a metrics exporter (a small HTTP server)."""

    port: int
    running: bool = False

    async def start(self) -> None:
        """Start exporting."""
        await anyio.sleep(0.01)
        self.running = True
        log(f"metrics exported on port {self.port}")

    async def stop(self) -> None:
        """Stop exporting."""
        self.running = False
        log("metrics stopped")


@dataclass
class Cache:
    """Answers reads from memory; warmed from the database."""

    stock: dict[str, int] = field(default_factory=dict)

    async def warm(self, database: Database) -> None:
        """Load every item from the database."""
        self.stock = await database.fetch_stock()
        log(f"cache warmed with {len(self.stock)} items")


@dataclass
class Worker:
    """Answers requests from the cache; a background task refreshes nothing."""

    cache: Cache
    ticks: int = 0

    def handle(self, item: str) -> str:
        """Answer one request."""
        return f"{item}: {self.cache.stock.get(item, 0)} in stock"

    async def run(self) -> None:
        """The worker's background loop, until it is cancelled."""
        log("worker running")
        while True:
            await anyio.sleep(0.01)
            self.ticks += 1
