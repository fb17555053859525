"""``running()``: a run held in a task of its own, safe across a fixture's yield."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio

from .._run import Run
from .._runtime import Runtime

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from anyio.abc import TaskStatus

__all__ = ["running"]


@asynccontextmanager
async def running(runtime: Runtime) -> AsyncIterator[Run]:
    """Run ``runtime`` for the duration of the block, from a task of its own.

    Like ``async with runtime.run() as run:``, it returns once every tier is
    up (or raises :class:`tiered.StartupError` after rolling back), and
    leaving the block stops every driver (raising :class:`tiered.ShutdownError`
    if a stop failed).  The difference: the run lives in a child task, so
    nothing the run does while the block runs cancels the block.  A
    background task that fails stops the run, and its
    :class:`~tiered.ShutdownError` is raised when the block exits.

    That makes it safe to hold across the ``yield`` of an async fixture.
    anyio's pytest plugin runs fixtures and the test in one task, where a run
    that cancels itself would cancel the test runner; ``runtime.run()`` held
    across a fixture's ``yield`` can then hang the test session.  The
    ``tiered_run`` fixture is built on this function.

    If the block raises, its exception propagates unchanged after the run
    stopped; a failure of the run is then added to it as a note.

    Example::

        @pytest.fixture
        async def daemon() -> AsyncIterator[tiered.Run]:
            async with tiered.testing.running(build_runtime()) as run:
                yield run

    Raises:
        TypeError: ``runtime`` is not a :class:`tiered.Runtime`.
        StartupError: a required driver failed to start.
        ShutdownError: drivers failed while the run stopped.
    """
    runtime = _check_runtime(runtime)
    stop = anyio.Event()
    failure: Exception | None = None

    async def lifetime(*, task_status: TaskStatus[Run | None]) -> None:
        nonlocal failure
        started = False
        try:
            async with runtime.run() as run:
                task_status.started(run)
                started = True
                await stop.wait()
        except Exception as exc:
            # Kept for the host task: raised inside the task group, it would
            # cancel the host (the test itself, under anyio's plugin) and come
            # out wrapped in an ExceptionGroup.
            failure = exc
            if not started:
                task_status.started(None)

    outcome: BaseException | None = None
    async with anyio.create_task_group() as tg:
        run = await tg.start(lifetime)
        if run is not None:
            try:
                yield run
            except BaseException as exc:
                # Raised after the task group, so that trio's strict
                # exception groups do not wrap the test's own exception.
                outcome = exc
            finally:
                stop.set()
    if outcome is not None:
        if failure is not None:
            outcome.add_note(
                f"meanwhile, the run of {runtime.name!r} failed: {failure!r}"
            )
        raise outcome
    if failure is not None:
        raise failure


def _check_runtime(runtime: object) -> Runtime:
    if not isinstance(runtime, Runtime):
        hint = (
            "pass the runtime itself, not runtime.run()"
            if isinstance(runtime, Run)
            else "pass the tiered.Runtime to run"
        )
        msg = (
            f"tiered.testing.running() takes a tiered.Runtime, got {runtime!r}; {hint}"
        )
        raise TypeError(msg)
    return runtime
