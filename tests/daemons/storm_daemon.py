"""A daemon for the signal storms of tests/test_storms.py: eight drivers, four tiers.

Start it from the repository root::

    STORM_SEED=3 python -m tiered run tests.daemons.storm_daemon:runtime

Tier 0 has ``a0``, ``a1``, ``a2``; tier 1 ``b0`` and ``b1`` (each requires two
drivers of tier 0); tier 2 ``c0`` and ``c1``; tier 3 ``d0``.  Every hook
prints one line to stdout, flushed, as it begins (``init a0``, ``auto b1``,
``reload c0``, ``stop d0``) and one as it ends: ``init a0 done``, or
``init a0 interrupted`` when a cancellation or a timeout ended it.

``STORM_SEED`` seeds how long each hook takes (a few to a few hundred
milliseconds), so a storm's trial can be run again as it was.  With
``STORM_HANG=b0`` that driver's ``stop`` never returns: its ``stop_timeout``
(``STORM_STOP_TIMEOUT`` seconds, default 0.5) ends it.
"""

from __future__ import annotations

import os
import random
from typing import TYPE_CHECKING

import anyio

import tiered

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["DRIVERS", "HOOK_SECONDS", "Storm", "runtime"]

#: name -> (tier, requires)
DRIVERS: dict[str, tuple[int, tuple[str, ...]]] = {
    "a0": (0, ()),
    "a1": (0, ()),
    "a2": (0, ()),
    "b0": (1, ("a0", "a1")),
    "b1": (1, ("a1", "a2")),
    "c0": (2, ("b0",)),
    "c1": (2, ("b0", "b1")),
    "d0": (3, ("c0", "c1")),
}
#: the longest each hook may take (seconds); drawn uniformly from 0 to this
HOOK_SECONDS = {"init": 0.15, "auto": 0.1, "reload": 0.1, "stop": 0.2}

SEED = os.environ.get("STORM_SEED", "0")
HANG = os.environ.get("STORM_HANG", "")
STOP_TIMEOUT = float(os.environ.get("STORM_STOP_TIMEOUT", "0.5"))


def say(line: str) -> None:
    """Print one event line at once, so the test reading the pipe sees it now."""
    print(line, flush=True)


class Storm(tiered.Driver):
    """A driver whose hooks say what they do and take a seeded while."""

    def __init__(self, name: str, tier: int, requires: Sequence[str]) -> None:
        super().__init__()
        self.name = name
        self.tier = tier
        self.requires = tuple(requires)
        self.rng = random.Random(f"{SEED}:{name}")

    async def _hook(self, hook: str) -> None:
        say(f"{hook} {self.name}")
        finished = False
        try:
            await anyio.sleep(self.rng.uniform(0, HOOK_SECONDS[hook]))
            if hook == "stop" and self.name == HANG:
                await anyio.sleep_forever()
            finished = True
        finally:
            say(f"{hook} {self.name} {'done' if finished else 'interrupted'}")

    async def initialize(self, ctx: tiered.Context) -> None:
        await self._hook("init")

    async def autostart(self, ctx: tiered.Context) -> None:
        await self._hook("auto")

    async def reload(self, ctx: tiered.Context) -> None:
        await self._hook("reload")

    async def stop(self, ctx: tiered.Context) -> None:
        await self._hook("stop")


runtime = tiered.Runtime("storm", start_timeout=30.0, stop_timeout=STOP_TIMEOUT)
for _name, (_tier, _requires) in DRIVERS.items():
    runtime.add(Storm(_name, _tier, _requires))
