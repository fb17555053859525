"""One driver's life: initialize, autostart, rest, stop, in one task.

A lifetime knows nothing of tiers or dependencies.  It asks its *gate* (the
start it belongs to, ``_schedule.Start``) when it may go on and tells it what
happened; every one of those calls is made in a ``finally``, so whatever a
hook raises or does, the gate hears of the driver and nothing waits for it
forever (tests/test_robustness.py).  What a failure means is the policy's
to say (``_policy``); the lifetime only reports it.

A generator driver runs in this one task from its first line to its last,
so it may hold a task group or a cancel scope across its ``yield``, as an
``@asynccontextmanager`` can (tests/test_run.py::
test_generator_driver_holds_a_task_group_across_its_yield).  Two cancel
scopes span the life for that: ``start``, which the run cancels to end a
driver still starting (the driver's own, or on trio for a tier's required
drivers the scope of their batch, ``_backend``), and inside it ``life``,
shielded once initialize is done, which keeps out ``start`` and any
cancellation from outside until the driver is told to stop; a stop that
overruns cancels ``life`` itself.
"""

from __future__ import annotations

import logging
import math
from contextlib import nullcontext
from typing import TYPE_CHECKING, Final

from ._backend import internal, user_code
from ._exceptions import DriverTimeout, UsageError
from ._slot import DOWN, INITIALIZED, STARTING, STOPPING, UP

if TYPE_CHECKING:
    import anyio

    from ._backend import Scope
    from ._slot import Slot

__all__ = ["lifetime"]

#: stands in for a driver's own start scope where its batch's does the work
_NO_SCOPE: Final = nullcontext()


@internal
async def _place(slot: Slot, limiter: anyio.Semaphore) -> bool:
    """Wait for a place among ``max_concurrent_starts``; False if start-up failed meanwhile."""
    await limiter.acquire()
    if slot.job.aborted:
        limiter.release()
        return False
    return True


async def lifetime(slot: Slot) -> None:
    """Initialize, autostart, rest until told to stop, stop: one driver, one task.

    One coroutine for the whole life, not one calling another: a resting
    driver keeps its frame alive, and every full garbage collection walks
    it (docs/benchmarks.md).
    """
    core = slot.core
    going_on: BaseException | None = None
    try:
        if slot.job.aborted or slot.stop_now:
            _never_began(slot)
            return
        b = core.backend
        d = slot.d
        start = slot.scope = b.scope() if slot.batch is None or d.optional else None
        life = slot.life = b.scope()
        stop_ok = True
        try:
            with start or _NO_SCOPE, life:
                limiter = core.limiter
                if limiter is not None and not await _place(slot, limiter):
                    _never_began(slot)
                    return
                try:
                    now = core.clock()
                    slot.state = STARTING
                    slot.phase = "initialize"
                    slot.init_at = now - core.t0
                    if d.start_timeout != math.inf:
                        core.deadlines.set(slot, now + d.start_timeout)
                    await _call_initialize(slot)
                finally:
                    if limiter is not None:
                        limiter.release()
                    end = core.clock()
                    slot.init_end = end - core.t0
                life.shield = True  # from here on only the run can end this life
                _initialized(slot, end)
                if d.spec.has_autostart and slot.outcome is None:
                    await _autostart(slot, life)
                if slot.outcome is not None and core.policy.stops_at_once(slot):
                    # skipped, or optional and failed: it will not run, so it
                    # stops now, and its start is over once it has stopped
                    stop_ok = await _stop(slot)
                else:
                    _settle(slot)
                    while not (slot.stop_requested or slot.stop_now):
                        await b.park(slot)
                    stop_ok = await _stop(slot)
        except Exception as exc:  # raised by initialize: Skip included
            core.policy.start_failed(slot, "initialize", exc)
        except BaseException as exc:  # cancelled, or worse
            going_on = _interrupted(slot, exc)
        finally:
            slot.scope = None
        if start is not None and start.cancelled_caught and not slot.timed_out:
            core.policy.cancelled(slot)  # by the run: a sibling failed
        if slot.phase == "stop":
            # its deadline, or a cut; on asyncio the cancellation may leave
            # through the start scope when that was cancelled too (a sibling
            # failed during its autostart: tests/test_dependencies_bugs.py)
            caught = life.cancelled_caught or (
                start is not None and start.cancelled_caught
            )
            if life.cancel_called and caught:
                stop_ok = False
                core.policy.stop_failed(slot, _stop_timeout(slot))
            _stopped(slot, stop_ok)
        elif not slot.initialized and slot.bg is not None and slot.bg.count:
            # a failed or cancelled initialize may have started background
            # tasks; they end with it (tests/test_run.py::test_background_of_failed_init_ends)
            from ._background import end_background

            with b.scope(shield=True):
                await end_background(slot, d.stop_timeout)
    finally:
        _ended(slot)
    if going_on is not None:
        raise going_on


def _never_began(slot: Slot) -> None:
    """Its start failed or was cancelled (or it was told to stop) before it ran."""
    if slot.outcome is None:
        slot.outcome = "cancelled"
        slot.reason = slot.job.cancel_reason
        slot.core.journal.transition(slot, "cancelled before it began", None)


def _ended(slot: Slot) -> None:
    """The life is over: its gate hears of it, whatever happened."""
    core = slot.core
    slot.state = DOWN
    slot.phase = None
    slot.value = None  # a stopped driver holds nothing
    if slot.token:
        core.deadlines.clear(slot)
    core.journal.changed(slot)  # its status as the life ends: stopped, failed...
    job = slot.job
    try:
        if not slot.settled:
            slot.settled = True
            job.settled(slot)
    finally:
        try:
            if slot.stopper is not None:
                job.ended(slot)
        finally:
            core.host.ended()


def _interrupted(slot: Slot, exc: BaseException) -> BaseException | None:
    """Initialize was left by a BaseException: a cancellation, or worse.

    Returns what must go on propagating: trio's cancellation of a batch or
    from outside, which a nursery absorbs.
    """
    core = slot.core
    if isinstance(exc, core.backend.cancelled):
        if slot.job.aborted or slot.timed_out:
            # the run cancelled the batch (a required sibling failed): ours
            if slot.outcome is None:
                core.policy.cancelled(slot)
        else:  # the run was cancelled from outside while this started
            core.policy.cancelled_from_outside(slot)
        # on asyncio a lifetime is a plain task that nothing else cancels:
        # that CancelledError was the loop's, and this task ends here anyway
        return exc if core.backend.name == "trio" else None
    core.policy.interrupted(slot, slot.phase or "initialize", exc)
    return None


def _initialized(slot: Slot, now: float) -> None:
    core = slot.core
    if slot.token:
        slot.budget = slot.deadline - now
        core.deadlines.clear(slot)
        if slot.budget < 0 and not slot.timed_out:
            core.policy.overran(slot, "initialize", -slot.budget)
    else:
        slot.budget = math.inf
    slot.state = INITIALIZED
    slot.initialized = True
    slot.phase = None
    if core.journal.debug and slot.init_at is not None and slot.init_end is not None:
        core.journal.transition(
            slot, "initialized", slot.init_end - slot.init_at, logging.DEBUG
        )
    slot.job.initialized(slot)


async def _autostart(slot: Slot, life: Scope) -> None:
    """Run autostart when the gate opens, under what is left of start_timeout."""
    core = slot.core
    if not await slot.job.autostart_gate(slot) or slot.outcome is not None:
        return
    limiter = core.limiter
    outcome: BaseException | None = None
    # the start scope (or the batch's) reaches autostart: a sibling's
    # failure cancels it; life is shielded again before anything else
    life.shield = False
    try:
        if limiter is not None and not await _place(slot, limiter):
            return  # start-up failed while it waited
        try:
            now = core.clock()
            slot.auto_at = now - core.t0
            slot.phase = "autostart"
            core.deadlines.set(slot, now + slot.budget)
            await _call_autostart(slot)
        finally:
            if limiter is not None:
                limiter.release()
    except BaseException as exc:  # Skip, errors, cancellation, worse
        outcome = exc
    finally:
        life.shield = True
        end = core.clock()
        late = end - slot.deadline if slot.token else 0.0
        if slot.token:
            core.deadlines.clear(slot)
        if slot.auto_at is not None:
            slot.auto_end = end - core.t0
    slot.phase = None
    if outcome is not None:
        _autostart_failed(slot, outcome)
    elif late > 0 and not slot.timed_out:
        core.policy.overran(slot, "autostart", late)


def _autostart_failed(slot: Slot, exc: BaseException) -> None:
    core = slot.core
    if isinstance(exc, core.backend.cancelled):
        if slot.timed_out:
            return  # its deadline reported it (Slot.expire)
        if slot.job.aborted or (slot.scope is not None and slot.scope.cancel_called):
            core.policy.cancelled(slot)
        else:
            core.policy.cancelled_from_outside(slot)
    elif isinstance(exc, Exception):
        core.policy.start_failed(slot, "autostart", exc)
    else:
        core.policy.interrupted(slot, "autostart", exc)


def _settle(slot: Slot) -> None:
    """The start of this driver is over: up, or it cannot be."""
    core = slot.core
    if slot.outcome is None and not slot.job.aborted:
        slot.state = UP
        took = None
        if slot.init_at is not None:
            took = (slot.auto_end or slot.init_end or slot.init_at) - slot.init_at
        core.journal.up(slot, took)
    slot.settled = True
    slot.job.settled(slot)


async def _stop(slot: Slot) -> bool:
    """End the background tasks, then run the stop hook under stop_timeout.

    Returns whether the stop went well; a stop cut by its deadline comes out
    as a cancellation of ``life``, which the caller reports.
    """
    core = slot.core
    d = slot.d
    slot.state = STOPPING
    slot.phase = "ending"
    if slot.bg is not None and slot.bg.count:
        # their own time, so a task that overruns leaves the stop its own
        # (imported here: a daemon without background tasks never needs it)
        from ._background import end_background

        await end_background(slot, 0.0 if core.cut else d.stop_timeout)
    now = core.clock()
    slot.phase = "stop"
    slot.stop_at = now - core.t0
    if core.cut:
        core.deadlines.set(slot, now)
    elif d.stop_timeout != math.inf:
        core.deadlines.set(slot, now + d.stop_timeout)
    try:
        await _call_stop(slot)
        if slot.token and core.clock() > slot.deadline and not core.cut:
            # it returned late, and the loop never got to end it: it blocked
            late = core.clock() - slot.deadline
            core.policy.stop_failed(slot, core.timeout_error(slot, "stop", late=late))
            return False
    except Exception as exc:
        core.policy.stop_failed(slot, exc)
        return False
    except BaseException as exc:
        assert slot.life is not None
        if isinstance(exc, core.backend.cancelled) and slot.life.cancel_called:
            raise  # its deadline: life absorbs it, the caller reports it
        core.policy.interrupted(slot, "stop", exc)
        return False
    finally:
        if slot.token:
            core.deadlines.clear(slot)
    return True


def _stopped(slot: Slot, ok: bool) -> None:
    core = slot.core
    slot.stop_end = core.clock() - core.t0
    if not slot.d.spec.has_stop:
        slot.stop_at = slot.stop_end = None  # a phase not run is absent
    slot.phase = None
    if ok:
        took = (
            None
            if slot.stop_at is None or slot.stop_end is None
            else slot.stop_end - slot.stop_at
        )
        core.journal.stopped(slot, took)


def _stop_timeout(slot: Slot) -> DriverTimeout:
    if slot.core.cut:
        return DriverTimeout(f"{slot.label()}: stop was {slot.core.cut_why}")
    return slot.core.timeout_error(slot, "stop")


# -- the user's hooks -----------------------------------------------------------
# Called from these small functions, which trio lets KeyboardInterrupt into
# (an endless loop in a hook is what Ctrl-C is for); the lifetime around
# them is protected, so an interrupt never lands in its bookkeeping.  A
# generator driver's code before its yield is initialize, after it stop.


@user_code
async def _call_initialize(slot: Slot) -> None:
    spec = slot.d.spec
    if spec.function is not None:
        agen = spec.function(slot.ctx)
        try:
            slot.value = await agen.__anext__()
        except StopAsyncIteration:
            msg = (
                f"driver {slot.name!r} (tier {slot.tier}) returned without "
                "yielding; an @runtime.driver function must yield its value "
                "exactly once"
            )
            raise UsageError(msg) from None
        slot.gen = agen
    else:
        await spec.instance.initialize(slot.ctx)  # type: ignore[union-attr]
        slot.value = spec.instance


@user_code
async def _call_autostart(slot: Slot) -> None:
    await slot.d.spec.instance.autostart(slot.ctx)  # type: ignore[union-attr]


@user_code
async def _call_stop(slot: Slot) -> None:
    agen = slot.gen
    if agen is None:
        spec = slot.d.spec
        if spec.has_stop:
            await spec.instance.stop(slot.ctx)  # type: ignore[union-attr]
        return
    slot.gen = None
    try:
        await agen.__anext__()
    except StopAsyncIteration:
        return
    aclose = getattr(agen, "aclose", None)
    if aclose is not None:
        await aclose()
    msg = (
        f"driver {slot.name!r} (tier {slot.tier}) yielded a second time; an "
        "@runtime.driver function must yield exactly once (its stop code follows "
        "the yield)"
    )
    raise UsageError(msg)
