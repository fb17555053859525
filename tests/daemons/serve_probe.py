"""A daemon for the ``tiered run`` tests: three tiers that say what they do.

Start it from the repository root::

    python -m tiered run tests.daemons.serve_probe:runtime --backend trio

Drivers ``a`` (tier 0), ``b`` (tier 1, requires ``a``) and ``c`` (tier 2,
requires ``b``) print one line to stdout, flushed, as each hook begins
(``init a``, ``auto b``, ``reload c``, ``stop a``) and one as it ends
(``init a done``); a hook left by a cancellation or a failure prints
``init c interrupted`` instead.  ``autostart`` also sets a status
(``ctx.status``), which ``tiered run`` sends to systemd.

Environment variables set up a scenario; ``HOOK.DRIVER`` names a hook of a
driver, with ``HOOK`` one of ``init``, ``auto``, ``reload``, ``stop``:

- ``PROBE_DELAY=init.c=30,stop.a=0.5``: seconds that hook sleeps;
- ``PROBE_FAIL=init.b``: that hook raises ``RuntimeError`` after its delay;
- ``PROBE_EXTEND=init.b=7.5``: that hook calls ``ctx.extend_timeout(7.5)``
  first thing;
- ``PROBE_GATE=init.c,reload.b`` with ``PROBE_GATE_DIR=DIR``: that hook waits
  until the file ``DIR/init.c`` exists (a test opens the gate by creating it,
  which makes a scenario deterministic where a delay would only be likely);
- ``PROBE_START_TIMEOUT`` / ``PROBE_STOP_TIMEOUT``: the runtime's timeouts in
  seconds (default 30 each); ``PROBE_SHUTDOWN_TIMEOUT``: its shutdown budget;
- ``PROBE_CRASH=b=0.2``: after autostart, that driver starts a background task
  that raises after that many seconds (``crash b`` on stdout), in each of its
  first ``PROBE_CRASHES`` lives (default: every life);
- ``PROBE_RESTART=b=2``: that driver has ``restart=tiered.Restart(max_restarts=2,
  delay=0.1)``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import anyio

import tiered

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["NOT_A_RUNTIME", "Probe", "runtime"]

HOOKS = ("init", "auto", "reload", "stop")


def _pairs(variable: str) -> dict[str, float]:
    """Parse ``hook.driver=seconds,...`` from the environment."""
    found: dict[str, float] = {}
    for item in os.environ.get(variable, "").split(","):
        if item.strip():
            key, _, seconds = item.partition("=")
            found[key.strip()] = float(seconds)
    return found


DELAYS = _pairs("PROBE_DELAY")
EXTEND = _pairs("PROBE_EXTEND")


def _keys(variable: str) -> set[str]:
    """Parse ``hook.driver,...`` from the environment."""
    return {k.strip() for k in os.environ.get(variable, "").split(",") if k.strip()}


FAIL = _keys("PROBE_FAIL")
CRASH = _pairs("PROBE_CRASH")
CRASHES = int(os.environ.get("PROBE_CRASHES", "0")) or None
RESTART = _pairs("PROBE_RESTART")
GATES = _keys("PROBE_GATE")
GATE_DIR = anyio.Path(os.environ.get("PROBE_GATE_DIR", "."))


def say(line: str) -> None:
    """Print one event line at once, so the test reading the pipe sees it now."""
    print(line, flush=True)


async def wait_for_file(path: anyio.Path) -> None:
    """Return once ``path`` exists: the test opened the gate (polled: a file
    made by another process gives no event to wait on)."""
    while True:
        if await path.exists():
            return
        await anyio.sleep(0.01)


class Probe(tiered.Driver):
    """A driver whose hooks print what they do and follow the scenario."""

    def __init__(self, name: str, tier: int, requires: Sequence[str] = ()) -> None:
        super().__init__()
        self.name = name
        self.tier = tier
        self.requires = tuple(requires)
        self.lives = 0
        if name in RESTART:
            self.restart = tiered.Restart(max_restarts=int(RESTART[name]), delay=0.1)

    async def _crash(self, after: float) -> None:
        await anyio.sleep(after)
        say(f"crash {self.name}")
        msg = f"probe: the backend of {self.name} went away"
        raise ConnectionError(msg)

    async def _hook(self, hook: str, ctx: tiered.Context) -> None:
        key = f"{hook}.{self.name}"
        say(f"{hook} {self.name}")
        finished = False
        try:
            if key in EXTEND:
                ctx.extend_timeout(EXTEND[key])
            if key in GATES:
                await wait_for_file(GATE_DIR / key)
            if key in DELAYS:
                await anyio.sleep(DELAYS[key])
            if key in FAIL:
                msg = f"probe: {hook} of {self.name} failed on purpose"
                raise RuntimeError(msg)
            finished = True
        finally:
            say(f"{hook} {self.name} {'done' if finished else 'interrupted'}")

    async def initialize(self, ctx: tiered.Context) -> None:
        """Say ``init NAME``, then follow the scenario."""
        await self._hook("init", ctx)

    async def autostart(self, ctx: tiered.Context) -> None:
        """Say ``auto NAME``, follow the scenario, then set a status."""
        await self._hook("auto", ctx)
        ctx.status(f"{self.name} autostarted")
        self.lives += 1
        if self.name in CRASH and (CRASHES is None or self.lives <= CRASHES):
            ctx.start_soon(self._crash, CRASH[self.name])

    async def reload(self, ctx: tiered.Context) -> None:
        """Say ``reload NAME``, then follow the scenario."""
        await self._hook("reload", ctx)

    async def stop(self, ctx: tiered.Context) -> None:
        """Say ``stop NAME``, then follow the scenario."""
        await self._hook("stop", ctx)


_budget = os.environ.get("PROBE_SHUTDOWN_TIMEOUT")
runtime = tiered.Runtime(
    "probe",
    start_timeout=float(os.environ.get("PROBE_START_TIMEOUT", "30")),
    stop_timeout=float(os.environ.get("PROBE_STOP_TIMEOUT", "30")),
    shutdown_timeout=float(_budget) if _budget else None,
)
runtime.add(Probe("a", 0))
runtime.add(Probe("b", 1, requires=["a"]))
runtime.add(Probe("c", 2, requires=["b"]))

#: Not a runtime: ``tiered run tests.daemons.serve_probe:NOT_A_RUNTIME`` is a
#: usage error.
NOT_A_RUNTIME = "a string"
