"""``FaultyDriver``: a stand-in driver that is slow, fails, hangs, skips or crashes on cue."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from contextlib import nullcontext
from typing import TYPE_CHECKING, Literal, get_args

import anyio
import anyio.lowlevel

from .._driver import Driver
from .._exceptions import ConfigError, Skip
from ._recorder import PHASES, Phase

if TYPE_CHECKING:
    from collections.abc import Sequence
    from contextlib import AbstractContextManager

    from .._context import Context
    from .._driver import Requirement
    from .._restart import Restart
    from ._recorder import Recorder

__all__ = ["FaultyDriver", "InjectedFault", "SkipPhase"]

#: The phases in which a driver may skip itself.
SkipPhase = Literal["initialize", "autostart"]


class InjectedFault(Exception):
    """Raised by a :class:`FaultyDriver` in the phase named by its ``fail_in``.

    Example::

        runtime.add(FaultyDriver("storage", tier=1, fail_in="autostart"))
        with pytest.raises(tiered.StartupError) as info:
            async with runtime.run():
                pass
        assert info.group_contains(InjectedFault)
    """


class FaultyDriver(Driver):
    """A driver that does nothing but what a test tells it: be slow, fail, hang, skip, crash.

    Every hook first sleeps its delay (if any), then, in the phase named by
    ``hang_in``, ``skip_in`` or ``fail_in``, hangs until cancelled, raises
    :class:`tiered.Skip`, or raises ``error``.  Without faults it is a
    well-behaved driver, handy to fill a tier.  Its value (what ``ctx.get``
    and ``run.get`` return) is the instance itself; put what dependents
    should see in ``value``.

    ``crash_after`` makes it fail *after* start-up, as a driver whose
    monitor task dies does: each life (each start, the first and every
    restart) starts a background task at the end of ``initialize``, which
    in the lives that crash raises ``error`` ``crash_after`` seconds later,
    and in the others runs until the driver stops.  With ``restart=`` that
    is a crash loop, or a crash and a recovery, on virtual time.

    Args:
        name: the driver's name.
        tier: its tier; ``None`` infers it from ``requires``.
        requires: drivers it requires, as for any :class:`tiered.Driver`.
        after: drivers it starts after and stops before, without requiring them.
        optional: its failure is logged and the run goes on.
        restart: what a crash after start-up does, as for any driver:
            ``None``, ``"on-failure"`` or a :class:`tiered.Restart`.
        start_timeout: seconds for ``initialize`` plus ``autostart``;
            ``None`` takes the runtime's default (90 s unless set).
        stop_timeout: seconds for ``stop``, same conventions.
        delay: seconds ``initialize`` sleeps before anything else; or a
            mapping from phase to seconds, like ``{"autostart": 5, "stop": 2}``.
        fail_in: the phase that raises ``error``.  ``"background"`` starts a
            background task (``ctx.start_soon``) at the end of ``initialize``
            that raises after its ``"background"`` delay.
        hang_in: the phase that waits until it is cancelled, as a hung
            driver does until its timeout.  ``"background"`` starts a
            background task that never returns.
        skip_in: ``"initialize"`` or ``"autostart"``: raise :class:`tiered.Skip`.
        error: what ``fail_in`` raises: an exception class (made with a
            message naming the driver and phase) or an instance (raised as is,
            every time).  Default: :class:`InjectedFault`.
        value: anything, for dependents to read as ``ctx.get(name).value``.
        recorder: a :class:`~tiered.testing.Recorder` that logs every phase.
        crash_after: seconds from the end of ``initialize`` after which the
            life's background task raises ``error`` (phase ``"background"``);
            ``None``: no crash.  A crash before the driver is up (a long
            ``autostart``, a slow tier) fails its start instead, which is
            never retried.
        crash_times: how many lives crash, from the ``crash_from``-th on:
            ``None`` (the default) every one, a crash loop; ``1`` one crash,
            after which the restarted driver runs well.
        crash_from: the first life that crashes: 1 is the first start, 2 the
            first restart.

    Attributes:
        calls: how many times each phase began, by phase name.

    Raises:
        ConfigError: an unknown phase, two faults in one phase, a negative
            delay, ``crash_times`` or ``crash_from`` without ``crash_after``
            or below 1, or an invalid declaration (as for any driver).

    Example::

        runtime.add(FaultyDriver("storage", tier=1, fail_in="autostart"))
        runtime.add(FaultyDriver("qemu", tier=2, hang_in="initialize"))
        runtime.add(FaultyDriver("slow", tier=0, delay=5.0))  # initialize takes 5 s
        runtime.add(FaultyDriver("slow-stop", tier=0, delay={"stop": 30.0}))
        # crashes 5 s after each start, twice; the second restart holds
        runtime.add(FaultyDriver("ceph", tier=1, restart="on-failure",
                                 crash_after=5.0, crash_times=2))
    """

    def __init__(
        self,
        name: str,
        *,
        tier: int | None = None,
        requires: Sequence[Requirement] = (),
        after: Sequence[Requirement] = (),
        optional: bool = False,
        restart: Restart | str | None = None,
        start_timeout: float | None = None,
        stop_timeout: float | None = None,
        delay: float | Mapping[Phase, float] = 0.0,
        fail_in: Phase | None = None,
        hang_in: Phase | None = None,
        skip_in: SkipPhase | None = None,
        error: BaseException | type[BaseException] | None = None,
        value: object = None,
        recorder: Recorder | None = None,
        crash_after: float | None = None,
        crash_times: int | None = None,
        crash_from: int = 1,
    ) -> None:
        super().__init__()
        self.name = name
        self.tier = tier
        self.requires = requires  # checked by runtime.add(), as for any driver
        self.after = after
        self.optional = optional
        self.restart = restart  # checked by runtime.add() too
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.delays = _delays(name, delay)
        self.fail_in = _phase(name, "fail_in", fail_in, PHASES)
        self.hang_in = _phase(name, "hang_in", hang_in, PHASES)
        self.skip_in = _phase(name, "skip_in", skip_in, get_args(SkipPhase))
        faults = [
            p for p in (self.fail_in, self.hang_in, self.skip_in) if p is not None
        ]
        if len(set(faults)) != len(faults):
            msg = (
                f"FaultyDriver({name!r}) has two faults in {faults[-1]!r}; a phase "
                "can fail, hang or skip, not two of them"
            )
            raise ConfigError(msg)
        self.crash_after, self.crash_times, self.crash_from = _crash(
            name, crash_after, crash_times, crash_from
        )
        if self.crash_after is not None and (
            "background" in (self.fail_in, self.hang_in) or "background" in self.delays
        ):
            msg = (
                f"FaultyDriver({name!r}) has crash_after= and a background fault "
                "or delay; crash_after makes the background task and says when "
                "it fails: drop fail_in/hang_in='background' and its delay"
            )
            raise ConfigError(msg)
        self.error = _error_factory(name, error)
        self.value = value
        self.recorder = recorder
        self.calls: Counter[str] = Counter()

    @property
    def lives(self) -> int:
        """How many times it began to initialize: its first start plus its restarts."""
        return self.calls["initialize"]

    def crashes_in(self, life: int) -> bool:
        """Whether its ``life``-th life (1 is the first start) crashes."""
        if self.crash_after is None or life < self.crash_from:
            return False
        return self.crash_times is None or life < self.crash_from + self.crash_times

    def __repr__(self) -> str:
        faults = [
            f"{what}={phase!r}"
            for what, phase in (
                ("fail_in", self.fail_in),
                ("hang_in", self.hang_in),
                ("skip_in", self.skip_in),
            )
            if phase is not None
        ]
        if self.delays:
            faults.append(f"delay={self.delays!r}")
        if self.crash_after is not None:
            faults.append(f"crash_after={self.crash_after!r}")
            if self.crash_times is not None:
                faults.append(f"crash_times={self.crash_times!r}")
            if self.crash_from != 1:
                faults.append(f"crash_from={self.crash_from!r}")
        return (
            " ".join([f"<FaultyDriver {self.name!r} tier={self.tier!r}", *faults]) + ">"
        )

    async def initialize(self, ctx: Context) -> None:
        """Sleep, then fail, hang or skip if told to; start the faulty background task."""
        life = self.calls["initialize"] + 1
        await self._act(ctx, "initialize")
        if "background" in (self.fail_in, self.hang_in):
            ctx.start_soon(self._act, ctx, "background", name=f"{self.name} background")
        if self.crash_after is not None:
            ctx.start_soon(self._crash, ctx, life, name=f"{self.name} life {life}")

    async def autostart(self, ctx: Context) -> None:
        """Sleep, then fail, hang or skip if told to."""
        await self._act(ctx, "autostart")

    async def reload(self, ctx: Context) -> None:
        """Sleep, then fail or hang if told to."""
        await self._act(ctx, "reload")

    async def stop(self, ctx: Context) -> None:
        """Sleep, then fail or hang if told to."""
        await self._act(ctx, "stop")

    async def _act(self, ctx: Context, phase: Phase) -> None:
        self.calls[phase] += 1
        with self._recording(ctx, phase):
            seconds = self.delays.get(phase, 0.0)
            if seconds > 0:
                await anyio.sleep(seconds)
            else:
                # A real hook awaits something; so does this one, so that the
                # drivers of a tier really interleave.
                await anyio.lowlevel.checkpoint()
            if phase == self.hang_in:
                await anyio.sleep_forever()
            if phase == self.skip_in:
                msg = f"driver {self.name!r} skips itself in {phase} (tiered.testing)"
                raise Skip(msg)
            if phase == self.fail_in:
                raise self._error(phase)

    async def _crash(self, ctx: Context, life: int) -> None:
        """The background task of one life: crash after ``crash_after``, or run on."""
        self.calls["background"] += 1
        with self._recording(ctx, "background"):
            if not self.crashes_in(life):
                await anyio.sleep_forever()
            assert self.crash_after is not None
            await anyio.sleep(self.crash_after)
            error = self._error("background", f"crashes in life {life}")
            raise error

    def _recording(self, ctx: Context, phase: Phase) -> AbstractContextManager[None]:
        if self.recorder is None:
            return nullcontext()
        return self.recorder.phase(ctx, phase)

    def _error(self, phase: str, what: str | None = None) -> BaseException:
        what = what or f"fails in {phase}"
        msg = f"driver {self.name!r} {what} (fault injected by tiered.testing)"
        if self.error is None:
            return InjectedFault(msg)
        if isinstance(self.error, BaseException):
            return self.error
        return self.error(msg)


def _phase(name: str, what: str, phase: object, allowed: Sequence[str]) -> Phase | None:
    if phase is None:
        return None
    if phase not in allowed:
        choices = ", ".join(repr(p) for p in allowed)
        msg = (
            f"FaultyDriver({name!r}) has {what}={phase!r}; use one of {choices} or None"
        )
        raise ConfigError(msg)
    return phase  # type: ignore[return-value]  # checked against the Literal's values


def _delays(name: str, delay: object) -> dict[Phase, float]:
    # A bare number is how long the driver takes to start, its initialize:
    # applied to every phase, delay=60 would make start-up take 120 s and
    # trip the 90 s timeout (initialize plus autostart), a trap for a test.
    items = (
        list(delay.items()) if isinstance(delay, Mapping) else [("initialize", delay)]
    )
    out: dict[Phase, float] = {}
    for phase, seconds in items:
        checked = _phase(name, "delay", phase, PHASES)
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or math.isnan(seconds)
            or seconds < 0
        ):
            msg = (
                f"FaultyDriver({name!r}) has a delay of {seconds!r} for {phase!r}; "
                "a delay is a number of seconds >= 0"
            )
            raise ConfigError(msg)
        if seconds > 0 and checked is not None:
            out[checked] = float(seconds)
    return out


def _crash(
    name: str, after: object, times: object, start: object
) -> tuple[float | None, int | None, int]:
    """``crash_after``, ``crash_times`` and ``crash_from``, checked."""
    if after is None:
        if times is not None or start != 1:
            msg = (
                f"FaultyDriver({name!r}) has crash_times or crash_from but no "
                "crash_after; crash_after=SECONDS says when each crash comes"
            )
            raise ConfigError(msg)
        return None, None, 1
    if (
        isinstance(after, bool)
        or not isinstance(after, int | float)
        or not math.isfinite(after)
        or after < 0
    ):
        msg = (
            f"FaultyDriver({name!r}) has crash_after={after!r}; it is a finite "
            "number of seconds >= 0 after initialize"
        )
        raise ConfigError(msg)
    for what, value in (("crash_times", times), ("crash_from", start)):
        if value is None and what == "crash_times":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            msg = (
                f"FaultyDriver({name!r}) has {what}={value!r}; it is an integer "
                ">= 1"
                + (", or None to crash in every life" if what == "crash_times" else "")
            )
            raise ConfigError(msg)
    return float(after), times, start  # type: ignore[return-value]  # checked


def _error_factory(
    name: str, error: object
) -> BaseException | type[BaseException] | None:
    if (
        error is None
        or isinstance(error, BaseException)
        or (isinstance(error, type) and issubclass(error, BaseException))
    ):
        return error
    msg = (
        f"FaultyDriver({name!r}) has error={error!r}; pass an exception "
        "class, like error=OSError, or an instance, like error=OSError('disk')"
    )
    raise ConfigError(msg)
