"""The tiered runtime of the exec-to-READY workload: 20 no-op drivers in 4 tiers.

``python -m tiered run exec_runtime:runtime`` serves it, and so does
``exec_serve.py`` through ``tiered.serve()``.  A no-op driver does nothing at
all, as in workload 1: no checkpoint, no sleep.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from exec_common import DRIVERS, tier_of

import tiered

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

runtime = tiered.Runtime("exec-bench")


def _noop() -> Callable[[tiered.Context], AsyncIterator[None]]:
    async def driver(ctx: tiered.Context) -> AsyncIterator[None]:
        yield None

    return driver


for _index in range(DRIVERS):
    _tier = tier_of(_index)
    runtime.driver(name=f"t{_tier}d{_index}", tier=_tier)(_noop())
