"""The anyio daemon by hand: ``python -m exec_anyio [asyncio|uvloop|trio]``.

The work of ``exec_runtime`` without tiered: one anyio task group per tier
to start the no-op drivers, ``READY=1`` sent with ``socket.sendto``, then a
wait for SIGTERM, then one task group per tier in reverse to stop.  No
timeouts, no rollback, no report; logging at INFO as the tiered daemons.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys

import anyio
from exec_common import BACKENDS, DRIVERS, LOG_FORMAT, TIERS, tier_of

log = logging.getLogger("daemon")


def notify(message: str) -> None:
    """One datagram to ``$NOTIFY_SOCKET`` (a path: the benchmark binds one)."""
    address = os.environ.get("NOTIFY_SOCKET")
    if address:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(message.encode(), address)


async def start(up: list[int], index: int) -> None:
    """A no-op driver's start; only counted, so that READY can say how many."""
    up.append(index)


async def stop(index: int) -> None:
    """A no-op driver's stop."""


async def main() -> None:
    tiers = [[i for i in range(DRIVERS) if tier_of(i) == t] for t in range(TIERS)]
    up: list[int] = []
    # listening from the start: a SIGTERM during start-up must not kill the
    # daemon with half its drivers up (tiered does the same)
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        for tier in tiers:
            async with anyio.create_task_group() as tg:
                for index in tier:
                    tg.start_soon(start, up, index)
        notify(f"READY=1\nSTATUS={len(up)} driver(s) running")
        log.info("%d driver(s) running", len(up))
        async for signum in signals:
            log.info("%s: stopping", signal.Signals(signum).name)
            break
        for tier in reversed(tiers):
            async with anyio.create_task_group() as tg:
                for index in tier:
                    tg.start_soon(stop, index)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format=LOG_FORMAT)
    name, options = BACKENDS[sys.argv[1] if len(sys.argv) > 1 else "asyncio"]
    anyio.run(main, backend=name, backend_options=options)
