"""What a failure means: abort a start, stop the run, contain it, or restart.

Lifetimes, background tasks and deadlines report what happened here and
nowhere else; the answer depends on when it happened and on the driver:

* during a start (the run's start-up, or the start of a restart), a
  required driver's failure aborts that start: the drivers still starting
  are cancelled and what started is rolled back.  An optional driver's
  failure is recorded and the start goes on without it; a skipped one too.
* after start-up (a background task raised), the driver's ``restart``
  policy decides: restart it with its dependents (``_supervisor``); or,
  without one, stop it and its dependents if all of them are optional
  (*containment*: the run goes on); otherwise stop the run, whose body is
  cancelled and whose exit raises :class:`~tiered.ShutdownError`.
* a stop that fails is recorded, and never keeps another driver from
  stopping.
* a ``BaseException`` that is not a cancellation (KeyboardInterrupt,
  SystemExit, a user's own) aborts the start or stops the run, and is raised
  as itself once every driver is stopped.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ._exceptions import DependencyError, Failure, Skip, UsageError, describe
from ._slot import PENDING, STARTING, STOPPING

if TYPE_CHECKING:
    from ._core import Core
    from ._slot import Slot

__all__ = ["Policy", "note"]

log = logging.getLogger("tiered")


def note(exc: BaseException, failure: Failure) -> None:
    """Add the PEP 678 note naming driver, tier and phase, if ``exc`` takes one.

    An exception that cannot (a frozen dataclass, whose ``add_note`` raises)
    still names its driver through the :class:`Failure` record.
    """
    try:
        exc.add_note(
            f"driver {failure.driver!r} (tier {failure.tier}), phase {failure.phase}"
        )
    except Exception:
        pass


class Policy:
    """Decides, for one run, what each failure means."""

    __slots__ = ("core",)

    def __init__(self, core: Core) -> None:
        self.core = core

    # -- during a start --------------------------------------------------------

    def start_failed(self, slot: Slot, phase: str, exc: Exception) -> None:
        """``initialize`` or ``autostart`` raised ``exc`` (Skip included)."""
        if isinstance(exc, Skip):
            slot.outcome = "skipped"
            slot.reason = exc.reason or "skipped itself"
            self.core.journal.transition(
                slot, f"skipped in {phase}: {slot.reason}", None
            )
            return
        self._fail(slot, phase, exc)

    def timed_out(self, slot: Slot, phase: str) -> None:
        """The start deadline came while ``phase`` ran (from the alarm)."""
        self._fail(slot, phase, self.core.timeout_error(slot, phase))
        if slot.scope is not None:
            slot.scope.cancel()  # its batch's scope is cancelled by the abort

    def overran(self, slot: Slot, phase: str, late: float) -> None:
        """A start hook returned after its deadline, the alarm never having rung.

        The event loop was blocked (the alarm could not ring while the hook
        ran): the same DriverTimeout on every backend, with the hint to use
        a thread, and a warning, rather than a silent success.
        """
        slot.timed_out = True
        error = self.core.timeout_error(slot, phase, late=late)
        log.warning(
            "%s blocked the event loop in %s for %.3gs past its deadline",
            slot.label(),
            phase,
            late,
            extra={"tiered_driver": slot.name, "tiered_tier": slot.tier},
        )
        self._fail(slot, phase, error)

    def _fail(self, slot: Slot, phase: str, exc: Exception) -> None:
        failure = _failed(slot, phase, exc)
        journal = self.core.journal
        journal.changed(slot, describe(exc))
        if slot.d.optional:
            journal.transition(
                slot,
                f"failed in {phase} (optional): {describe(exc)}",
                None,
                logging.WARNING,
            )
            if slot.job.running and phase == "background":
                self.contain(slot, failure, during_start=True)
            return
        journal.transition(
            slot, f"failed in {phase}: {describe(exc)}", None, logging.ERROR
        )
        slot.job.failed(failure)

    def stops_at_once(self, slot: Slot) -> bool:
        """A driver whose start failed after its initialize: stop it now, not at the end?

        A skipped driver, and an optional one that failed, will not run, so
        they stop at once; a required failure waits for the rollback, which
        stops it in order.
        """
        if not slot.initialized or slot.job.aborted:
            return False
        return slot.outcome == "skipped" or (
            slot.outcome == "failed" and slot.d.optional
        )

    def cancelled(self, slot: Slot) -> None:
        """The run cancelled the driver's start: a required driver failed."""
        if slot.outcome is None:
            slot.outcome = "cancelled"
            slot.reason = slot.job.cancel_reason
            self.core.journal.transition(
                slot, f"cancelled in {slot.phase or 'initialize'}", None
            )

    def cancelled_from_outside(self, slot: Slot) -> None:
        """The start was cancelled from outside the run (a cancel scope, a signal)."""
        reason = "cancelled from outside the run"
        if slot.outcome is None:
            slot.outcome = "cancelled"
            slot.reason = reason
            self.core.journal.transition(
                slot, f"cancelled in {slot.phase or 'initialize'}", None
            )
        slot.job.abort(reason=reason)

    def interrupted(self, slot: Slot, phase: str, exc: BaseException) -> None:
        """A hook raised a BaseException that is not a cancellation."""
        core = self.core
        _failed(slot, phase, exc)
        core.journal.transition(
            slot, f"interrupted in {phase}: {describe(exc)}", None, logging.ERROR
        )
        if core.interrupt is None:
            core.interrupt = exc
        if slot.job.running:
            slot.job.abort(cause=slot)
        else:
            core.stop_run(None)

    # -- stopping --------------------------------------------------------------------

    def stop_failed(self, slot: Slot, exc: Exception, phase: str = "stop") -> None:
        """``stop`` raised or timed out (or a background task raised while stopping)."""
        if isinstance(exc, Skip):
            wrapped = UsageError(
                f"{slot.label()} raised tiered.Skip({exc.reason!r}) in stop; Skip is "
                "for start-up (initialize and autostart): in stop, return instead"
            )
            wrapped.__cause__ = exc
            exc = wrapped
        failure = _failed(slot, phase, exc)
        core = self.core
        what = (
            "failed in stop"
            if phase == "stop"
            else "background task failed while stopping"
        )
        core.journal.transition(slot, f"{what}: {describe(exc)}", None, logging.ERROR)
        core.journal.changed(slot, describe(exc))
        if slot.restarting:  # the restart goes on: a record, not a run failure
            core.journal.emit("failure", slot, phase, failure.describe(), keep=True)
        else:
            core.stop_failures.append(failure)

    # -- after start-up --------------------------------------------------------------

    def background_failed(self, slot: Slot, exc: Exception) -> None:
        """A background task of ``slot`` raised ``exc``."""
        core = self.core
        if slot.stop_requested or slot.state >= STOPPING or core.stopping:
            self.stop_failed(slot, exc, "background")
            return
        if slot.job.running:  # the start it belongs to is under way: transactional
            if slot.outcome is None:
                self._fail(slot, "background", exc)
            return
        if slot.restarting or slot.outcome is not None:
            core.journal.transition(
                slot,
                f"background task failed while restarting: {describe(exc)}",
                None,
                logging.WARNING,
            )
            return
        failure = Failure(slot.name, slot.tier, "background", exc)
        note(exc, failure)
        core.journal.transition(
            slot, f"background task failed: {describe(exc)}", None, logging.ERROR
        )
        core.journal.emit("failure", slot, "background", failure.describe(), keep=True)
        if slot.d.restart is not None:
            core.supervisor.failed(slot, failure)
        elif all(core.slots[n].d.optional for n in core.dependents(slot.name)):
            self.contain(slot, failure)
        else:
            slot.record_failure(failure)
            core.stop_run(failure)

    def _fails_a_required_dependent(
        self, slot: Slot, dependents: list[Slot], failure: Failure
    ) -> bool:
        """During a start: a required driver that needs the failed one fails that start.

        As a required driver whose requirement failed before it began does
        (tests/test_dependencies_bugs.py).
        """
        required = [
            d
            for d in dependents
            if not d.d.optional and d.outcome is None and d.state != PENDING
        ]
        for dep in required:
            msg = (
                f"{dep.label()} cannot go on: it requires {slot.label()}, which "
                f"failed during start-up ({describe(failure.error)}); make "
                f"{dep.name!r} optional=True to run without it, or fix {slot.name!r}"
            )
            self._fail(
                dep,
                "initialize" if dep.state == STARTING else "autostart",
                DependencyError(msg),
            )
        return bool(required)

    def contain(
        self, slot: Slot, failure: Failure, *, during_start: bool = False
    ) -> None:
        """Stop an optional driver and the drivers that require it; the run goes on."""
        core = self.core
        slot.record_failure(failure)
        members = [core.slots[n] for n in core.dependents(slot.name)]
        if during_start and self._fails_a_required_dependent(
            slot, members[1:], failure
        ):
            return  # the start is aborted: its rollback stops them all
        for dep in members[1:]:
            if dep.outcome is None and dep.state != PENDING:  # started or starting
                dep.outcome = "failed"
                dep.reason = (
                    f"requires {slot.label()}, which failed: {describe(failure.error)}"
                )
                core.journal.transition(
                    dep, f"stopped: {dep.reason}", None, logging.WARNING
                )
                if dep.state == STARTING and dep.scope is not None:
                    dep.scope.cancel()
        core.journal.transition(
            slot,
            "contained: it and the optional drivers that require it stop; the run goes on",
            None,
            logging.WARNING,
        )
        if not during_start:
            core.journal.emit(
                "failure", slot, "contained", failure.describe(), keep=True
            )
        core.spawn_stop([m for m in members if m.state != PENDING])


def _failed(slot: Slot, phase: str, exc: BaseException) -> Failure:
    """``slot`` failed in ``phase`` with ``exc``: recorded on it, and noted on ``exc``."""
    failure = Failure(slot.name, slot.tier, phase, exc)
    slot.record_failure(failure)
    note(exc, failure)
    return failure
