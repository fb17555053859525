"""``Slot``: everything a run keeps about one driver, for one life at a time.

A slot's status is derived, never stored beside flags that must agree: one
lifecycle ``state`` (pending, starting, initialized, up, stopping, down) and
one ``outcome`` (None, failed, skipped, cancelled), plus ``restarting`` while
a restart holds it.  :meth:`arm` readies it for a new life, which is what a
restart does; what spans lives (the restart count, the backoff, the last
status text) is kept.

Cost matters: a daemon may have thousands of drivers, and every object a
resting driver keeps alive is walked by each full garbage collection.  Hence
``__slots__``, plain floats for phase times, and nothing made until needed
(docs/benchmarks.md).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Final, Literal

from ._context import Context

if TYPE_CHECKING:
    import asyncio
    from collections.abc import AsyncIterator

    from ._backend import Batch, Scope
    from ._background import Tasks
    from ._core import Core
    from ._exceptions import Failure
    from ._plan import PlannedDriver
    from ._report import Status
    from ._restart import Backoff

    # a Literal costs a daemon's start-up: for type checkers only
    Outcome = Literal["failed", "skipped", "cancelled"]


__all__ = ["Slot"]


# lifecycle states, in the order a life goes through them
PENDING: Final = 0  # not begun (in this life)
STARTING: Final = 1  # in initialize
INITIALIZED: Final = 2  # initialize done: at the barrier or in autostart
UP: Final = 3  # started; resting until told to stop
STOPPING: Final = 4  # its background tasks end, then its stop runs
DOWN: Final = 5  # its life is over

_BY_STATE: Final[tuple[Status, ...]] = (
    "pending",
    "starting",
    "starting",
    "running",
    "running",
    "stopped",
)


class Slot:
    """One driver of one run."""

    __slots__ = (
        "arrived",
        "auto_at",
        "auto_end",
        "aux",
        "backoff",
        "batch",
        "bg",
        "budget",
        "core",
        "ctx",
        "d",
        "deadline",
        "eligible_at",
        "error",
        "failed_in",
        "gen",
        "init_at",
        "init_end",
        "initialized",
        "job",
        "life",
        "name",
        "outcome",
        "parked",
        "phase",
        "reason",
        "reload_at",
        "reload_end",
        "restarting",
        "restarts",
        "scope",
        "settled",
        "state",
        "status_text",
        "stop_at",
        "stop_end",
        "stop_now",
        "stop_requested",
        "stopper",
        "task",
        "tier",
        "timed_out",
        "token",
        "value",
    )

    def __init__(self, core: Core, d: PlannedDriver) -> None:
        self.core = core
        self.d = d
        self.name = d.name
        self.tier = d.tier
        self.ctx = Context(self)
        self.restarting = False
        self.restarts = 0
        self.backoff: Backoff | None = None
        self.status_text: str | None = None
        self.eligible_at: float | None = None
        # the phase times of the latest life, and a reload's, in seconds
        # since the run began: plain floats, not a dict of lists
        self.reload_at: float | None = None
        self.reload_end: float | None = None
        self.arm()

    def arm(self) -> None:
        """Ready the slot for a life: the first one, or a restart."""
        self.state = PENDING
        self.outcome: Outcome | None = None
        self.error: BaseException | None = None
        #: the phase of its own failure in this life (the Failure's), or None
        self.failed_in: str | None = None
        self.reason: str | None = None
        self.value: Any = None
        self.gen: AsyncIterator[Any] | None = None
        self.initialized = False
        #: the hook under way: initialize, autostart, ending (its background
        #: tasks end), stop, reload; None between hooks
        self.phase: str | None = None
        self.init_at: float | None = None
        self.init_end: float | None = None
        self.auto_at: float | None = None
        self.auto_end: float | None = None
        self.stop_at: float | None = None
        self.stop_end: float | None = None
        # what the run cancels to end a starting driver: its own scope, or
        # (trio, a tier's required drivers) the scope of its batch
        self.scope: Scope | None = None
        self.batch: Batch | None = None
        # spans the whole life; shielded from initialize's end to stop
        self.life: Scope | None = None
        # the scope of a wait for background tasks, or of a reload
        self.aux: Scope | None = None
        # the deadline of the phase under way (_deadlines), and its entry
        self.deadline = math.inf
        self.token = 0
        self.budget = 0.0  # what initialize left of start_timeout
        self.timed_out = False
        self.arrived = False  # its start job counted its initialize
        self.settled = False  # its start is over (up, or it cannot be)
        self.stop_now = False  # it must stop without waiting for its turn
        self.stop_requested = False
        self.parked: Any = None  # its parking ticket (_backend)
        self.job: Any = None  # the start it belongs to (_schedule.Start)
        self.stopper: Any = None  # the stop that waits for it (_schedule)
        self.bg: Tasks | None = None  # its background tasks (_background)
        self.task: asyncio.Task[None] | None = None  # asyncio: its lifetime

    # -- what it is --------------------------------------------------------------

    @property
    def status(self) -> Status:
        """The status the report, ``run.get`` and the status file show."""
        if self.restarting:
            return "restarting"
        outcome = self.outcome
        if outcome is not None:
            if outcome == "cancelled" and self.state == DOWN and self.initialized:
                return "stopped"
            return outcome
        return _BY_STATE[self.state]

    @property
    def needs_stop(self) -> bool:
        """Initialized in this life and not yet told to stop."""
        return self.state in (INITIALIZED, UP) and not self.stop_requested

    @property
    def up(self) -> bool:
        """Started and serving: what ``requires`` waits for."""
        return self.state == UP and self.outcome is None and not self.restarting

    def record_failure(self, failure: Failure) -> None:
        """Failed: with its own error and phase, or why another's failure is its.

        A restart whose start fails because a dependent failed counts
        against the restarted driver (tiered gives up on it), but the error
        and the phase stay the dependent's (tests/test_supervision.py).
        """
        self.outcome = "failed"
        if failure.driver == self.name:
            self.error = failure.error
            self.failed_in = failure.phase
        else:
            self.reason = f"its restart failed: {failure.describe()}"

    def label(self) -> str:
        """``storage (tier 1)``, as every message names a driver."""
        return f"{self.name} (tier {self.tier})"

    def describe_outcome(self) -> str:
        """Why it is failed, skipped or cancelled, for messages."""
        from ._exceptions import describe

        if self.reason:
            return self.reason
        if self.error is not None:
            return describe(self.error)
        return self.status

    # -- deadlines (_deadlines.Timed) -----------------------------------------------

    def expire(self, now: float) -> None:
        """The deadline of the phase under way has come."""
        phase = self.phase
        if phase in ("initialize", "autostart"):
            # reported at once, so start-up fails even if the driver finishes
            # its hook in the same instant (such a driver is still stopped)
            self.timed_out = True
            self.core.policy.timed_out(self, phase)
        elif phase == "stop":
            if self.life is not None:
                self.life.cancel()
        elif phase in ("ending", "reload") and self.aux is not None:
            self.aux.cancel()

    def __repr__(self) -> str:
        return f"<slot {self.name!r} {self.status}>"
