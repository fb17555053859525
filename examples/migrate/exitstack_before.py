"""Before: a lifespan written by hand with ``contextlib.AsyncExitStack``.

Each resource is opened in turn and its closing is pushed on the stack, which
unwinds in reverse, also when something fails half-way.  ``docs/migrating.md``
turns it into ``exitstack_after.py``.
"""

from __future__ import annotations

from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING

import anyio
from resources import Cache, Database, Metrics, Worker, log

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


@asynccontextmanager
async def lifespan() -> AsyncIterator[Worker]:
    """Open everything in order, yield the worker, close in reverse."""
    async with AsyncExitStack() as stack:
        database = Database("postgres://db.internal/shop")
        await database.connect()
        stack.push_async_callback(database.close)

        metrics = Metrics(port=9100)  # waits for the database, needlessly
        await metrics.start()
        stack.push_async_callback(metrics.stop)

        cache = Cache()
        await cache.warm(database)

        worker = Worker(cache)
        tasks = await stack.enter_async_context(anyio.create_task_group())
        tasks.start_soon(worker.run)
        stack.callback(tasks.cancel_scope.cancel)  # unwinds first: stops the loop
        yield worker


async def main() -> None:
    """Start, answer one request, stop."""
    async with lifespan() as worker:
        log(worker.handle("apple"))
    log("stopped")


if __name__ == "__main__":
    anyio.run(main)
