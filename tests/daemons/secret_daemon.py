"""A daemon that hands a secret from one driver to others, for tests/test_security.py.

``secrets`` (tier 0) yields a key store holding ``$SECRET_DAEMON_KEY``;
``storage`` (tier 1) takes the key from it, ``qemu`` (tier 2) takes it from
``storage`` and says on stdout whether it got the right one (``qemu got the
key: yes``), never the key.  The values are made to leak if anything prints
them: their ``repr()`` and ``str()`` contain the key, as a careless class's
would.  ``gpu`` is optional and fails; with ``SECRET_DAEMON_FAIL=1`` the
required driver ``guests`` (tier 3) fails too, so start-up fails and rolls
back.  Hooks set statuses and log at every level, without the key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

import tiered

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["KeyStore", "runtime"]

KEY = os.environ.get("SECRET_DAEMON_KEY", "AQBexampleCephXkeyNotSecret==")
FAIL = os.environ.get("SECRET_DAEMON_FAIL") == "1"


@dataclass
class KeyStore:
    """A careless value: its repr shows the key."""

    ceph: str


class Storage(tiered.Driver):
    """Takes the key from ``secrets``; its attributes hold it."""

    name = "storage"
    tier = 1
    requires = ("secrets",)

    async def initialize(self, ctx: tiered.Context) -> None:
        store: KeyStore = ctx.get("secrets")
        self.key = store.ceph
        ctx.logger.debug("storage has a key of %d characters", len(self.key))
        await anyio.sleep(0.01)

    async def autostart(self, ctx: tiered.Context) -> None:
        ctx.status("pool 'ceph' active")

    async def reload(self, ctx: tiered.Context) -> None:
        ctx.status("pool 'ceph' reloaded")

    async def stop(self, ctx: tiered.Context) -> None:
        self.key = ""

    def __repr__(self) -> str:
        return f"Storage(key={self.key!r})"

    __str__ = __repr__


runtime = tiered.Runtime("vault", start_timeout=30.0, stop_timeout=30.0)


@runtime.driver(tier=0)
async def secrets(ctx: tiered.Context) -> AsyncIterator[KeyStore]:
    ctx.status("1 secret loaded")
    yield KeyStore(KEY)
    ctx.logger.info("secrets wiped")


runtime.add(Storage())


@runtime.driver(tier=0, optional=True)
async def gpu(ctx: tiered.Context) -> AsyncIterator[None]:
    ctx.logger.warning("no GPU here")
    if ctx.tier >= 0:  # always
        raise RuntimeError("gpu: no device")
    yield None  # pragma: no cover - never reached


@runtime.driver(tier=2, requires=("storage",))
async def qemu(ctx: tiered.Context) -> AsyncIterator[KeyStore]:
    key = ctx.get(Storage).key
    print(f"qemu got the key: {'yes' if key == KEY else 'no'}", flush=True)
    ctx.logger.error("qemu connected (a log line at ERROR level)")
    yield KeyStore(key)


@runtime.driver(tier=3, requires=(qemu,))
async def guests(ctx: tiered.Context) -> AsyncIterator[int]:
    if FAIL:
        raise RuntimeError("guests: the monitor socket is gone")
    yield 3
