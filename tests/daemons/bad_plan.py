"""A runtime whose plan is invalid: ``tiered check`` must say why, in one message.

``storage`` (tier 0) requires ``qemu`` (tier 1): a requirement may only point
to a lower tier.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import tiered

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["runtime"]

runtime = tiered.Runtime("bad")


@runtime.driver(tier=1)
async def qemu(ctx: tiered.Context) -> AsyncIterator[str]:
    """Stands for the hypervisor driver."""
    yield "qemu"


@runtime.driver(tier=0, requires=["qemu"])
async def storage(ctx: tiered.Context) -> AsyncIterator[str]:
    """Wrongly reaches up to a later tier."""
    yield "storage"
