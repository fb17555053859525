"""What a run tells the world: log records, events for listeners, incidents.

Logging follows what a person reading a daemon's log wants: one INFO line
when a driver is up and one when it stopped (systemd logs "Started X"
once), warnings and errors for what went wrong, the rest at DEBUG.  Every
record carries ``tiered_driver``, ``tiered_tier`` and ``tiered_status``
(and ``tiered_duration`` where there is one) as structured ``extra`` keys.

:class:`RunEvent` is what ``run.listen()`` callbacks receive: ``serve()``
turns them into systemd notifications and the status file, and
:mod:`tiered.otel` into spans.  Events are made only when someone listens.
Failures, restarts and give-ups after start-up are also kept as incidents,
which the report shows: the latest :data:`KEPT_INCIDENTS` of them, so that a
daemon whose driver fails and is restarted for weeks keeps a bounded record
(the report counts the ones it no longer has: tests/test_report_modes.py).
"""

from __future__ import annotations

import logging
from collections import deque
from typing import TYPE_CHECKING, Final, Literal

from ._exceptions import ConfigError, public
from ._record import Record, init

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._core import Core
    from ._slot import Slot

    # a Literal costs a daemon's start-up: for type checkers only
    EventKind = Literal[
        "state", "driver", "tier", "status", "extend", "failure", "restart", "gave-up"
    ]


__all__ = ["KEPT_INCIDENTS", "Journal", "RunEvent"]

log = logging.getLogger("tiered")

#: how many incidents (failures, restarts, give-ups) a run keeps, the latest
KEPT_INCIDENTS: Final = 1000


@public
class RunEvent(Record):
    """One thing that happened in a run, as ``run.listen()`` callbacks get it.

    Attributes:
        kind: ``"state"`` (``run.state`` changed; ``value`` is the new
            state), ``"driver"`` (a driver's status changed; ``value`` is
            the new status, ``detail`` why), ``"tier"`` (tier ``tier`` is up),
            ``"status"`` (``ctx.status()``; ``value`` is the text),
            ``"extend"`` (``ctx.extend_timeout()``; ``value`` is the
            seconds), ``"failure"`` (a driver failed after start-up),
            ``"restart"`` (a restart is scheduled; ``value`` is the delay in
            seconds) or ``"gave-up"`` (too many restarts: the run stops).
        time: seconds since the run began.
        driver: the driver concerned, if any.
        tier: its tier, or the tier that came up.
        value: what changed to (see ``kind``).
        detail: a human-readable line, for failures and restarts.
    """

    __slots__ = ("detail", "driver", "kind", "tier", "time", "value")
    __match_args__ = ("kind", "time", "driver", "tier", "value", "detail")
    kind: EventKind
    time: float
    driver: str | None
    tier: int | None
    value: str | float | None
    detail: str | None

    def __init__(
        self,
        kind: EventKind,
        time: float,
        driver: str | None = None,
        tier: int | None = None,
        value: str | float | None = None,
        detail: str | None = None,
    ) -> None:
        init(self, "kind", kind)
        init(self, "time", time)
        init(self, "driver", driver)
        init(self, "tier", tier)
        init(self, "value", value)
        init(self, "detail", detail)


class Journal:
    """Logs, dispatches events, keeps incidents; never breaks the run."""

    __slots__ = ("_core", "debug", "dropped", "incidents", "info", "listeners")

    def __init__(self, core: Core) -> None:
        self._core = core
        self.listeners: list[Callable[[RunEvent], object]] = []
        self.incidents: deque[RunEvent] = deque(maxlen=KEPT_INCIDENTS)
        #: incidents no longer kept: the oldest, once there were more
        self.dropped = 0
        self.refresh()

    def refresh(self) -> None:
        """Read the ``tiered`` logger's level (at the start of a run): the hot
        paths then skip what would not be logged without asking each time."""
        self.info = log.isEnabledFor(logging.INFO)
        self.debug = log.isEnabledFor(logging.DEBUG)

    # -- events ----------------------------------------------------------------

    def emit(
        self,
        kind: EventKind,
        slot: Slot | None = None,
        value: str | float | None = None,
        detail: str | None = None,
        *,
        tier: int | None = None,
        keep: bool = False,
    ) -> None:
        if not (self.listeners or keep):
            return
        core = self._core
        event = RunEvent(
            kind,
            core.clock() - core.t0,
            None if slot is None else slot.name,
            tier if slot is None else slot.tier,
            value,
            detail,
        )
        if keep:
            if len(self.incidents) == KEPT_INCIDENTS:
                self.dropped += 1  # the deque lets the oldest go
            self.incidents.append(event)
        for listener in tuple(self.listeners):
            try:
                listener(event)
            except Exception:  # a listener never breaks the run
                log.exception("tiered: a run listener failed on %s", kind)

    def changed(self, slot: Slot, detail: str | None = None) -> None:
        """The driver's status changed (what the status file and probes follow)."""
        if self.listeners:
            self.emit("driver", slot, slot.status, detail)

    # -- the transitions a person wants to read ------------------------------------

    def transition(
        self,
        slot: Slot,
        what: str,
        duration: float | None,
        level: int = logging.INFO,
    ) -> None:
        """One log record: ``storage (tier 1) <what> (0.123s)``."""
        if not log.isEnabledFor(level):
            return
        extra = {
            "tiered_driver": slot.name,
            "tiered_tier": slot.tier,
            "tiered_status": slot.status,
        }
        if duration is None:
            log.log(level, "%s (tier %d) %s", slot.name, slot.tier, what, extra=extra)
        else:
            extra["tiered_duration"] = duration
            log.log(
                level,
                "%s (tier %d) %s (%.3fs)",
                slot.name,
                slot.tier,
                what,
                duration,
                extra=extra,
            )

    def up(self, slot: Slot, took: float | None) -> None:
        """The driver is up (once per start): INFO, and an event."""
        if self.info:
            self.transition(slot, "restarted" if slot.restarts else "is up", took)
        if self.listeners:
            self.emit("driver", slot, slot.status)

    def stopped(self, slot: Slot, took: float | None) -> None:
        """The driver stopped well (its event comes as its life ends)."""
        if self.info:
            self.transition(slot, "stopped", took)

    def status(self, slot: Slot, text: object) -> None:
        """``ctx.status(text)``: kept, logged, and sent on (to systemd)."""
        if not isinstance(text, str):
            msg = f"{slot.name}: ctx.status() takes a str, got {text!r}"
            raise ConfigError(msg)
        slot.status_text = text
        log.info(
            "%s (tier %d): %s",
            slot.name,
            slot.tier,
            text,
            extra={
                "tiered_driver": slot.name,
                "tiered_tier": slot.tier,
                "tiered_status": text,
            },
        )
        self.emit("status", slot, text)

    def tier_up(self, index: int, took: float, count: int) -> None:
        if log.isEnabledFor(logging.INFO):
            log.info(
                "tier %d is up in %.3fs (%d driver(s))",
                index,
                took,
                count,
                extra={"tiered_tier": index},
            )
        self.emit("tier", tier=index)

    def state(self, state: str) -> None:
        self.emit("state", value=state)
