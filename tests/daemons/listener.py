"""A daemon that listens, so that tests/test_security.py sees its check fail.

Driver ``tcp`` opens a TCP listener on 127.0.0.1 (any port); driver ``unix``
binds an ``AF_UNIX`` datagram socket to ``$LISTENER_DIR/bound.sock``.  What
the security test forbids tiered to do, a driver may do: this daemon shows
the check would notice.
"""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING

import anyio

import tiered

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["runtime"]

runtime = tiered.Runtime("listener", start_timeout=30.0, stop_timeout=30.0)


@runtime.driver(tier=0)
async def tcp(ctx: tiered.Context) -> AsyncIterator[int]:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    async with listener:
        yield listener.extra(anyio.abc.SocketAttribute.local_port)


@runtime.driver(tier=0)
async def unix(ctx: tiered.Context) -> AsyncIterator[str]:
    path = os.path.join(os.environ["LISTENER_DIR"], "bound.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        yield path
