"""virtd: a small daemon whose runtime is built by a function, so tests can extend it.

The testing guide (``docs/testing.md``) tests it with the pytest-trio suite
next to it, ``test_virtd.py``.  Three tiers, as libvirtd loads its drivers:

- tier 0, ``secrets``: unlocks the keyring (0.5 s) and hands on the storage key;
- tier 1, ``storage``: reads its key, then activates two pools (2 s each);
- tier 2, ``qemu``: probes the hypervisor (1 s), reconnects each running guest
  (0.5 s each), then checks on the guests every 10 s in the background.

Start-up takes 0.5 + 4 + 1 + 1 = 6.5 seconds.  The sleeps stand for I/O;
under pytest-trio's ``autojump_clock`` a test sees exactly 6.5 seconds pass,
in a few milliseconds.

:func:`build_runtime` makes a new runtime each time it is called, and takes
extra drivers: a test adds a :class:`tiered.testing.FaultyDriver` to see what
the real drivers do when something fails or hangs.  ``runtime`` is what
``tiered run virtd:runtime`` serves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

import tiered

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

#: Storage pools activated by ``storage``, and the guests that use them.
POOLS = ("default", "images")
GUESTS = {"web": "images", "db": "default"}


class Storage(tiered.Driver):
    """Activate the storage pools, with the key the ``secrets`` driver keeps."""

    tier = 1
    requires = ("secrets",)

    def __init__(self) -> None:
        super().__init__()
        self.key = ""
        self.active: set[str] = set()

    async def initialize(self, ctx: tiered.Context) -> None:
        """Take the pool key from ``secrets``."""
        self.key = ctx.get("secrets")["storage"]

    async def autostart(self, ctx: tiered.Context) -> None:
        """Activate every pool, one after the other."""
        for pool in POOLS:
            await anyio.sleep(2.0)  # stands for mounting the pool
            self.active.add(pool)

    async def stop(self, ctx: tiered.Context) -> None:
        """Deactivate every pool."""
        await anyio.sleep(1.0)  # stands for unmounting the pools
        self.active.clear()


class Qemu(tiered.Driver):
    """Reconnect to the guests that kept running while the daemon was down."""

    tier = 2
    requires = (Storage,)

    def __init__(self) -> None:
        super().__init__()
        self.guests: list[str] = []
        self.checks = 0

    async def initialize(self, ctx: tiered.Context) -> None:
        """Probe the hypervisor's capabilities."""
        await anyio.sleep(1.0)

    async def autostart(self, ctx: tiered.Context) -> None:
        """Reconnect each guest, once its pool is active; then watch them."""
        storage = ctx.get(Storage)
        for guest, pool in GUESTS.items():
            if pool not in storage.active:
                msg = f"guest {guest!r} uses pool {pool!r}, which is not active"
                raise RuntimeError(msg)
            await anyio.sleep(0.5)  # stands for reattaching to the QEMU monitor
            self.guests.append(guest)
        ctx.start_soon(self.watch)

    async def watch(self) -> None:
        """Check on the guests every 10 s until the driver stops."""
        while True:
            await anyio.sleep(10.0)
            self.checks += 1

    async def stop(self, ctx: tiered.Context) -> None:
        """Detach from the guests; they keep running without the daemon."""
        self.guests.clear()


def build_runtime(
    *extra: tiered.Driver,
    start_timeout: float = 90.0,
    stop_timeout: float = 90.0,
) -> tiered.Runtime:
    """Return a new virtd runtime, with ``extra`` drivers added to it."""
    runtime = tiered.Runtime(
        "virtd", start_timeout=start_timeout, stop_timeout=stop_timeout
    )

    @runtime.driver(tier=0)
    async def secrets(ctx: tiered.Context) -> AsyncGenerator[dict[str, str], None]:
        keys = {"storage": "0f1e2d3c"}
        await anyio.sleep(0.5)  # stands for unlocking the keyring
        yield keys
        keys.clear()  # forget the keys at stop

    runtime.add(Storage())
    runtime.add(Qemu())
    for driver in extra:
        runtime.add(driver)
    return runtime


runtime = build_runtime()
