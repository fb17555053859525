"""The coordinator: the task that enters ``async with runtime.run()``.

It runs a run's start-up (the schedule's start, and on failure the
rollback), holds the body, and runs the shutdown.  Rollback and shutdown run
shielded and to their end whatever arrives (:meth:`Coordinator._to_the_end`):
drivers wait shielded for the word to stop, so leaving half-way would leave
them waiting forever.  What it raises at the end is decided here too: the
body's own exception, a cancellation or an interrupt (never swallowed),
else a :class:`StartupError` or :class:`ShutdownError` built from the
failure records.
"""

from __future__ import annotations

import contextvars
import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, TypeVar

import anyio

from ._backend import current_backend
from ._exceptions import ShutdownError, StartupError, describe

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from ._core import Core
    from ._exceptions import Failure

__all__ = ["Coordinator", "shutdown_error"]

log = logging.getLogger("tiered")

#: how many interrupts in a row a rollback or shutdown absorbs (each cuts it
#: shorter) before it gives up on finishing: a bound, so an error of ours that
#: recurs cannot loop forever
_MAX_INTERRUPTS = 100


class Coordinator:
    """Start-up, rollback and shutdown of one run."""

    def __init__(self, core: Core) -> None:
        self._core = core

    @asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        """The whole run: start-up, the body (the ``yield``), shutdown."""
        core = self._core
        b = core.backend = current_backend()
        core.clock = b.clock
        core.t0 = core.clock()
        core.context = contextvars.copy_context()
        core.journal.refresh()
        if core.max_concurrent_starts is not None:
            core.limiter = anyio.Semaphore(core.max_concurrent_starts)
        outcome: BaseException | None = None
        started = False
        # Exceptions are caught inside the task group and raised after it: a
        # task group on trio wraps whatever its body raises in an
        # ExceptionGroup, and users should see their own exception as is
        # (tests/test_run.py::test_body_exception_propagates_unwrapped).
        try:
            async with anyio.create_task_group() as tg, b.host(core.context) as host:
                core.tg = tg
                core.host = host
                core.deadlines.attach(host.alarm(core.deadlines.ring))
                core.set_state("starting")
                try:
                    await self._startup()
                    started = True
                except BaseException as exc:
                    outcome = exc
                if started:
                    core.ready_at = core.clock() - core.t0
                    core.set_state("running")
                    log.info(
                        "runtime %r is up in %.3fs",
                        core.name,
                        core.ready_at,
                        extra={"tiered_runtime": core.name},
                    )
                    try:
                        with b.scope() as core.body_scope:
                            yield
                    except BaseException as exc:
                        outcome = exc
                    finally:
                        core.body_scope = None
                    late = await self._to_the_end(self._shutdown)
                    outcome = outcome or late
                late = await self._to_the_end(host.join)
                outcome = outcome or late
                tg.cancel_scope.cancel()  # the supervisor's task, if it waits
        finally:
            # also when leaving the task group raised (cancelled from outside)
            # the time first: a listener of "stopped" reads the report
            # (tests/test_otel.py)
            core.stopped_at = core.clock() - core.t0
            core.set_state("stopped")
        if outcome is None:
            outcome = core.interrupt
        if outcome is not None:
            if core.stop_failures and started:
                try:
                    outcome.add_note(
                        f"while the run stopped, {len(core.stop_failures)} driver(s) "
                        "failed: " + "; ".join(f.describe() for f in core.stop_failures)
                    )
                except Exception:
                    pass  # an exception that takes no notes still propagates
            raise outcome
        error = shutdown_error(core)
        if error is not None:
            raise error

    async def _startup(self) -> None:
        core = self._core
        job = core.start_job = core.schedule.start(core.order)
        cancelled: BaseException | None = None
        try:
            await job.run()
        except BaseException as exc:
            # cancelled from outside, or a KeyboardInterrupt that trio
            # delivers at any checkpoint of this task
            cancelled = exc
            job.abort(reason="cancelled from outside the run")
        if cancelled is None and not job.aborted:
            return
        late = await self._to_the_end(self._rollback)
        cancelled = cancelled or late or core.interrupt
        if cancelled is not None:
            # a cancellation or an interrupt is never swallowed: it wins over
            # the start-up's own failures, which are logged (and noted)
            if job.failures:
                text = "; ".join(f.describe() for f in job.failures)
                log.error(
                    "start-up of %r was cancelled; it had also failed: %s",
                    core.name,
                    text,
                )
                if cancelled is core.interrupt:
                    try:
                        cancelled.add_note(f"start-up had also failed: {text}")
                    except Exception:
                        pass
            raise cancelled
        what = ", ".join(
            f"{f.driver} (tier {f.tier})" for f in _each_driver_once(job.failures)
        )
        msg = f"runtime {core.name!r} failed to start: {what}"
        raise _group(StartupError, msg, job.failures + core.stop_failures)

    async def _rollback(self) -> None:
        core = self._core
        job = core.start_job
        assert job is not None
        await job.finish()  # every driver spawned has settled
        await core.schedule.stop(core.order)

    async def _shutdown(self) -> None:
        core = self._core
        if not core.stopping:
            core.stopping = True
            core.stopping_at = core.clock() - core.t0
            core.set_state("stopping")
            core.start_budget()
            self._core.cancel_reloads()
        if core.restarting:
            await core.supervisor.abandon()
        await self._core.reloads_done()
        await core.schedule.stop(core.order)

    async def _to_the_end(
        self, step: Callable[[], Awaitable[None]]
    ) -> BaseException | None:
        """Run a rollback or shutdown shielded, to its end, whatever arrives.

        A KeyboardInterrupt meanwhile (trio raises it at any checkpoint of
        this task, shielded or not) cuts the stops short instead, and is
        returned to be raised once all are done
        (tests/test_run.py::test_keyboard_interrupt_while_stopping).  An
        error of ours is not retried: it is logged and returned.
        """
        core = self._core
        interrupt: BaseException | None = None
        for _ in range(_MAX_INTERRUPTS):
            try:
                with core.backend.scope(shield=True):
                    await step()
            except Exception as exc:  # pragma: no cover - a bug of tiered's
                log.exception("tiered: the stop of %r failed", self._core.name)
                return interrupt or exc
            except BaseException as exc:
                interrupt = interrupt or exc
                core.cut_short("cut short by an interrupt")
            else:
                return interrupt
        return interrupt  # pragma: no cover - a hundred interrupts in a row


def shutdown_error(core: Core) -> ShutdownError | None:
    """The failures after start-up (and every failed stop) as one ShutdownError."""
    failures = core.run_failures + core.stop_failures
    if not failures:
        return None
    return _group(ShutdownError, _shutdown_message(core), failures)


def _each_driver_once(failures: list[Failure]) -> list[Failure]:
    seen: set[str] = set()
    out = []
    for f in failures:
        if f.driver not in seen:
            seen.add(f.driver)
            out.append(f)
    return out


def _shutdown_message(core: Core) -> str:
    names = ", ".join(
        f.driver for f in _each_driver_once(core.run_failures + core.stop_failures)
    )
    if core.gave_up is not None:
        return f"runtime {core.name!r} stopped: it {core.gave_up} ({names})"
    return f"runtime {core.name!r} stopped with errors ({names})"


if TYPE_CHECKING:  # for type checkers only: a type variable costs start-up
    G = TypeVar("G", StartupError, ShutdownError)


def _group(cls: type[G], msg: str, failures: list[Failure]) -> G:
    """The group of ``failures``' exceptions (those that are Exceptions, each once)."""
    excs: list[Exception] = []
    kept: list[Failure] = []
    for f in failures:
        if isinstance(f.error, Exception) and all(f.error is not e for e in excs):
            excs.append(f.error)
            kept.append(f)
    if not excs:  # pragma: no cover - every failure recorded is an Exception
        excs = [RuntimeError(describe(failures[0].error))]
    return cls(msg, excs, kept)
