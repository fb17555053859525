"""The plain asyncio daemon by hand: ``python -m exec_asyncio [asyncio|uvloop]``.

As ``exec_anyio``, without anyio: one ``asyncio.TaskGroup`` per tier, the
signal through ``loop.add_signal_handler``.  On uvloop the loop comes from
``uvloop.new_event_loop`` through ``asyncio.Runner``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys

from exec_common import DRIVERS, LOG_FORMAT, TIERS, tier_of

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
    loop = asyncio.get_running_loop()
    stopping: asyncio.Future[int] = loop.create_future()

    def on_signal(signum: int) -> None:
        if not stopping.done():
            stopping.set_result(signum)

    # handlers from the start: a SIGTERM during start-up must not kill the
    # daemon with half its drivers up
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    for tier in tiers:
        async with asyncio.TaskGroup() as tg:
            for index in tier:
                tg.create_task(start(up, index))
    notify(f"READY=1\nSTATUS={len(up)} driver(s) running")
    log.info("%d driver(s) running", len(up))
    log.info("%s: stopping", signal.Signals(await stopping).name)
    for tier in reversed(tiers):
        async with asyncio.TaskGroup() as tg:
            for index in tier:
                tg.create_task(stop(index))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format=LOG_FORMAT)
    if sys.argv[1:] == ["uvloop"]:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main())
    else:
        asyncio.run(main())
