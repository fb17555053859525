"""``Recorder``: an ordered log of what driver hooks did, with assertions."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, NoReturn, Protocol, TypeAlias

import anyio

from .._exceptions import Skip
from . import _reading

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

__all__ = ["Event", "Kind", "Phase", "Recorder"]

#: A phase of a driver, as :class:`Event` records it: the four hooks, and
#: ``"background"`` for a background task (``ctx.start_soon``).
Phase: TypeAlias = Literal["initialize", "autostart", "reload", "stop", "background"]

#: What happened: a phase began, or ended in one of four ways.
Kind: TypeAlias = Literal["begin", "end", "fail", "skip", "cancel"]

PHASES: tuple[Phase, ...] = ("initialize", "autostart", "reload", "stop", "background")


class _Named(Protocol):
    """What a recording needs to know about a driver: ``tiered.Context`` has it."""

    @property
    def name(self) -> str: ...
    @property
    def tier(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of a :class:`Recorder`: a phase of a driver began or ended.

    Attributes:
        driver: the driver's name.
        tier: the driver's tier.
        phase: ``"initialize"``, ``"autostart"``, ``"reload"``, ``"stop"`` or
            ``"background"``.
        kind: ``"begin"``, or how the phase ended: ``"end"`` (returned),
            ``"fail"`` (raised), ``"skip"`` (raised :class:`tiered.Skip`) or
            ``"cancel"`` (was cancelled: a timeout, a failed sibling, a stop).
        at: ``anyio.current_time()`` when it was recorded (virtual under a
            trio ``MockClock``).
        detail: for ``"fail"`` and ``"skip"``, the exception as
            ``"Type: message"``.

    Example::

        >>> event = Event("storage", 1, "autostart", "fail", 2.0, "OSError: no pool")
        >>> str(event)
        'storage.autostart fail (OSError: no pool)'
    """

    driver: str
    tier: int
    phase: Phase
    kind: Kind
    at: float
    detail: str = ""

    def __str__(self) -> str:
        text = f"{self.driver}.{self.phase} {self.kind}"
        return f"{text} ({self.detail})" if self.detail else text


class Recorder:
    """An ordered log of driver phases, with assertions that read like the contract.

    A restarted driver has several *lives* in one log, each beginning with
    an ``initialize`` begin; the assertions about restarts read them.

    Drivers write to it (:class:`~tiered.testing.FaultyDriver` does when given
    ``recorder=``; a hand-written driver wraps a hook in :meth:`phase`).
    Recording never awaits, so the order of :attr:`events` is the order in
    which things happened, even when virtual time does not move.

    Each ``assert_*`` method raises :class:`AssertionError` with a message that
    says what was expected and shows the whole log; pytest hides the methods'
    own frames from the traceback.

    Example::

        recorder = Recorder()
        runtime = tiered.Runtime("t")
        runtime.add(FaultyDriver("secrets", tier=0, recorder=recorder))
        runtime.add(FaultyDriver("storage", tier=1, recorder=recorder))
        async with runtime.run():
            recorder.assert_started_before("secrets", "storage")
        recorder.assert_stopped_in_reverse()
        recorder.assert_stopped_exactly_once()

    Attributes:
        events: every :class:`Event`, in the order recorded.
    """

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __repr__(self) -> str:
        return f"<tiered.testing.Recorder with {len(self.events)} event(s)>"

    # -- recording -------------------------------------------------------------

    def record(self, ctx: _Named, phase: Phase, kind: Kind, detail: str = "") -> Event:
        """Append one event now and return it.

        Args:
            ctx: the hook's :class:`tiered.Context` (anything with ``name``
                and ``tier``).
            phase: the phase it is about.
            kind: ``"begin"``, ``"end"``, ``"fail"``, ``"skip"`` or ``"cancel"``.
            detail: free text, shown in the log.

        Example::

            async def initialize(self, ctx: tiered.Context) -> None:
                recorder.record(ctx, "initialize", "begin")
        """
        event = Event(ctx.name, ctx.tier, phase, kind, anyio.current_time(), detail)
        self.events.append(event)
        return event

    @contextmanager
    def phase(self, ctx: _Named, phase: Phase) -> Iterator[None]:
        """Record ``phase`` of a driver around a block: its begin, then how it ended.

        The block ending normally records ``"end"``; raising :class:`tiered.Skip`
        records ``"skip"``, being cancelled records ``"cancel"`` and any other
        exception ``"fail"``.  The exception propagates unchanged.

        Example::

            class Storage(tiered.Driver):
                async def initialize(self, ctx: tiered.Context) -> None:
                    with recorder.phase(ctx, "initialize"):
                        await mount_pools()
        """
        self.record(ctx, phase, "begin")
        try:
            yield
        except Skip as exc:
            self.record(ctx, phase, "skip", _describe(exc))
            raise
        except BaseException as exc:
            if isinstance(exc, anyio.get_cancelled_exc_class()):
                self.record(ctx, phase, "cancel")
            else:
                self.record(ctx, phase, "fail", _describe(exc))
            raise
        else:
            self.record(ctx, phase, "end")

    def clear(self) -> None:
        """Forget every event, to record a second run on a clean log."""
        self.events.clear()

    # -- reading ---------------------------------------------------------------

    def of(self, driver: str) -> list[Event]:
        """The events of one driver, in order.

        Example::

            >>> Recorder().of("storage")
            []
        """
        return [e for e in self.events if e.driver == driver]

    def count(self, driver: str, phase: Phase, kind: Kind = "begin") -> int:
        """How many times ``phase`` of ``driver`` began (or ended as ``kind``).

        Example::

            assert recorder.count("storage", "stop") == 1
        """
        return sum(
            1
            for e in self.events
            if e.driver == driver and e.phase == phase and e.kind == kind
        )

    def started(self) -> list[str]:
        """The drivers that came up, in the order they came up.

        A driver is up once its ``initialize`` ended, and its ``autostart``
        too if one began.

        Example::

            assert recorder.started()[-1] == "qemu"
        """
        up = {d: i for d in self._drivers() if (i := self._up_index(d)) is not None}
        return sorted(up, key=up.__getitem__)

    def stopped(self) -> list[str]:
        """The drivers whose ``stop`` began, in the order they began to stop.

        Example::

            assert recorder.stopped()[0] == "qemu"
        """
        begun = {
            d: i
            for d in self._drivers()
            if (i := self._first(d, "stop", "begin")) is not None
        }
        return sorted(begun, key=begun.__getitem__)

    def lives(self, driver: str) -> int:
        """How many lives ``driver`` began (its ``initialize`` begins): 1 + its restarts.

        Example::

            assert recorder.lives("storage") == 3  # restarted twice
        """
        return self.count(driver, "initialize")

    def format(self) -> str:
        """The log as text, one numbered event a line; failure messages show it.

        Times are seconds since the first event.

        Example::

            print(recorder.format())
        """
        if not self.events:
            return "recorded events: none"
        t0 = self.events[0].at
        width = max(len(f"{e.driver}.{e.phase}") for e in self.events)
        lines = [f"recorded events ({len(self.events)}):"]
        for i, e in enumerate(self.events):
            what = f"{e.driver}.{e.phase}".ljust(width)
            line = f"  #{i:<4}{e.at - t0:8.3f}s  tier {e.tier}  {what}  {e.kind}"
            lines.append(f"{line}  ({e.detail})" if e.detail else line)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()

    # -- assertions ------------------------------------------------------------

    def assert_started(self, *drivers: str) -> None:
        """Assert that each driver came up (``initialize``, and ``autostart``, ended).

        Example::

            recorder.assert_started("secrets", "storage")
        """
        __tracebackhide__ = True
        self._need(drivers, "assert_started")
        for d in drivers:
            if self._up_index(d) is None:
                self._fail(f"expected {d!r} to come up, but {self._story(d)}")

    def assert_started_before(self, first: str, second: str) -> None:
        """Assert that ``first`` was up before ``second`` began to initialize.

        Drivers of one tier start concurrently, so this holds across tiers,
        never within one.

        Example::

            recorder.assert_started_before("storage", "qemu")
        """
        __tracebackhide__ = True
        up = self._up_index(first)
        if up is None:
            self._fail(
                f"expected {first!r} to be up before {second!r} began to "
                f"initialize, but {self._story(first)}"
            )
        begin = self._first(second, "initialize", "begin")
        if begin is None:
            self._fail(
                f"expected {first!r} to be up before {second!r} began to "
                f"initialize, but {second!r} never began to initialize"
            )
        if begin < up:
            self._fail(
                f"expected {first!r} to be up before {second!r} began to "
                f"initialize, but {second!r} began to initialize at #{begin}, "
                f"before {first!r} was up at #{up}"
            )

    def assert_not_started(self, *drivers: str) -> None:
        """Assert that none of the drivers began to initialize.

        Example::

            recorder.assert_not_started("qemu")  # its tier never began
        """
        __tracebackhide__ = True
        self._need(drivers, "assert_not_started")
        for d in drivers:
            begin = self._first(d, "initialize", "begin")
            if begin is not None:
                self._fail(
                    f"expected {d!r} not to start, but it began to initialize at #{begin}"
                )

    def assert_stopped_in_reverse(self, *drivers: str) -> None:
        """Assert that tiers stopped in reverse: each tier finished stopping first.

        For every two drivers that stopped (of ``drivers``, or all of them)
        in tiers ``i < j``, the ``stop`` of the tier-``j`` driver ended before
        the ``stop`` of the tier-``i`` driver began.  Drivers of one tier stop
        concurrently, in any order.  Fails when no driver stopped at all.

        Example::

            recorder.assert_stopped_in_reverse()
        """
        __tracebackhide__ = True
        names = drivers or tuple(self.stopped())
        if not names:
            self._fail(
                "expected drivers to stop in reverse tier order, but none stopped"
            )
        self._check(_reading.reverse_order(self.events, names))

    def assert_stopped_exactly_once(self, *drivers: str) -> None:
        """Assert that each driver's ``stop`` began exactly once.

        Without arguments: every driver whose ``initialize`` ended, which is
        what tiered promises to stop exactly once, also when start-up rolls
        back.  Fails when there is no such driver.

        Example::

            recorder.assert_stopped_exactly_once()
            recorder.assert_stopped_exactly_once("secrets")
        """
        __tracebackhide__ = True
        names = drivers or self._initialized()
        if not names:
            self._fail(
                "expected every initialized driver to stop exactly once, but no "
                "driver finished initialize"
            )
        for d in names:
            times = self.count(d, "stop")
            if times != 1:
                self._fail(
                    f"expected {d!r} to stop exactly once, but it stopped {times} times"
                )

    def assert_not_stopped(self, *drivers: str) -> None:
        """Assert that none of the drivers began to stop.

        Example::

            recorder.assert_not_stopped("storage")  # its initialize failed
        """
        __tracebackhide__ = True
        self._need(drivers, "assert_not_stopped")
        for d in drivers:
            begin = self._first(d, "stop", "begin")
            if begin is not None:
                self._fail(
                    f"expected {d!r} not to stop, but it began to stop at #{begin}"
                )

    # -- assertions about restarts ------------------------------------------------

    def assert_restarted(self, driver: str, times: int | None = None) -> None:
        """Assert that ``driver`` was restarted: exactly ``times`` times, or at least once.

        A restart is a life after the first (``initialize`` began again),
        failed or not, as ``DriverRecord.restarts`` counts them.

        Example::

            recorder.assert_restarted("storage", times=2)
        """
        __tracebackhide__ = True
        self._check(_reading.restarted(self.events, driver, times))

    def assert_stopped_once_per_life(self, *drivers: str) -> None:
        """Assert that each life of each driver that initialized was stopped exactly once.

        What tiered promises across restarts: a life whose ``initialize``
        ended is stopped once, before the next begins; any other is not.
        Without arguments: every driver that initialized.  Call it after the run.

        Example::

            recorder.assert_stopped_once_per_life()
        """
        __tracebackhide__ = True
        names = drivers or self._initialized()
        if not names:
            self._fail(
                "expected every life of every initialized driver to stop exactly "
                "once, but no driver finished initialize"
            )
        for d in names:
            self._check(_reading.stops_per_life(self.events, d))

    def assert_never_running_without(self, dependent: str, requirement: str) -> None:
        """Assert that ``dependent`` never ran while ``requirement`` was not up.

        Each life of ``dependent``, from its ``initialize`` begin to the end
        of its ``stop`` (or of the phase that ended it), must lie within one
        life of ``requirement`` while it was up: after its ``initialize``
        (and ``autostart``) ended, before its ``stop`` began.  What tiered
        promises across restarts: a dependent is stopped before what it
        requires, and started after it.

        Example::

            recorder.assert_never_running_without("qemu", "storage")
        """
        __tracebackhide__ = True
        self._check(_reading.running_without(self.events, dependent, requirement))

    # -- helpers ---------------------------------------------------------------

    def _drivers(self) -> list[str]:
        return list(dict.fromkeys(e.driver for e in self.events))

    def _first(self, driver: str, phase: str, kind: str) -> int | None:
        return _reading.first(self.events, driver, phase, kind)

    def _up_index(self, driver: str) -> int | None:
        return _reading.up_index(self.events, driver)

    def _story(self, driver: str) -> str:
        return _reading.story(self.events, driver)

    def _need(self, drivers: Iterable[str], method: str) -> None:
        if not tuple(drivers):
            msg = f"Recorder.{method}() needs at least one driver name"
            raise TypeError(msg)

    def _check(self, problem: str | None) -> None:
        __tracebackhide__ = True
        if problem is not None:
            self._fail(problem)

    def _initialized(self) -> tuple[str, ...]:
        """The drivers whose ``initialize`` ended at least once."""
        return tuple(
            d
            for d in self._drivers()
            if self._first(d, "initialize", "end") is not None
        )

    def _fail(self, message: str) -> NoReturn:
        __tracebackhide__ = True
        msg = f"{message}\n{self.format()}"
        raise AssertionError(msg)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
