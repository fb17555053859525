"""Regressions: odd exceptions, overrunning tasks and reloads, cut-short stops.

Each test pins one defect of the core as it was, so that a new core must
fix it and no later one can bring it back:

1. a hook raising an exception that cannot take notes (a frozen dataclass:
   ``add_note()`` raises) hung the run forever, shielded;
2. so did an exception whose ``__str__`` raises;
3. a custom ``BaseException`` from a hook must roll back and propagate as
   itself: it did not hang, but one raised by a ``stop`` during the
   rollback of a failed start-up was dropped for the ``StartupError``;
4. a background task that outlasts ``stop_timeout`` used up the stop's
   deadline, so the driver's ``stop`` never ran; after a cut-short stop on
   asyncio the drivers with background tasks were not stopped at all;
5. a reload in progress delayed the shutdown, cut short or not;
6. ``ctx.extend_timeout()`` in a stop that began after the cut undid it;
7. ``run.get(SomeClass)`` with two instances returned the first silently;
8. ``ctx.extend_timeout(10**400)`` raised ``OverflowError``;
9. drivers cancelled because another tier's background task failed gave a
   reason that blamed their own tier.

The cases that hung (1, 2, 3 and 6) run in a child process per backend,
``_child_main``, which runs each case on its own event loop in a thread of
its own and reports, as JSON, ``"ok"``, what went wrong, or a hang (no return
within ``CASE_TIMEOUT``); the child itself is killed after
``CHILD_TIMEOUT``.  A regression therefore fails its test instead of hanging
the suite.  The others run in-process on the three backends.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import re
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import anyio
import pytest

import tiered
from support.backends import BACKENDS

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable


#: real seconds a case in the child may take before it counts as hung; every
#: case takes milliseconds when the core is right
CASE_TIMEOUT = 10.0
#: real seconds after which the child process is killed
CHILD_TIMEOUT = 45.0
#: the line of the child's stdout that carries the results
RESULTS = "robustness results: "


def cut_short(run: tiered.Run) -> None:
    """``run.cut_short()``: end the shutdown now (the stops under way are cancelled)."""
    run.cut_short()


# -- the exceptions ----------------------------------------------------------------


@dataclass(frozen=True)
class Frozen(Exception):
    """An exception that cannot take notes: ``add_note()`` raises FrozenInstanceError."""

    code: int = 1


class Unprintable(Exception):
    """An exception whose ``str()`` raises."""

    def __str__(self) -> str:
        raise RuntimeError("no str")


class Odd(BaseException):
    """An application's own BaseException: neither KeyboardInterrupt nor SystemExit."""


def _is_among(exc: BaseException, errors: tuple[BaseException, ...]) -> bool:
    """Whether ``exc`` itself (not an equal one: Frozen compares by fields) is in ``errors``."""
    return any(e is exc for e in errors)


# -- the child: cases that used to hang --------------------------------------------

Place = Literal[
    "initialize",
    "initialize_gen",
    "autostart",
    "background_startup",
    "background_running",
    "stop_gen",
    "stop_class",
    "stop_rollback",
    "reload",
]
PLACES: tuple[Place, ...] = (
    "initialize",
    "initialize_gen",
    "autostart",
    "background_startup",
    "background_running",
    "stop_gen",
    "stop_class",
    "reload",
)
STARTUP_PLACES = ("initialize", "initialize_gen", "autostart", "background_startup")
#: ``stop_rollback``: the stop raises while start-up rolls back, after
#: ``top`` failed with a plain exception; the BaseException must still win
ODD_PLACES: tuple[Place, ...] = (
    "initialize",
    "autostart",
    "stop_gen",
    "stop_class",
    "stop_rollback",
)


def _three_tiers(
    exc: BaseException, place: Place, events: list[str]
) -> tuple[tiered.Runtime, anyio.Event]:
    """``base`` (tier 0), ``vault`` (tier 1) raising ``exc`` at ``place``, ``top`` (tier 2).

    At ``stop_rollback``, ``top``'s initialize fails and ``vault``'s stop raises.

    Returns the runtime and the event that lets a background task raise once
    the run is up (``background_running``).
    """
    runtime = tiered.Runtime("odd", start_timeout=60, stop_timeout=60)
    go = anyio.Event()

    @runtime.driver(tier=0)
    async def base(ctx: tiered.Context) -> AsyncIterator[str]:
        yield "base"
        events.append("stop:base")

    async def fail_soon() -> None:
        if place == "background_running":
            await go.wait()
        raise exc

    if place in ("initialize_gen", "stop_gen"):

        @runtime.driver(name="vault", tier=1)
        async def vault(ctx: tiered.Context) -> AsyncIterator[str]:
            if place == "initialize_gen":
                raise exc
            yield "vault"
            events.append("stop:vault")
            raise exc

    else:

        class Vault(tiered.Driver):
            name = "vault"
            tier = 1

            async def initialize(self, ctx: tiered.Context) -> None:
                if place == "initialize":
                    raise exc
                if place in ("background_startup", "background_running"):
                    ctx.start_soon(fail_soon)
                if place == "background_startup":
                    await anyio.sleep_forever()  # the failing task ends it

            async def autostart(self, ctx: tiered.Context) -> None:
                if place == "autostart":
                    raise exc

            async def reload(self, ctx: tiered.Context) -> None:
                if place == "reload":
                    raise exc

            async def stop(self, ctx: tiered.Context) -> None:
                events.append("stop:vault")
                if place in ("stop_class", "stop_rollback"):
                    raise exc

        runtime.add(Vault())

    @runtime.driver(tier=2)
    async def top(ctx: tiered.Context) -> AsyncIterator[str]:
        events.append("init:top")
        if place == "stop_rollback":
            raise RuntimeError("top cannot start")
        yield "top"
        events.append("stop:top")

    return runtime, go


def _check_stops(place: Place, events: list[str]) -> None:
    """Every driver whose initialize completed was stopped once, tiers in reverse."""
    if place in STARTUP_PLACES:
        want = ["stop:vault", "stop:base"] if place == "autostart" else ["stop:base"]
        assert "init:top" not in events, f"tier 2 began after tier 1 failed: {events}"
    elif place == "stop_rollback":
        want = ["stop:vault", "stop:base"]
    else:
        want = ["stop:top", "stop:vault", "stop:base"]
    stops = [e for e in events if e.startswith("stop:")]
    assert stops == want, f"stops {stops}, wanted {want}"


async def _unusual_exception(make: Callable[[], Exception], place: Place) -> None:
    """A hook of ``vault`` raises ``make()`` at ``place``; the run reports it, no hang."""
    exc = make()
    events: list[str] = []
    runtime, go = _three_tiers(exc, place, events)
    run = runtime.run()
    error: Exception | None = None
    reload_errors: tuple[Exception, ...] = ()
    try:
        async with run:
            if place == "reload":
                reload_errors = await run.reload()
            elif place == "background_running":
                go.set()
                await anyio.sleep_forever()  # the failing task stops the run
    except Exception as caught:
        error = caught
    if place in STARTUP_PLACES:
        assert isinstance(error, tiered.StartupError), (
            f"wanted a StartupError, got {error!r}"
        )
    elif place == "reload":
        assert error is None, f"the run raised {error!r}"
        assert _is_among(exc, reload_errors), (
            f"run.reload() returned {reload_errors!r}, without {exc!r}"
        )
    else:
        assert isinstance(error, tiered.ShutdownError), (
            f"wanted a ShutdownError, got {error!r}"
        )
    if isinstance(error, tiered.StartupError | tiered.ShutdownError):
        assert _is_among(exc, error.exceptions), (
            f"{error!r} does not hold the exception itself, {exc!r}"
        )
        assert "vault" in error.message, (
            f"the message does not name vault: {error.message!r}"
        )
    _check_stops(place, events)
    report = run.report
    report.to_text()  # renders, whatever the exception's str() does
    if place != "reload":
        # a driver whose own task failed while its initialize ran may also
        # count as cancelled by that failure
        allowed = (
            ("failed", "cancelled") if place == "background_startup" else ("failed",)
        )
        status = report.driver("vault").status
        assert status in allowed, f"vault ended {status!r}"


async def _base_exception(place: Place) -> None:
    """A hook of ``vault`` raises a custom BaseException: rollback, then it propagates."""
    exc = Odd()
    events: list[str] = []
    runtime, _ = _three_tiers(exc, place, events)
    raised: BaseException | None = None
    try:
        async with runtime.run():
            pass
    except BaseException as caught:  # what propagates is the point
        raised = caught
    assert raised is exc, f"wanted {exc!r} itself to propagate, got {raised!r}"
    _check_stops(place, events)


async def _extend_after_cut(where: Literal["later", "running"]) -> None:
    """A stop that extends its timeout after the cut still ends at once, a DriverTimeout.

    ``later``: ``greedy`` is in the tier below ``cutter``, so its stop begins
    after the cut.  ``running``: both are in one tier and ``greedy`` is
    already stopping when the cut comes; it extends as it resumes.
    """
    runtime = tiered.Runtime("cut", start_timeout=60, stop_timeout=60)
    greedy_stopping, cut_done = anyio.Event(), anyio.Event()
    cut_at = math.inf

    @runtime.driver(tier=0)
    async def greedy(ctx: tiered.Context) -> AsyncIterator[str]:
        yield "greedy"
        if where == "running":
            greedy_stopping.set()
            await cut_done.wait()
        # "later": no checkpoint before the extension, so nothing could take
        # the cut before it
        ctx.extend_timeout(100)
        await anyio.sleep(100)

    @runtime.driver(tier=1 if where == "later" else 0)
    async def cutter(ctx: tiered.Context) -> AsyncIterator[str]:
        nonlocal cut_at
        yield "cutter"
        if where == "running":
            await greedy_stopping.wait()
        cut_at = time.monotonic()
        # greedy is woken first, so (on trio) it resumes past its wait and
        # extends after the cut
        cut_done.set()
        cut_short(run)

    run = runtime.run()
    error: Exception | None = None
    try:
        async with run:
            pass
    except Exception as caught:
        error = caught
    took = time.monotonic() - cut_at
    assert took < 2.0, f"the run ended {took:.1f}s after the cut"
    assert isinstance(error, tiered.ShutdownError), f"wanted ShutdownError: {error!r}"
    recorded = run.report.driver("greedy").error or ""
    assert recorded.startswith("DriverTimeout"), f"greedy's stop ended {recorded!r}"


CHILD_CASES: dict[str, Callable[[], Awaitable[None]]] = {
    **{f"frozen/{p}": functools.partial(_unusual_exception, Frozen, p) for p in PLACES},
    **{
        f"unprintable/{p}": functools.partial(_unusual_exception, Unprintable, p)
        for p in PLACES
    },
    **{f"base/{p}": functools.partial(_base_exception, p) for p in ODD_PLACES},
    "extend-after-cut/later": functools.partial(_extend_after_cut, "later"),
    "extend-after-cut/running": functools.partial(_extend_after_cut, "running"),
}


def _run_on(backend: str, fn: Callable[[], Awaitable[None]]) -> None:
    options = {"use_uvloop": True} if backend == "uvloop" else {}
    anyio.run(
        fn,
        backend="trio" if backend == "trio" else "asyncio",
        backend_options=options,
    )


def _run_case(
    backend: str,
    name: str,
    case: Callable[[], Awaitable[None]],
    results: dict[str, str],
) -> None:
    try:
        _run_on(backend, case)
    except AssertionError as exc:
        results[name] = f"failed: {exc}"
    except BaseException as exc:  # reported to the parent, whatever it is
        lines = traceback.format_exception(exc)
        results[name] = f"raised {exc!r}:\n{''.join(lines)[-3000:]}"
    else:
        results[name] = "ok"


async def _warm_up() -> None:
    """One plain run first, so no lazy set-up of the core races between the threads."""
    runtime = tiered.Runtime("warm-up")

    @runtime.driver
    async def plain(ctx: tiered.Context) -> AsyncIterator[None]:
        yield

    async with runtime.run():
        pass


class _LogByThread(logging.Handler):
    """Keeps the log lines of each case (each runs in a thread named after it)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: dict[str, list[str]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = f"{record.levelname} {record.name}: {record.getMessage()}"
        except Exception as exc:  # a message whose arguments cannot be printed
            line = f"{record.levelname} {record.name}: {record.msg!r} ({exc!r})"
        self.lines.setdefault(record.threadName or "", []).append(line)


def _child_main(backend: str) -> None:
    """In the child: run every case at once, one thread each, and print the outcomes."""
    log = _LogByThread()
    logging.basicConfig(level=logging.INFO, handlers=[log])
    _run_on(backend, _warm_up)
    results: dict[str, str] = {}
    threads = [
        threading.Thread(
            target=_run_case,
            args=(backend, name, case, results),
            name=name,
            daemon=True,
        )
        for name, case in CHILD_CASES.items()
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + CASE_TIMEOUT
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    outcomes = dict(results)
    for name in CHILD_CASES:
        outcomes.setdefault(name, f"hung: no return after {CASE_TIMEOUT:g}s")
        if outcomes[name] != "ok":
            logged = "\n  ".join(log.lines.get(name, ["(nothing)"])[-12:])
            outcomes[name] += f"\nwhat it logged last:\n  {logged}"
    sys.stdout.write(RESULTS + json.dumps(outcomes) + "\n")
    sys.stdout.flush()
    os._exit(0)  # hung threads cannot be joined; do not wait for them


@functools.cache
def _child_results(backend: str) -> tuple[dict[str, str], str]:
    """Run the child once per backend; its outcomes by case, and what it printed."""
    here = Path(__file__).resolve()
    code = (
        f"import sys; sys.path.insert(0, {str(here.parent)!r}); "
        f"import {here.stem} as m; m._child_main({backend!r})"
    )
    try:
        proc = subprocess.run(
            [sys.executable, "-W", "error", "-c", code],
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        return {}, f"the child was killed after {CHILD_TIMEOUT:g}s: {exc.stderr!r}"
    lines = [x for x in proc.stdout.splitlines() if x.startswith(RESULTS)]
    output = f"exit status {proc.returncode}; stderr:\n{proc.stderr[-4000:]}"
    if proc.returncode != 0 or not lines:
        return {}, output
    return json.loads(lines[-1][len(RESULTS) :]), output


def _expect_ok(backend: str, case: str) -> None:
    results, output = _child_results(backend)
    outcome = results.get(case, f"no outcome from the child: {output}")
    if outcome != "ok":
        pytest.fail(f"{case} on {backend}: {outcome}", pytrace=False)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("place", PLACES)
def test_exception_that_cannot_take_notes(place: Place, backend: str) -> None:
    """A frozen exception from any hook or task fails the run, naming its driver, no hang."""
    _expect_ok(backend, f"frozen/{place}")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("place", PLACES)
def test_exception_whose_str_raises(place: Place, backend: str) -> None:
    """An exception whose str() raises fails the run like any other, no hang."""
    _expect_ok(backend, f"unprintable/{place}")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("place", ODD_PLACES)
def test_custom_base_exception(place: Place, backend: str) -> None:
    """A custom BaseException from a hook rolls back or stops, then propagates as itself."""
    _expect_ok(backend, f"base/{place}")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("where", ["later", "running"])
def test_extend_timeout_does_not_undo_a_cut(where: str, backend: str) -> None:
    """ctx.extend_timeout() in a stop after run.cut_short() leaves it cut: a DriverTimeout at once."""
    _expect_ok(backend, f"extend-after-cut/{where}")


# -- in-process: the cases that never hung --------------------------------------------

#: the stop_timeout of the tests of background tasks that overrun it (real seconds)
STOP_TIMEOUT = 0.2


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["generator", "class"])
async def test_background_task_outlasting_stop_timeout_leaves_stop_its_time(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A background task ignoring its cancel past stop_timeout is abandoned, warned of; stop still runs."""
    events: list[str] = []
    task_ended = anyio.Event()
    runtime = tiered.Runtime("overrun", stop_timeout=STOP_TIMEOUT)

    async def stubborn() -> None:
        # ignores its cancellation for three times the driver's stop_timeout:
        # in a finally for the generator, in an except-cancelled for the class
        try:
            if kind == "generator":
                try:
                    await anyio.sleep_forever()
                finally:
                    with anyio.CancelScope(shield=True):
                        await anyio.sleep(STOP_TIMEOUT * 3)
            else:
                try:
                    await anyio.sleep_forever()
                except anyio.get_cancelled_exc_class():
                    with anyio.CancelScope(shield=True):
                        await anyio.sleep(STOP_TIMEOUT * 3)
                    raise
        finally:
            task_ended.set()

    async def stop_code() -> None:
        events.append("stop")
        await anyio.sleep(STOP_TIMEOUT / 10)  # well within its own stop_timeout
        events.append("stop_end")

    if kind == "generator":

        @runtime.driver(name="worker")
        async def worker(ctx: tiered.Context) -> AsyncIterator[str]:
            ctx.start_soon(stubborn)
            yield "worker"
            await stop_code()

    else:

        class Worker(tiered.Driver):
            async def initialize(self, ctx: tiered.Context) -> None:
                ctx.start_soon(stubborn)

            async def stop(self, ctx: tiered.Context) -> None:
                await stop_code()

        runtime.add(Worker())

    run = runtime.run()
    error: tiered.ShutdownError | None = None
    with caplog.at_level(logging.WARNING, logger="tiered"):
        try:
            async with run:
                pass
        except tiered.ShutdownError as exc:  # not the point here; shown below
            error = exc
        with anyio.fail_after(5):
            await task_ended.wait()
    record = run.report.driver("worker")
    assert events == ["stop", "stop_end"], (
        f"the stop code ran as {events}, wanted once and to its end; the driver "
        f"ended {record.status!r} ({record.error}); leaving the run raised {error!r}"
    )
    warned = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "worker" in r.getMessage()
    ]
    assert warned, "no WARNING names worker, whose background task was abandoned"


@pytest.mark.anyio
async def test_cut_short_still_stops_drivers_with_background_tasks() -> None:
    """After run.cut_short(), every driver still gets its stop called, background tasks or not."""
    runtime = tiered.Runtime("cut-bg", start_timeout=60, stop_timeout=60)
    stops: list[str] = []

    def with_background(name: str, tier: int) -> None:
        async def driver(ctx: tiered.Context) -> AsyncIterator[str]:
            ctx.start_soon(anyio.sleep_forever)
            yield name
            stops.append(name)

        runtime.driver(name=name, tier=tier)(driver)

    with_background("disk", 0)
    with_background("net", 1)

    @runtime.driver(tier=2)
    async def cutter(ctx: tiered.Context) -> AsyncIterator[str]:
        yield "cutter"
        stops.append("cutter")
        cut_short(run)
        await anyio.sleep(10)  # cut: cancelled at once

    run = runtime.run()
    began = time.monotonic()
    with pytest.raises(tiered.ShutdownError):
        async with run:
            pass
    took = time.monotonic() - began
    assert stops == ["cutter", "net", "disk"], (
        f"stops called: {stops}; report: "
        f"{[(r.name, r.status, r.error) for r in run.report.drivers]}"
    )
    assert took < 5, f"the cut-short shutdown took {took:.1f}s"
    cut = run.report.driver("cutter").error or ""
    assert cut.startswith("DriverTimeout"), f"the stop that was cut ended {cut!r}"


#: how long the reload of the reload tests sleeps (real seconds; start_timeout 60)
RELOAD_SLEEP = 5.0


@pytest.mark.anyio
@pytest.mark.parametrize("cut", [False, True], ids=["leave", "leave-and-cut"])
async def test_shutdown_does_not_wait_for_a_reload(cut: bool) -> None:
    """Leaving the run while a reload runs begins the shutdown at once (cut short or not)."""
    runtime = tiered.Runtime("reloading", start_timeout=60, stop_timeout=60)
    reloading = anyio.Event()
    stops: dict[str, float] = {}

    class Config(tiered.Driver):
        tier = 0

        async def initialize(self, ctx: tiered.Context) -> None:
            pass

        async def reload(self, ctx: tiered.Context) -> None:
            reloading.set()
            await anyio.sleep(RELOAD_SLEEP)

        async def stop(self, ctx: tiered.Context) -> None:
            stops["config"] = anyio.current_time()

    runtime.add(Config())

    @runtime.driver(tier=1)
    async def api(ctx: tiered.Context) -> AsyncIterator[str]:
        yield "api"
        stops["api"] = anyio.current_time()

    run = runtime.run()
    reloaded: list[object] = []

    async def reload() -> None:
        try:
            reloaded.append(await run.reload())
        except Exception as exc:  # what an interrupted reload gives is not the point
            reloaded.append(exc)

    async def cut_once_stopping() -> None:
        # polled: the cut must come once the shutdown began, and before any
        # stop, which is what the old core delayed
        while run.report.stopping_at is None:  # noqa: ASYNC110
            await anyio.sleep(0.001)
        if run.report.stopped_at is None:  # not over yet
            cut_short(run)

    left = ended = math.nan
    async with anyio.create_task_group() as tg:
        try:
            async with run:
                tg.start_soon(reload)
                await reloading.wait()
                if cut:
                    tg.start_soon(cut_once_stopping)
                left = anyio.current_time()
        except tiered.ShutdownError:  # an interrupted reload may count; not the point
            pass
        ended = anyio.current_time()
    assert stops, "no stop ran"
    first = min(stops.values()) - left
    assert first < 1.0, (
        f"the first stop began {first:.1f}s after leaving the block: the shutdown "
        "waited for the reload"
    )
    if cut:
        assert ended - left < 1.0, f"the cut-short run took {ended - left:.1f}s to end"


@pytest.mark.anyio
async def test_run_get_of_a_class_with_two_instances() -> None:
    """run.get(SomeClass) with two instances is a DependencyError naming both, not the first."""

    class Storage(tiered.Driver):
        tier = 0

        async def initialize(self, ctx: tiered.Context) -> None:
            pass

    class Network(tiered.Driver):
        async def initialize(self, ctx: tiered.Context) -> None:
            pass

    runtime = tiered.Runtime("twins")
    primary, backup = Storage(), Storage()
    primary.name, backup.name = "primary", "backup"
    runtime.add(primary)
    runtime.add(backup)
    runtime.add(Network())
    async with runtime.run() as run:
        assert run.get(Network) is run.get("network")  # one instance: fine
        with pytest.raises(tiered.DependencyError) as info:
            run.get(Storage)  # not the first instance, silently
        msg = str(info.value)
        assert "primary" in msg, msg
        assert "backup" in msg, msg
        assert re.search(r"\bname\b", msg), f"does not say to use a name: {msg}"


ExtendPhase = Literal["initialize", "autostart", "reload", "stop"]


@pytest.mark.anyio
@pytest.mark.parametrize("phase", ["initialize", "autostart", "reload", "stop"])
async def test_extend_timeout_beyond_any_float(phase: ExtendPhase) -> None:
    """ctx.extend_timeout(10**400) is a ConfigError naming the driver; math.inf is no limit."""
    runtime = tiered.Runtime("huge", start_timeout=60, stop_timeout=60)
    seen: dict[str, BaseException | None] = {}

    def extend(ctx: tiered.Context, when: str, seconds: float) -> None:
        if when != phase:
            return
        try:
            ctx.extend_timeout(seconds)
        except Exception as exc:
            seen[ctx.name] = exc
        else:
            seen[ctx.name] = None

    class Extender(tiered.Driver):
        def __init__(self, name: str, seconds: float) -> None:
            self.name = name
            self.seconds = seconds

        async def initialize(self, ctx: tiered.Context) -> None:
            extend(ctx, "initialize", self.seconds)

        async def autostart(self, ctx: tiered.Context) -> None:
            extend(ctx, "autostart", self.seconds)

        async def reload(self, ctx: tiered.Context) -> None:
            extend(ctx, "reload", self.seconds)

        async def stop(self, ctx: tiered.Context) -> None:
            extend(ctx, "stop", self.seconds)

    runtime.add(Extender("greedy", 10**400))
    runtime.add(Extender("patient", math.inf))
    async with runtime.run() as run:
        await run.reload()
    huge = seen["greedy"]
    assert isinstance(huge, tiered.ConfigError), (
        f"ctx.extend_timeout(10**400) in {phase} raised {huge!r}"
    )
    assert "greedy" in str(huge), str(huge)
    assert seen["patient"] is None, (
        f"extend_timeout(math.inf) raised {seen['patient']!r}"
    )


@pytest.mark.anyio
async def test_cancel_reason_names_the_driver_that_failed() -> None:
    """Drivers cancelled by a lower tier's failing background task say which driver failed."""
    runtime = tiered.Runtime("reasons", start_timeout=60)
    tier1_began = anyio.Event()

    async def watch_keys() -> None:
        await tier1_began.wait()
        raise OSError("the key store went away")

    @runtime.driver(tier=0)
    async def secrets(ctx: tiered.Context) -> AsyncIterator[str]:
        ctx.start_soon(watch_keys)
        yield "keys"

    @runtime.driver(tier=1)
    async def storage(ctx: tiered.Context) -> AsyncIterator[str]:
        tier1_began.set()
        await anyio.sleep(30)  # cancelled: secrets failed meanwhile
        yield "pools"

    @runtime.driver(tier=1)
    async def network(ctx: tiered.Context) -> AsyncIterator[str]:
        await anyio.sleep(30)
        yield "bridges"

    run = runtime.run()
    with anyio.fail_after(10), pytest.raises(tiered.StartupError) as info:
        async with run:
            pass  # pragma: no cover
    assert "secrets" in info.value.message
    for name in ("storage", "network"):
        record = run.report.driver(name)
        assert record.status == "cancelled", (name, record.status)
        assert record.reason is not None
        assert "secrets" in record.reason, f"{name}: {record.reason!r}"
