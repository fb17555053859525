"""``FaultyDriver``: a stand-in driver that is slow, fails, hangs or skips on cue."""

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
    """A driver that does nothing but what a test tells it: be slow, fail, hang, skip.

    Every hook first sleeps its delay (if any), then, in the phase named by
    ``hang_in``, ``skip_in`` or ``fail_in``, hangs until cancelled, raises
    :class:`tiered.Skip`, or raises ``error``.  Without faults it is a
    well-behaved driver, handy to fill a tier.  Its value (what ``ctx.get``
    and ``run.get`` return) is the instance itself; put what dependents
    should see in ``value``.

    Args:
        name: the driver's name.
        tier: its tier; ``None`` infers it from ``requires``.
        requires: drivers it requires, as for any :class:`tiered.Driver`.
        optional: its failure is logged and the run goes on.
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

    Attributes:
        calls: how many times each phase began, by phase name.

    Raises:
        ConfigError: an unknown phase, two faults in one phase, a negative
            delay, or an invalid declaration (as for any driver).

    Example::

        runtime.add(FaultyDriver("storage", tier=1, fail_in="autostart"))
        runtime.add(FaultyDriver("qemu", tier=2, hang_in="initialize"))
        runtime.add(FaultyDriver("slow", tier=0, delay=5.0))  # initialize takes 5 s
        runtime.add(FaultyDriver("slow-stop", tier=0, delay={"stop": 30.0}))
    """

    def __init__(
        self,
        name: str,
        *,
        tier: int | None = None,
        requires: Sequence[Requirement] = (),
        optional: bool = False,
        start_timeout: float | None = None,
        stop_timeout: float | None = None,
        delay: float | Mapping[Phase, float] = 0.0,
        fail_in: Phase | None = None,
        hang_in: Phase | None = None,
        skip_in: SkipPhase | None = None,
        error: BaseException | type[BaseException] | None = None,
        value: object = None,
        recorder: Recorder | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        self.tier = tier
        self.requires = requires  # checked by runtime.add(), as for any driver
        self.optional = optional
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
        self.error = _error_factory(name, error)
        self.value = value
        self.recorder = recorder
        self.calls: Counter[str] = Counter()

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
        return (
            " ".join([f"<FaultyDriver {self.name!r} tier={self.tier!r}", *faults]) + ">"
        )

    async def initialize(self, ctx: Context) -> None:
        """Sleep, then fail, hang or skip if told to; start the faulty background task."""
        await self._act(ctx, "initialize")
        if "background" in (self.fail_in, self.hang_in):
            ctx.start_soon(self._act, ctx, "background", name=f"{self.name} background")

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

    def _recording(self, ctx: Context, phase: Phase) -> AbstractContextManager[None]:
        if self.recorder is None:
            return nullcontext()
        return self.recorder.phase(ctx, phase)

    def _error(self, phase: str) -> BaseException:
        msg = (
            f"driver {self.name!r} fails in {phase} (fault injected by tiered.testing)"
        )
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
