"""Clean-up that must happen: in a stop cut short, and in an initialize cancelled.

docs/concepts.md and docs/systemd.md show these two patterns; here each
stands next to the careless driver it fixes, and the example looks at the
real files and sockets afterwards to show the difference.

1. A stop that is cut short (a second SIGINT under ``tiered.serve()``,
   ``run.cut_short()``, or the runtime's ``shutdown_timeout`` running out)
   gets no time: the first thing it awaits is cancelled.  A step that must
   complete goes in a ``finally``, under ``anyio.move_on_after(seconds,
   shield=True)``: shielded from the cut, and still bounded.
2. A driver cancelled during ``initialize`` (a driver of its tier failed,
   or the run was cancelled from outside) is never stopped, since its
   ``initialize`` did not complete.  What it opened before the cancellation
   must be released by ``initialize`` itself: ``try``/``except`` in a class
   driver, ``try``/``finally`` around the ``yield`` in a generator driver.

Run it::

    python examples/cleanup.py --backend trio
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread
from anyio.abc import SocketAttribute

import tiered

if TYPE_CHECKING:
    import socket
    from collections.abc import AsyncIterator, Sequence

    from anyio.abc import SocketStream
    from anyio.streams.stapled import MultiListener

# -- 1. a stop cut short ----------------------------------------------------------

tokens = tiered.Runtime("tokens")


async def say_goodbye() -> None:
    """Stands for a slow, polite goodbye to peers: it is fine to cut it short."""
    await anyio.sleep(10)


#: where the drivers of ``tokens`` keep their token files, one per process
TOKENS = anyio.Path(tempfile.gettempdir(), f"tiered-cleanup-{os.getpid()}")


def token_path(name: str) -> anyio.Path:
    """The token file of the driver ``name``."""
    return TOKENS / f"{name}.token"


@tokens.driver
async def careless(ctx: tiered.Context) -> AsyncIterator[anyio.Path]:
    """Removes its token after its goodbye: a cut stop never gets there."""
    path = token_path("careless")
    await path.write_text("in use")
    yield path
    await say_goodbye()
    await path.unlink()


@tokens.driver
async def careful(ctx: tiered.Context) -> AsyncIterator[anyio.Path]:
    """Removes its token in a finally, shielded from the cut, within 2 seconds."""
    path = token_path("careful")
    await path.write_text("in use")
    try:
        yield path
        await say_goodbye()  # cut short: cancelled at once
    finally:
        # however the driver ends; shielded, so a cut cannot cancel it, and
        # bounded, so it cannot hang the stop either
        with anyio.move_on_after(2, shield=True):
            await path.unlink(missing_ok=True)


async def cut_short() -> None:
    """Run ``tokens``, cut its stop short, and look for the token files left."""
    await TOKENS.mkdir()
    try:
        try:
            async with tokens.run() as run:
                run.cut_short()  # what a second SIGINT does under serve()
        except tiered.ShutdownError as exc:
            print(f"  {exc.message}")
        for name in ("careless", "careful"):
            left = await token_path(name).exists()
            what = "left its token file" if left else "removed its token file"
            print(f"  {name:<9} {what}")
    finally:  # the example cleans up after careless
        await anyio.to_thread.run_sync(shutil.rmtree, TOKENS)


# -- 2. an initialize cancelled ------------------------------------------------------

connections = tiered.Runtime("connections")


@connections.driver(tier=0)
async def server(ctx: tiered.Context) -> AsyncIterator[MultiListener[SocketStream]]:
    """A TCP listener on 127.0.0.1 that stands for a database server."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    try:
        yield listener
    finally:
        await listener.aclose()


#: every connection a driver opened, by driver, with its socket: the
#: example looks at them after the run
OPENED: dict[str, tuple[SocketStream, socket.socket]] = {}


async def connect(ctx: tiered.Context) -> SocketStream:
    """A real connection to ``server``."""
    port = ctx.get(server).extra(SocketAttribute.local_port)
    stream = await anyio.connect_tcp("127.0.0.1", port)
    OPENED[ctx.name] = (stream, stream.extra(SocketAttribute.raw_socket))
    return stream


async def handshake() -> None:
    """Stands for a slow protocol handshake, during which the driver is cancelled."""
    await anyio.sleep(10)


class Careless(tiered.Driver):
    """Closes its connection in stop, which a cancelled initialize never reaches."""

    name = "careless"
    tier = 1
    requires = (server,)
    stream: SocketStream | None = None

    async def initialize(self, ctx: tiered.Context) -> None:
        self.stream = await connect(ctx)
        await handshake()

    async def stop(self, ctx: tiered.Context) -> None:
        if self.stream is not None:
            await self.stream.aclose()


class Careful(tiered.Driver):
    """Closes its connection in initialize too, if initialize does not complete."""

    name = "careful"
    tier = 1
    requires = (server,)
    stream: SocketStream | None = None

    async def initialize(self, ctx: tiered.Context) -> None:
        self.stream = await connect(ctx)
        try:
            await handshake()
        except BaseException:  # cancelled, or failed: stop will not run
            await anyio.aclose_forcefully(self.stream)
            raise

    async def stop(self, ctx: tiered.Context) -> None:
        if self.stream is not None:
            await self.stream.aclose()


@connections.driver(requires=(server,))
async def pooled(ctx: tiered.Context) -> AsyncIterator[SocketStream]:
    """A generator driver: one try/finally covers a cancelled initialize and the stop."""
    stream = await connect(ctx)
    try:
        await handshake()
        yield stream
    finally:
        await anyio.aclose_forcefully(stream)


class Broken(tiered.Driver):
    """Fails while the others of its tier are in their handshake, which cancels them."""

    name = "broken"
    tier = 1
    requires = (server,)

    async def initialize(self, ctx: tiered.Context) -> None:
        await anyio.sleep(0.05)
        msg = "the replica refused the connection"
        raise ConnectionRefusedError(msg)


connections.add(Careless())
connections.add(Careful())
connections.add(Broken())


async def cancelled_initialize() -> None:
    """Start ``connections``: broken fails, and the others' initialize is cancelled."""
    run = connections.run()
    try:
        async with run:
            pass  # never reached: start-up fails
    except tiered.StartupError as exc:
        print(f"  {exc.message}")
    statuses = run.statuses()
    for name in ("careless", "careful", "pooled"):
        stream, sock = OPENED[name]
        # a closed socket has no file descriptor any more
        left = "left it open" if sock.fileno() != -1 else "closed it"
        print(f"  {name:<9} {statuses[name]}, {left}")
        await anyio.aclose_forcefully(stream)  # the example cleans up after careless


async def both() -> None:
    """The two halves of the example, one after the other."""
    print("1. the stop is cut short:")
    await cut_short()
    print("2. initialize is cancelled, because broken failed:")
    await cancelled_initialize()


def main(argv: Sequence[str] | None = None) -> int:
    """Run both halves on the backend asked for; return the exit status."""
    parser = argparse.ArgumentParser(description="Clean-up that must happen.")
    parser.add_argument(
        "--backend", choices=("asyncio", "uvloop", "trio"), default="asyncio"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(message)s")
    if args.backend == "uvloop":
        anyio.run(both, backend="asyncio", backend_options={"use_uvloop": True})
    else:
        anyio.run(both, backend=args.backend)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
