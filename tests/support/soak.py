"""What the soaks share: descriptors, quiet logs, traced memory, a loop per backend.

tests/test_soak.py (start and stop cycles) and tests/test_soak_restarts.py
(crash and restart cycles) both run one long loop on a backend, with
``tracemalloc`` on and tiered's records formatted and dropped, and sample
memory and open descriptors as they go.
"""

from __future__ import annotations

import logging
import os
import tracemalloc
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import anyio

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

    from support.backends import Backend

__all__ = ["kib", "open_fds", "quiet_tiered_logs", "run_on", "tracing"]


def open_fds() -> int:
    """How many file descriptors this process has open."""
    return len(os.listdir("/proc/self/fd"))


def kib(n: float) -> str:
    return f"{n / 1024:.1f} KiB"


class _Discard(logging.Handler):
    """Formats each record, as a real handler would, then forgets it."""

    def emit(self, record: logging.LogRecord) -> None:
        self.format(record)


@contextmanager
def quiet_tiered_logs() -> Iterator[None]:
    """tiered's records are formatted and dropped, not kept by pytest.

    pytest keeps every record in memory, which would look like a leak, and
    attaches its handler to every logger at the start of a test, so the
    handlers of ``tiered`` are swapped for the duration, inside the test.
    """
    logger = logging.getLogger("tiered")
    saved = logger.handlers[:], logger.level, logger.propagate
    logger.handlers = [_Discard()]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield
    finally:
        logger.handlers, level, logger.propagate = saved
        logger.setLevel(level)


@contextmanager
def tracing() -> Iterator[None]:
    """``tracemalloc`` on for the block, unless it already was."""
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        yield
    finally:
        if not was_tracing:
            tracemalloc.stop()


def run_on(backend: Backend, fn: Callable[..., Awaitable[Any]], *args: object) -> Any:
    """``anyio.run(fn, *args)`` on ``backend`` (uvloop: asyncio with uvloop's loop)."""
    if backend == "uvloop":
        return anyio.run(
            fn, *args, backend="asyncio", backend_options={"use_uvloop": True}
        )
    return anyio.run(fn, *args, backend=backend)
