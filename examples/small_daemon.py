"""A small virtualization-host daemon, started in three tiers.

This is the example the tutorial (``docs/tutorial.md``) walks through.  It
declares four drivers, the way libvirtd loads its drivers:

- tier 0, ``secrets``: writes a key file into a temporary state directory;
- tier 0, ``network``: listens on a loopback TCP port;
- tier 1, ``storage``: reads its key from ``secrets``, activates the pools;
- tier 2, ``qemu``: reconnects to the running guests and watches them.

``qemu`` is in the last tier so that it reconnects to guests only after their
storage pools are online: the race that libvirt's tiered driver loading fixed.
``storage`` gets its key from the ``secrets`` driver it declares, never
through a hidden connection to ``qemu``.

The delays (``anyio.sleep``) stand for the I/O a real daemon would do.  Every
hook uses only anyio, so the daemon runs on asyncio, uvloop and trio::

    python examples/small_daemon.py --backend trio

It starts the daemon, prints the start-up report, reloads it once, lets it run
for a moment, stops it and writes the timeline of the whole run as SVG.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from shutil import rmtree
from tempfile import mkdtemp
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread
from anyio.abc import SocketAttribute

import tiered

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Sequence

    from anyio.abc import SocketStream
    from anyio.streams.stapled import MultiListener

#: Storage pools activated by ``storage``, and the guests that use them.
POOLS = ("default", "images", "backups")
GUESTS = {"web": "images", "db": "default", "ci": "images"}

#: How often ``qemu`` checks on its guests, in seconds (short, for the example).
HEARTBEAT_INTERVAL = 0.1

#: How long ``main`` keeps the daemon up after it started, in seconds.
SERVE_FOR = 0.25

runtime = tiered.Runtime("small-virtd", start_timeout=10.0, stop_timeout=5.0)


# -- tier 0 ------------------------------------------------------------------


@dataclass
class SecretStore:
    """The value of the ``secrets`` driver: a directory of key files."""

    directory: anyio.Path

    def key_path(self, name: str) -> anyio.Path:
        """The file that holds the key called *name*."""
        return self.directory / f"{name}.key"

    async def create_key(self, name: str) -> None:
        """Write a new random key called *name*, readable by its owner only."""
        path = self.key_path(name)
        await path.touch(mode=0o600)
        await path.write_text(os.urandom(32).hex(), encoding="ascii")

    async def read_key(self, name: str) -> str:
        """Return the key called *name*."""
        return await self.key_path(name).read_text(encoding="ascii")


@runtime.driver(tier=0)
async def secrets(ctx: tiered.Context) -> AsyncGenerator[SecretStore, None]:
    """Keep the daemon's keys in a private state directory.

    The code before ``yield`` is the driver's ``initialize``, the code after it
    is its ``stop``.  The ``finally`` removes the directory whether the driver
    stops normally or fails before it yields.
    """
    path = await anyio.to_thread.run_sync(partial(mkdtemp, prefix="small-virtd-"))
    try:
        store = SecretStore(anyio.Path(path))
        ctx.status("unlocking the keyring")
        await anyio.sleep(0.04)  # stands for unlocking a real keyring
        await store.create_key("storage")
        ctx.status(f"keys in {path}")
        yield store
        ctx.status("wiping keys")
    finally:
        await anyio.to_thread.run_sync(rmtree, path)


class Network(tiered.Driver):
    """Listen on a loopback TCP port, as a bridge or an RPC socket would."""

    name = "network"
    tier = 0

    def __init__(self) -> None:
        super().__init__()
        self.listener: MultiListener[SocketStream] | None = None
        self.port = 0

    async def initialize(self, ctx: tiered.Context) -> None:
        """Open the listening socket on 127.0.0.1, on a port the OS picks."""
        self.listener = await anyio.create_tcp_listener(
            local_host="127.0.0.1", local_port=0
        )
        self.port = self.listener.extra(SocketAttribute.local_port)
        await anyio.sleep(0.025)  # stands for creating a bridge device
        ctx.status(f"listening on 127.0.0.1:{self.port}")

    async def autostart(self, ctx: tiered.Context) -> None:
        """Start the networks marked autostart."""
        await anyio.sleep(0.03)  # stands for starting dnsmasq on the bridge
        ctx.status(f"network 'default' active on 127.0.0.1:{self.port}")

    async def stop(self, ctx: tiered.Context) -> None:
        """Close the listening socket."""
        if self.listener is not None:
            await self.listener.aclose()


runtime.add(Network())


# -- tier 1 ------------------------------------------------------------------


class Storage(tiered.Driver):
    """Activate storage pools, with the key the ``secrets`` driver keeps."""

    name = "storage"
    tier = 1
    requires = (secrets,)

    def __init__(self) -> None:
        super().__init__()
        self.key = ""
        self.active_pools: set[str] = set()

    async def initialize(self, ctx: tiered.Context) -> None:
        """Read the pool key and the pool definitions."""
        # ctx.get() works only for a driver listed in `requires`.
        self.key = await ctx.get(secrets).read_key("storage")
        await anyio.sleep(0.05)  # stands for parsing the pool definitions
        ctx.status(f"{len(POOLS)} pools defined")

    async def autostart(self, ctx: tiered.Context) -> None:
        """Activate every pool, one after the other."""
        for pool in POOLS:
            # Each pool gets its own 5 seconds, however many pools there are.
            ctx.extend_timeout(5.0)
            await anyio.sleep(0.03)  # stands for mounting the pool
            self.active_pools.add(pool)
            ctx.status(f"pool {pool!r} active")

    async def reload(self, ctx: tiered.Context) -> None:
        """Re-read the pool definitions."""
        await anyio.sleep(0.02)
        ctx.status(f"{len(self.active_pools)} pools active after reload")

    async def stop(self, ctx: tiered.Context) -> None:
        """Deactivate every pool."""
        await anyio.sleep(0.02)  # stands for unmounting the pools
        self.active_pools.clear()


runtime.add(Storage())


# -- tier 2 ------------------------------------------------------------------


class Qemu(tiered.Driver):
    """Reconnect to the guests that kept running while the daemon was down."""

    name = "qemu"
    tier = 2
    requires = (Storage, Network)

    def __init__(self) -> None:
        super().__init__()
        self.guests: list[str] = []
        self.heartbeats = 0

    async def initialize(self, ctx: tiered.Context) -> None:
        """Probe the hypervisor's capabilities."""
        await anyio.sleep(0.06)  # stands for running `qemu --version` and friends
        ctx.status("capabilities probed")

    async def autostart(self, ctx: tiered.Context) -> None:
        """Reconnect to each running guest, then watch them in the background."""
        storage = ctx.get(Storage)
        network = ctx.get(Network)
        for guest, pool in GUESTS.items():
            # The check that failed in libvirt ~40% of restarts before tiers:
            # tier 1 is complete here, so every pool is active.
            if pool not in storage.active_pools:
                msg = f"guest {guest!r} uses pool {pool!r}, which is not active"
                raise RuntimeError(msg)
            await anyio.sleep(0.04)  # stands for reattaching to the QEMU monitor
            self.guests.append(guest)
        ctx.status(f"{len(self.guests)} guests, consoles on port {network.port}")
        ctx.start_soon(self.heartbeat, ctx)

    async def heartbeat(self, ctx: tiered.Context) -> None:
        """Check on the guests until the driver stops (which cancels this)."""
        while True:
            await anyio.sleep(HEARTBEAT_INTERVAL)
            self.heartbeats += 1
            ctx.status(f"{len(self.guests)} guests running, {self.heartbeats} checks")

    async def stop(self, ctx: tiered.Context) -> None:
        """Detach from the guests; they keep running without the daemon."""
        await anyio.sleep(0.02)
        self.guests.clear()


runtime.add(Qemu())


# -- running it --------------------------------------------------------------


def _ms(seconds: float) -> str:
    """Format a duration in milliseconds."""
    return f"{seconds * 1000:.0f} ms"


async def serve_once(svg_path: Path) -> None:
    """Start the daemon, print its start-up report, stop it, write the SVG."""
    async with runtime.run() as run:
        report = run.report
        print(report.to_text())
        # The report is data, too: the same facts, for a program to use.
        slowest = report.blame()[0]
        print(
            f"\nslowest: {slowest.name} (tier {slowest.tier}), {_ms(slowest.startup)}"
        )
        steps = [f"{link.name}.{link.phase}" for link in report.critical_chain()]
        print("start-up waited on:", " -> ".join(steps))
        errors = await run.reload()
        print(f"\nreloaded, {len(errors)} errors")
        await anyio.sleep(SERVE_FOR)
    # Taken after the run, the report holds the stop phases too.
    await anyio.Path(svg_path).write_text(run.report.to_svg(), encoding="utf-8")
    print(f"timeline written to {svg_path}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the example daemon once; return the exit status."""
    parser = argparse.ArgumentParser(description="Run the small-virtd example once.")
    parser.add_argument(
        "--backend", choices=("asyncio", "uvloop", "trio"), default="asyncio"
    )
    parser.add_argument(
        "--svg",
        type=Path,
        default=Path("build", "small-daemon-timeline.svg"),
        help="where to write the timeline (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    svg_path: Path = args.svg
    svg_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if args.backend == "uvloop":
            anyio.run(
                serve_once,
                svg_path,
                backend="asyncio",
                backend_options={"use_uvloop": True},
            )
        else:
            anyio.run(serve_once, svg_path, backend=args.backend)
    except tiered.StartupError as exc:
        print(f"start-up failed: {exc}", file=sys.stderr)
        for error in exc.exceptions:
            notes = "; ".join(getattr(error, "__notes__", ()))
            print(f"  {error!r} ({notes})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
