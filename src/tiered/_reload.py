"""``run.reload()``: every driver's ``reload``, tier by tier, concurrently within a tier.

A reload never stops the run: errors and timeouts (each driver's
``start_timeout``, through the run's deadlines) are logged and returned.
One reload at a time: a second waits for the first.  A stop (the shutdown,
or a restart taking drivers down) cancels a reload under way rather than
wait for it, so a reload never delays a shutdown beyond what cutting it
short allows (tests/test_robustness.py).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import anyio

from ._exceptions import DriverTimeout, Failure, Skip, UsageError, describe
from ._policy import note

if TYPE_CHECKING:
    from ._backend import Scope
    from ._core import Core
    from ._slot import Slot

__all__ = ["Reloads"]

log = logging.getLogger("tiered")


class Reloads:
    """The reloads of one run: one at a time, each cancellable by a stop."""

    __slots__ = ("_busy", "_core", "_lock", "_scope")

    def __init__(self, core: Core) -> None:
        self._core = core
        self._lock: anyio.Lock | None = None
        self._scope: Scope | None = None
        self._busy = False

    async def reload(self) -> tuple[Exception, ...]:
        core = self._core
        if self._lock is None:
            self._lock = anyio.Lock()
        errors: list[Exception] = []
        async with self._lock:
            if core.state not in ("running", "restarting"):
                return ()  # the run began stopping while this waited
            self._busy = True
            try:
                with core.backend.scope() as self._scope:
                    for names in core.plan.tiers:
                        targets = [
                            s
                            for s in (core.slots[n] for n in names)
                            if s.up and s.d.spec.has_reload
                        ]
                        if targets:
                            async with anyio.create_task_group() as tg:
                                for slot in targets:
                                    tg.start_soon(_reload_one, slot, errors)
                if self._scope.cancelled_caught:
                    log.info(
                        "the reload of %r was cancelled: drivers are stopping",
                        core.name,
                    )
            finally:
                self._scope = None
                self._busy = False
        return tuple(errors)

    def cancel(self) -> None:
        """A stop begins: end the reload under way, if any."""
        if self._scope is not None:
            self._scope.cancel()

    async def wait(self) -> None:
        """Wait until no reload runs (after :meth:`cancel`)."""
        if self._busy and self._lock is not None:
            async with self._lock:
                pass


async def _reload_one(slot: Slot, errors: list[Exception]) -> None:
    core = slot.core
    d = slot.d
    b = core.backend
    now = core.clock()
    slot.reload_at, slot.reload_end = now - core.t0, None
    slot.phase = "reload"
    error: Exception | None = None
    with b.scope() as scope:
        slot.aux = scope
        core.deadlines.set(slot, now + d.start_timeout)
        try:
            await d.spec.instance.reload(slot.ctx)  # type: ignore[union-attr]
        except Exception as exc:
            error = exc
        finally:
            core.deadlines.clear(slot)
            slot.aux = None
            slot.phase = None
            slot.reload_end = core.clock() - core.t0
    took = slot.reload_end - slot.reload_at
    if error is None and scope.cancelled_caught:
        error = DriverTimeout(
            f"{slot.label()} did not finish reload within its start_timeout of "
            f"{d.start_timeout:g}s; raise start_timeout for {d.name!r}, or call "
            "ctx.extend_timeout() while it makes progress"
        )
    if isinstance(error, Skip):
        wrapped = UsageError(
            f"{slot.label()} raised tiered.Skip({error.reason!r}) in reload; Skip "
            "is for start-up (initialize and autostart)"
        )
        wrapped.__cause__ = error
        error = wrapped
    if error is None:
        core.journal.transition(slot, "reloaded", took, logging.DEBUG)
        return
    note(error, Failure(slot.name, slot.tier, "reload", error))
    errors.append(error)
    core.journal.transition(
        slot, f"failed in reload: {describe(error)}", took, logging.ERROR
    )
