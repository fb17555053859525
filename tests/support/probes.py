"""Drivers that record their hooks, for the tests of the dependencies schedule.

tests/test_dependencies.py and its siblings (``_plan``, ``_timing``,
``_bugs``) build their runtimes from :class:`Probe`: a ``tiered.Driver``
whose hooks append to a :class:`~support.recorder.Recorder` and wait, fail
or skip where a test tells them to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
import pytest

import tiered

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from support.recorder import Recorder

__all__ = [
    "NEEDS",
    "SCHEDULES",
    "STUCK",
    "Probe",
    "before",
    "diamond",
    "failed_start",
    "forever",
    "noted_names",
    "runtime",
    "setting",
    "sleep",
    "start_and_stop",
    "wait_for",
]

#: both schedules, for the behaviours they share
SCHEDULES = ["tiers", "dependencies"]
#: real seconds after which an ordering test that waits on events is stuck
STUCK = 10.0


class Probe(tiered.Driver):
    """A driver that records its hooks (``init+``, ``init-``, ``init!`` ...).

    ``+`` is a hook beginning, ``-`` it returning, ``!`` it raising
    (cancellations included).  Each hook first awaits its ``wait`` (if
    given), then raises or skips if told to.
    """

    def __init__(
        self,
        rec: Recorder,
        name: str,
        tier: int | None = None,
        *,
        requires: tuple[str, ...] = (),
        after: tuple[str, ...] = (),
        optional: bool = False,
        init: Callable[[tiered.Context], Awaitable[None]] | None = None,
        auto: Callable[[tiered.Context], Awaitable[None]] | None = None,
        stop: Callable[[tiered.Context], Awaitable[None]] | None = None,
        reload: Callable[[tiered.Context], Awaitable[None]] | None = None,
        fail: str | None = None,
        skip: str | None = None,
        start_timeout: float | None = None,
    ) -> None:
        self.rec = rec
        self.name = name
        self.tier = tier
        self.requires = requires
        self.after = after
        self.optional = optional
        self.start_timeout = start_timeout
        self.waits = {"init": init, "auto": auto, "stop": stop, "reload": reload}
        self.fail = fail
        self.skip = skip

    async def _hook(self, phase: str, ctx: tiered.Context) -> None:
        self.rec.add(f"{phase}+", self.name)
        try:
            wait = self.waits[phase]
            if wait is not None:
                await wait(ctx)
            if self.fail == phase:
                raise RuntimeError(f"{self.name} broke in {phase}")
            if self.skip == phase:
                raise tiered.Skip(f"{self.name} does not apply")
        except BaseException:
            self.rec.add(f"{phase}!", self.name)
            raise
        self.rec.add(f"{phase}-", self.name)

    async def initialize(self, ctx: tiered.Context) -> None:
        await self._hook("init", ctx)

    async def autostart(self, ctx: tiered.Context) -> None:
        await self._hook("auto", ctx)

    async def reload(self, ctx: tiered.Context) -> None:
        await self._hook("reload", ctx)

    async def stop(self, ctx: tiered.Context) -> None:
        await self._hook("stop", ctx)


def sleep(seconds: float) -> Callable[[tiered.Context], Awaitable[None]]:
    """A hook body that sleeps."""

    async def body(ctx: tiered.Context) -> None:
        await anyio.sleep(seconds)

    return body


def wait_for(event: anyio.Event) -> Callable[[tiered.Context], Awaitable[None]]:
    """A hook body that waits until ``event`` is set."""

    async def body(ctx: tiered.Context) -> None:
        await event.wait()

    return body


def setting(event: anyio.Event) -> Callable[[tiered.Context], Awaitable[None]]:
    """A hook body that sets ``event`` and returns."""

    async def body(ctx: tiered.Context) -> None:
        event.set()

    return body


def forever(ctx: tiered.Context) -> Awaitable[None]:
    """A hook body that never returns."""
    return anyio.sleep_forever()


def runtime(*drivers: tiered.Driver, **options: Any) -> tiered.Runtime:
    rt = tiered.Runtime("dag", **options)
    for d in drivers:
        rt.add(d)
    return rt


def before(rec: Recorder, first: tuple[str, str], then: tuple[str, str]) -> bool:
    """Whether event ``first`` happened, and before every event ``then``."""
    a = rec.first(*first)
    return a is not None and all(a < b for b in rec.indices(*then))


async def start_and_stop(run: tiered.Run) -> tiered.Report:
    """Enter and leave ``run`` (within ``STUCK`` seconds); the report at the top."""
    with anyio.fail_after(STUCK):
        async with run:
            return run.report


async def failed_start(run: tiered.Run, within: float = STUCK) -> tiered.StartupError:
    """Enter ``run``, which must fail to start (within ``within`` s); its StartupError."""
    with anyio.fail_after(within):
        with pytest.raises(tiered.StartupError) as info:
            async with run:
                pass  # pragma: no cover - start-up fails
    return info.value


def noted_names(error: BaseException) -> list[str]:
    """The drivers the notes of a StartupError's exceptions name."""
    assert isinstance(error, ExceptionGroup)
    return [e.__notes__[0].split("'")[1] for e in error.exceptions]


#: a -> c <- b (c requires a and is after b), d requires c, e is after a
def diamond(rec: Recorder) -> list[Probe]:
    return [
        Probe(rec, "a", 0, init=sleep(0.01), auto=sleep(0.01)),
        Probe(rec, "b", 0, init=sleep(0.03), auto=sleep(0.01)),
        Probe(rec, "c", 1, requires=("a",), after=("b",), init=sleep(0.01)),
        Probe(rec, "d", 2, requires=("c",)),
        Probe(rec, "e", 1, after=("a",), auto=sleep(0.01)),
    ]


NEEDS = {"c": ("a", "b"), "d": ("c",), "e": ("a",)}
