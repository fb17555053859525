"""A driver's background tasks (``ctx.start_soon``): started, watched, ended.

They live in the run's task group, each in a cancel scope of its own, and
belong to one *life* of their driver (:class:`Tasks`): a restart starts a
new set, so a task of an earlier life that overran its end can neither be
counted with the new ones nor fail them.

Ending them is bounded: they are cancelled, then waited for at most the
driver's ``stop_timeout``; one that ignores its cancellation longer is
abandoned with a warning, and the driver's ``stop`` still runs, under a
``stop_timeout`` of its own (tests/test_robustness.py).  An abandoned task
is still joined by the run's task group before the run returns.
"""

from __future__ import annotations

import inspect
import logging
from typing import TYPE_CHECKING, Any, cast

from ._backend import internal, user_code
from ._exceptions import UsageError
from ._slot import INITIALIZED, STARTING, UP

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ._backend import Scope, Waitable
    from ._slot import Slot

__all__ = ["Tasks", "end_background", "start_background"]

log = logging.getLogger("tiered")


class Tasks:
    """The background tasks of one life of one driver."""

    __slots__ = ("closed", "count", "done", "scopes")

    def __init__(self) -> None:
        self.count = 0
        self.closed = False
        self.scopes: set[Scope] = set()
        self.done: Waitable | None = None

    def ended_one(self) -> None:
        self.count -= 1
        if self.count == 0 and self.done is not None:
            self.done.set()


def start_background(
    slot: Slot,
    fn: Callable[..., Awaitable[object]],
    args: tuple[Any, ...],
    name: object,
) -> None:
    """``ctx.start_soon(fn, *args)``: checked here, in the hook that called it."""
    core = slot.core
    tasks = _tasks_for(slot)
    if tasks is None or core.tg is None:
        when = (
            "from stop"
            if slot.phase in ("ending", "stop")
            else f"while it is {slot.status}"
        )
        msg = (
            f"{slot.label()} called ctx.start_soon() {when}; "
            "background tasks can be started from initialize, autostart and "
            "reload, and end before stop runs"
        )
        raise UsageError(msg)
    # called now, as anyio's start_soon does, so a mistake fails here, in the
    # hook that made it, rather than later in the task
    given = cast("object", fn)  # typed as a function; users pass anything
    if inspect.iscoroutine(given):
        given.close()  # never awaited: no RuntimeWarning on top of the error
        msg = (
            f"{slot.label()} passed a coroutine to ctx.start_soon(); pass the "
            f"async function and its arguments: ctx.start_soon("
            f"{given.__qualname__}, ...), not ctx.start_soon({given.__qualname__}(...))"
        )
        raise TypeError(msg)
    coro = cast("object", fn(*args))  # typed awaitable; may not be
    if not inspect.isawaitable(coro):
        what = getattr(fn, "__qualname__", repr(fn))
        msg = (
            f"{slot.label()} called ctx.start_soon({what}), which returned "
            f"{coro!r}, not an awaitable; ctx.start_soon() takes an async function"
        )
        raise TypeError(msg)
    tasks.count += 1
    core.tg.start_soon(
        _background, slot, tasks, coro, name=name or getattr(fn, "__qualname__", None)
    )


@internal
async def _background(slot: Slot, tasks: Tasks, coro: Awaitable[object]) -> None:
    core = slot.core
    b = core.backend
    try:
        if tasks.closed:  # its driver began stopping before this ran
            if inspect.iscoroutine(coro):
                coro.close()
            return
        with b.scope() as scope:
            tasks.scopes.add(scope)
            try:
                await _call(coro)
            except Exception as exc:
                if slot.bg is tasks:
                    core.policy.background_failed(slot, exc)
                else:
                    _late(slot, exc)
            except BaseException as exc:
                if not isinstance(exc, b.cancelled):
                    core.policy.interrupted(slot, "background", exc)
                else:
                    raise
            finally:
                tasks.scopes.discard(scope)
    finally:
        tasks.ended_one()


@user_code
async def _call(coro: Awaitable[object]) -> None:
    # the user's task itself: KeyboardInterrupt may land in it on trio
    await coro


def _late(slot: Slot, exc: Exception) -> None:
    from ._exceptions import describe

    log.warning(
        "%s: a background task of an earlier life, abandoned, raised %s",
        slot.label(),
        describe(exc),
        extra={"tiered_driver": slot.name, "tiered_tier": slot.tier},
    )


async def end_background(slot: Slot, grace: float) -> None:
    """Cancel the driver's background tasks; wait for them at most ``grace`` seconds."""
    tasks = slot.bg
    if tasks is None:
        return
    tasks.closed = True
    if not tasks.count:
        return
    core = slot.core
    b = core.backend
    for scope in tasks.scopes:
        scope.cancel()
    done = tasks.done = b.event()
    phase = slot.phase
    slot.phase = "ending"
    now = core.clock()
    with b.scope() as scope:
        slot.aux = scope
        core.deadlines.set(slot, now + grace)
        try:
            await done.wait()
        finally:
            core.deadlines.clear(slot)
            slot.aux = None
            slot.phase = phase
    if not done.is_set():
        log.warning(
            "%s: %d background task(s) did not end within %.3gs of being "
            "cancelled; abandoned (the run still waits for them before it "
            "returns), and its stop runs now",
            slot.label(),
            tasks.count,
            grace,
            extra={"tiered_driver": slot.name, "tiered_tier": slot.tier},
        )


def _tasks_for(slot: Slot) -> Tasks | None:
    """The tasks of the driver's current life, or None if it may not start one now."""
    if slot.state not in (STARTING, INITIALIZED, UP) or slot.stop_requested:
        return None
    tasks = slot.bg
    if tasks is None:
        tasks = slot.bg = Tasks()
    return None if tasks.closed else tasks
