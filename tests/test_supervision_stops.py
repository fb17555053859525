"""Supervision, continued: what the run looks like during a restart, and stops that cut one.

While a driver restarts, ``run.state`` is ``"restarting"``, ``run.ready`` is
false and ``run.get`` of a restarting driver raises ``DependencyError``.  A
stop of the run (leaving the block, a signal) during a restart abandons it:
every driver that is up is stopped exactly once, in reverse order, and the
drivers the restart held say what became of them.  On asyncio, uvloop and
trio, with trio's ``autojump_clock`` where times matter; a real ``tiered run``
process for the signal.  tests/test_supervision.py has the restarts
themselves.
"""

from __future__ import annotations

import signal
import sys
import textwrap
import time
from typing import TYPE_CHECKING

import anyio
import pytest
import trio

import tiered
from support.daemon import Daemon, tiered_command
from support.supervision import Member, until
from tiered.testing import FaultyDriver, Recorder

if TYPE_CHECKING:
    from pathlib import Path

    from trio.testing import MockClock

SCHEDULES = pytest.mark.parametrize("schedule", ["tiers", "dependencies"])


def three(
    recorder: Recorder, policy: tiered.Restart, **options: object
) -> tuple[tiered.Runtime, Member]:
    """a (restarts with ``policy``) <- b <- c, and d on its own; a is returned."""
    runtime = tiered.Runtime("t", **options)  # type: ignore[arg-type]
    a = runtime.add(Member("a", recorder, tier=0, restart=policy))
    runtime.add(Member("b", recorder, tier=1, requires=("a",)))
    runtime.add(Member("c", recorder, tier=2, requires=("b",)))
    runtime.add(Member("d", recorder, tier=1))
    return runtime, a


# -- what the run says while a driver restarts -------------------------------------------


@pytest.mark.trio
async def test_run_get_of_a_restarting_driver_says_so(
    autojump_clock: MockClock,
) -> None:
    """During the restart, run.get of a driver it holds raises DependencyError 'restarting'."""
    recorder = Recorder()
    runtime, a = three(recorder, tiered.Restart(delay=10.0))
    async with runtime.run() as run:
        a.crash()
        await trio.sleep(1.0)  # in the 10 s delay
        for name in ("a", "b", "c"):
            with pytest.raises(tiered.DependencyError) as info:
                run.get(name)
            assert str(info.value) == (
                f"run.get({name!r}): {name} (tier {'abc'.index(name)}) is restarting "
                "(it failed and is being restarted; try again once it is up)"
            )
        assert run.get("d").name == "d"
        assert run.statuses() == {
            "a": "restarting",
            "b": "restarting",
            "d": "running",
            "c": "restarting",
        }
        assert (run.state, run.ready, run.live) == ("restarting", False, True)
        await trio.sleep(10.0)
        assert run.get("c").lives == 2
        assert (run.state, run.ready, run.live) == ("running", True, True)


@pytest.mark.trio
async def test_state_ready_and_live_through_a_whole_life(
    autojump_clock: MockClock,
) -> None:
    """new, starting, running, restarting, running, stopping, stopped; ready iff running; live falls once."""
    runtime = tiered.Runtime("t")
    policy = tiered.Restart(max_restarts=1, delay=0.5)
    runtime.add(FaultyDriver("a", restart=policy, crash_after=1.0))
    run = runtime.run()
    seen: list[tuple[str, bool, bool]] = []

    def sample(event: tiered.RunEvent) -> None:
        seen.append((run.state, run.ready, run.live))

    run.listen(sample)
    assert (run.state, run.ready, run.live) == ("new", False, True)
    with pytest.raises(tiered.ShutdownError):
        async with run:
            await trio.sleep_forever()
    seen.append((run.state, run.ready, run.live))
    states = [
        state
        for i, (state, _, _) in enumerate(seen)
        if i == 0 or seen[i - 1][0] != state
    ]
    assert states == [
        "starting",
        "running",
        "restarting",
        "running",
        "stopping",
        "stopped",
    ]
    assert all(ready == (state == "running") for state, ready, _ in seen)
    lives = [live for _, _, live in seen]
    fell = lives.index(False)
    assert all(lives[:fell])
    assert not any(lives[fell:])
    assert seen[fell][0] == "running"  # it gave up: failed, and still to stop


@pytest.mark.anyio
async def test_listeners_never_see_a_restart_while_the_run_looks_ready() -> None:
    """From a restart's first event on, run.state is 'restarting' until it is over."""
    recorder = Recorder()
    runtime, a = three(recorder, tiered.Restart(delay=0.001))
    run = runtime.run()
    during: list[tuple[str, str, bool]] = []

    def sample(event: tiered.RunEvent) -> None:
        if event.kind in ("failure", "restart") or event.value == "restarting":
            during.append((event.kind, run.state, run.ready))

    run.listen(sample)
    async with run:
        a.crash()
        await until(lambda: a.lives == 2 and run.ready)
    assert ("restart", "restarting", False) in during
    assert all(state == "restarting" for kind, state, _ in during if kind != "failure")


# -- a stop during a restart ----------------------------------------------------------


@pytest.mark.trio
@SCHEDULES
async def test_a_stop_in_the_backoff_delay_abandons_the_restart(
    autojump_clock: MockClock, schedule: str
) -> None:
    """Leaving the block while the restart waits: no restart, every driver up stops once."""
    recorder = Recorder()
    runtime, a = three(recorder, tiered.Restart(delay=10.0), schedule=schedule)
    run = runtime.run()
    async with run:
        a.crash()
        await trio.sleep(1.0)
        began = trio.current_time()
    assert trio.current_time() - began == 0.0  # nothing waited for the delay
    assert run.statuses() == {
        "a": "failed",
        "b": "stopped",
        "d": "stopped",
        "c": "stopped",
    }
    assert (
        run.report.driver("a").error == "ConnectionError: a lost its backend in life 1"
    )
    assert [r.restarts for r in run.report.drivers] == [0, 0, 0, 0]
    for name in "abcd":
        recorder.assert_restarted(name, times=0)
    recorder.assert_stopped_exactly_once()
    recorder.assert_stopped_in_reverse("c", "b", "a")


@pytest.mark.trio
@SCHEDULES
async def test_a_stop_while_the_restart_starts_stops_what_is_up(
    autojump_clock: MockClock, schedule: str
) -> None:
    """Leaving the block while b initializes again: b is cancelled, a stops once more, c never began."""
    recorder = Recorder()
    runtime = tiered.Runtime("t", schedule=schedule)
    a = runtime.add(Member("a", recorder, tier=0, restart=tiered.Restart(delay=0.1)))
    slow = FaultyDriver(
        "b", tier=1, requires=("a",), delay={"initialize": 5.0}, recorder=recorder
    )
    runtime.add(slow)
    runtime.add(Member("c", recorder, tier=2, requires=("b",)))
    run = runtime.run()
    async with run:  # up at 5
        a.crash()
        await trio.sleep(2.0)  # the new life of b is in its initialize (5.1 to 10.1)
        left = trio.current_time()
    assert trio.current_time() - left == 0.0
    assert run.statuses() == {"a": "stopped", "b": "cancelled", "c": "cancelled"}
    c = run.report.driver("c")
    assert (c.reason, c.restarts) == (
        "cancelled: the run stopped before it restarted",
        0,
    )
    assert [run.report.driver(n).restarts for n in "ab"] == [1, 1]
    assert recorder.count("b", "initialize", "cancel") == 1
    recorder.assert_stopped_once_per_life()
    recorder.assert_never_running_without("b", "a")
    recorder.assert_never_running_without("c", "b")


@pytest.mark.anyio
async def test_a_stop_right_after_the_failure_abandons_the_restart() -> None:
    """Leaving the block as soon as the restart is announced: it never runs, the stop is quick.

    A bug once: a stop that came before the supervisor's task had begun
    waited for the whole restart, its 5 s delay included.
    """
    recorder = Recorder()
    runtime, a = three(recorder, tiered.Restart(delay=5.0))
    run = runtime.run()
    announced = anyio.Event()
    run.listen(lambda event: announced.set() if event.kind == "restart" else None)
    async with run:
        a.crash()
        await announced.wait()
        left = time.monotonic()
    assert time.monotonic() - left < 2.5
    assert a.lives == 1
    assert run.statuses()["a"] == "failed"
    recorder.assert_stopped_exactly_once()
    recorder.assert_stopped_in_reverse("c", "b", "a")


@pytest.mark.anyio
async def test_a_cancel_from_outside_during_a_restart_stops_everything_once() -> None:
    """A cancel scope around the run, cancelled while a restarts: each driver up stops once."""
    recorder = Recorder()
    runtime, a = three(recorder, tiered.Restart(delay=0.01))
    run = runtime.run()
    with anyio.CancelScope() as scope:
        async with run:
            a.crash()
            await until(lambda: recorder.count("a", "stop") == 1)
            scope.cancel()
            await anyio.sleep_forever()
    assert scope.cancelled_caught
    assert run.state == "stopped"
    recorder.assert_stopped_once_per_life()
    for dependent, requirement in (("b", "a"), ("c", "b")):
        recorder.assert_never_running_without(dependent, requirement)


# -- a real signal ------------------------------------------------------------------------

DAEMON = '''
"""A daemon whose driver 'a' crashes 0.2 s after it starts; its restart waits 60 s."""
import anyio
import tiered

runtime = tiered.Runtime("crashy", stop_timeout=5.0)


class A(tiered.Driver):
    name = "a"
    tier = 0
    restart = tiered.Restart(delay=60.0, max_delay=60.0)

    async def initialize(self, ctx):
        print("init a", flush=True)

        async def crash():
            await anyio.sleep(0.2)
            raise ConnectionError("the backend of a went away")

        ctx.start_soon(crash)

    async def stop(self, ctx):
        print("stop a", flush=True)


runtime.add(A())


@runtime.driver(tier=1, requires=("a",))
async def b(ctx):
    print("init b", flush=True)
    yield None
    print("stop b", flush=True)


@runtime.driver(tier=1)
async def c(ctx):
    print("init c", flush=True)
    yield None
    print("stop c", flush=True)
'''


@pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals")
@pytest.mark.parametrize("backend", ["asyncio", "uvloop", "trio"])
def test_sigterm_during_a_restart_stops_each_driver_once(
    backend: str, tmp_path: Path
) -> None:
    """A real SIGTERM while the restart waits 60 s: the daemon exits at once, 0, each stop once."""
    (tmp_path / "crashy.py").write_text(textwrap.dedent(DAEMON))
    command = tiered_command("run", "crashy:runtime", "--backend", backend)
    with Daemon(command, cwd=tmp_path, env={"PYTHONPATH": str(tmp_path)}) as d:
        d.wait_for("stderr", "restart 1 of 3 in 60s")
        d.wait_for("stdout", "stop a")  # stopped for its restart: in the delay
        sent = time.monotonic()
        d.signal(signal.SIGTERM)
        assert d.wait() == 0
        took = time.monotonic() - sent
    assert took < 10.0, d.output()
    out = d.stdout
    assert sorted(out) == ["init a", "init b", "init c", "stop a", "stop b", "stop c"]
    assert out.index("stop b") < out.index("stop a")
