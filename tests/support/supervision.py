"""Drivers and helpers for the supervision tests (tests/test_supervision*.py).

:class:`Member` is a class driver that records every phase into a
:class:`tiered.testing.Recorder` and follows a *script*, life by life: its
background task raises after some seconds, or when the test calls
:meth:`Member.crash` (deterministic on a real clock, where a timed crash
could come before start-up is over), or its ``initialize`` fails or raises
an interrupt.  ``tiered.testing.FaultyDriver`` covers the timed crash loops;
this covers what differs from one life to the next.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import anyio
import anyio.lowlevel

import tiered

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from tiered.testing import Recorder

__all__ = ["Interrupt", "Member", "until"]

#: what one life does: crash its background task after that many seconds,
#: fail its initialize, or raise an :class:`Interrupt` from it
Step = float | Literal["fail", "interrupt"]


class Interrupt(BaseException):
    """An application's own BaseException: like KeyboardInterrupt, it stops the run."""


class Member(tiered.Driver):
    """A recorded class driver whose lives follow ``script`` (life number -> step).

    A life without a step runs until stopped, or until :meth:`crash`.
    """

    def __init__(
        self,
        name: str,
        recorder: Recorder,
        *,
        tier: int | None = None,
        requires: Sequence[str] = (),
        after: Sequence[str] = (),
        optional: bool = False,
        restart: tiered.Restart | str | None = None,
        script: Mapping[int, Step] | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        self.tier = tier
        self.requires = tuple(requires)
        self.after = tuple(after)
        self.optional = optional
        self.restart = restart
        self.recorder = recorder
        self.script = dict(script or {})
        self.lives = 0
        self.stops = 0
        #: what ``ctx.get`` gave for each requirement, life by life
        self.seen: list[tuple[object, ...]] = []
        self._fire: anyio.Event | None = None

    async def initialize(self, ctx: tiered.Context) -> None:
        self.lives += 1
        life = self.lives
        step = self.script.get(life)
        with self.recorder.phase(ctx, "initialize"):
            self.seen.append(tuple(ctx.get(r) for r in self.requires))
            await anyio.lowlevel.checkpoint()
            if step == "fail":
                msg = f"{self.name} cannot start in life {life}"
                raise OSError(msg)
            if step == "interrupt":
                raise Interrupt(self.name)
        fire = self._fire = anyio.Event()
        after = None if isinstance(step, str) else step
        ctx.start_soon(self._watch, ctx, life, fire, after)

    async def _watch(
        self, ctx: tiered.Context, life: int, fire: anyio.Event, after: float | None
    ) -> None:
        with self.recorder.phase(ctx, "background"):
            if after is None:
                await fire.wait()
            else:
                await anyio.sleep(after)
            msg = f"{self.name} lost its backend in life {life}"
            raise ConnectionError(msg)

    def crash(self) -> None:
        """Make the background task of the current life raise now."""
        assert self._fire is not None, f"{self.name} has not started"
        self._fire.set()

    async def stop(self, ctx: tiered.Context) -> None:
        self.stops += 1
        with self.recorder.phase(ctx, "stop"):
            await anyio.lowlevel.checkpoint()


async def until(check: Callable[[], bool], *, limit: float = 10.0) -> None:
    """Wait until ``check()`` is true, polling; fail after ``limit`` seconds.

    On trio's autojump clock the seconds are virtual and the poll moves the
    clock by a millisecond a time, which no test here depends on.
    """
    with anyio.fail_after(limit):
        while not check():  # noqa: ASYNC110 - a predicate, nothing to wait on
            await anyio.sleep(0.001)
