"""What the daemons of the exec-to-READY workload share: the work, and the log.

Every daemon here is run by ``benchmarks/processes.py`` as ``python -m NAME``
with this directory as its working directory (so nothing else of
``benchmarks/`` is importable by accident).  The benchmark gives the sizes
in the environment.  It imports only ``os``, which every interpreter has
loaded by the time it runs its first line, so it adds next to nothing to any
daemon's start-up.
"""

from __future__ import annotations

import os

DRIVERS = int(os.environ.get("TIERED_BENCH_DRIVERS", "20"))
TIERS = int(os.environ.get("TIERED_BENCH_TIERS", "4"))
# the format `tiered run` gives its log (src/tiered/_cli.py), for every daemon
LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# how each daemon is told its event loop: (anyio backend, its options)
BACKENDS: dict[str, tuple[str, dict[str, bool]]] = {
    "asyncio": ("asyncio", {}),
    "uvloop": ("asyncio", {"use_uvloop": True}),
    "trio": ("trio", {}),
}


def tier_of(index: int) -> int:
    """Driver ``index``'s tier: round-robin, as ``harness.noop_plan`` spreads them."""
    return index % TIERS
