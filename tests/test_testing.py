"""tiered.testing: faulty drivers, the recorder, running(), and the pytest plugin.

Tests marked ``anyio`` run on asyncio, uvloop and trio (tests/conftest.py);
tests marked ``trio`` use pytest-trio's ``autojump_clock``, so 90 s timeouts
pass in virtual time.  The plugin is tested as installed: small user suites
run in a pytest subprocess (``pytester``), under pytest-trio and under anyio's
plugin, and so does the suite that docs/testing.md shows.
"""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import anyio
import pytest
import trio

import tiered
import tiered.testing
from tiered.testing import Event, FaultyDriver, InjectedFault, Recorder, running

if TYPE_CHECKING:
    from trio.testing import MockClock

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "testing"


def three_tiers(recorder: Recorder, **faults: dict[str, Any]) -> tiered.Runtime:
    """secrets (tier 0), storage (tier 1), qemu (tier 2); faults by driver name."""
    runtime = tiered.Runtime("t")
    for tier, name in enumerate(("secrets", "storage", "qemu")):
        options = faults.get(name, {})
        runtime.add(FaultyDriver(name, tier=tier, recorder=recorder, **options))
    return runtime


def statuses(run: tiered.Run) -> dict[str, str]:
    """Each driver's status, from the run's report."""
    return {r.name: r.status for r in run.report.drivers}


# -- the module -------------------------------------------------------------


def test_importing_tiered_imports_neither_testing_nor_pytest() -> None:
    """`import tiered` stays small; `import tiered.testing` needs no pytest or trio."""
    code = textwrap.dedent(
        """
        import sys
        import tiered
        assert "tiered.testing" not in sys.modules, "tiered imported tiered.testing"
        assert "pytest" not in sys.modules, "tiered imported pytest"
        import tiered.testing
        assert "pytest" not in sys.modules, "tiered.testing imported pytest"
        assert "trio" not in sys.modules, "tiered.testing imported trio"
        assert "tiered.testing.pytest_plugin" not in sys.modules
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr


def test_public_names_are_exported_and_documented() -> None:
    """Every name in __all__ exists, and classes and functions say tiered.testing."""
    for name in tiered.testing.__all__:
        obj = getattr(tiered.testing, name)
        if isinstance(obj, type) or inspect.isfunction(obj):  # not the Literal aliases
            assert obj.__module__ == "tiered.testing", name
            assert obj.__doc__, name
    public = {
        n
        for n in dir(tiered.testing)
        if not n.startswith("_") and not inspect.ismodule(getattr(tiered.testing, n))
    }
    assert public - {"annotations"} == set(tiered.testing.__all__)


def test_plugin_is_registered_and_loaded() -> None:
    """The pytest11 entry point names the plugin, and this session loaded it."""
    from importlib.metadata import entry_points

    [ep] = [e for e in entry_points(group="pytest11") if e.name == "tiered"]
    assert ep.value == "tiered.testing.pytest_plugin"
    assert "tiered.testing.pytest_plugin" in sys.modules


# -- FaultyDriver: declaring ------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"fail_in": "start"}, "fail_in='start'; use one of 'initialize'"),
        ({"skip_in": "stop"}, "skip_in='stop'; use one of 'initialize', 'autostart'"),
        (
            {"fail_in": "stop", "hang_in": "stop"},
            "two faults in 'stop'; a phase can fail, hang or skip",
        ),
        ({"delay": -1}, "a delay of -1 for 'initialize'"),
        ({"delay": {"boot": 1.0}}, "delay='boot'"),
        ({"delay": {"stop": float("nan")}}, "a delay of nan for 'stop'"),
        ({"error": "boom"}, "error='boom'; pass an exception class"),
        ({"crash_after": -1}, "crash_after=-1; it is a finite number of seconds"),
        ({"crash_after": float("inf")}, "crash_after=inf; it is a finite number"),
        ({"crash_after": "5"}, "crash_after='5'; it is a finite number"),
        ({"crash_after": 1, "crash_times": 0}, "crash_times=0; it is an integer >= 1"),
        ({"crash_after": 1, "crash_times": 1.5}, "crash_times=1.5; it is an integer"),
        ({"crash_after": 1, "crash_from": 0}, "crash_from=0; it is an integer >= 1"),
        ({"crash_times": 2}, "crash_times or crash_from but no crash_after"),
        ({"crash_from": 2}, "crash_times or crash_from but no crash_after"),
        (
            {"crash_after": 1, "fail_in": "background"},
            "has crash_after= and a background fault or delay",
        ),
        (
            {"crash_after": 1, "delay": {"background": 2}},
            "has crash_after= and a background fault or delay",
        ),
    ],
)
def test_faulty_driver_refuses_a_bad_declaration(
    options: dict[str, object], message: str
) -> None:
    """A mistake in a FaultyDriver fails where it is made, saying how to fix it."""
    with pytest.raises(tiered.ConfigError, match=r"^FaultyDriver\(") as info:
        FaultyDriver("x", **options)  # type: ignore[arg-type]
    assert message in str(info.value)


def test_faulty_driver_is_checked_like_any_driver() -> None:
    """runtime.add() checks its declaration: requires given as a bare string."""
    runtime = tiered.Runtime("t")
    with pytest.raises(tiered.ConfigError, match=re.escape("requires=('secrets',)")):
        runtime.add(FaultyDriver("storage", requires="secrets"))


def test_faulty_driver_repr_shows_its_faults() -> None:
    """The repr names the driver, its tier and its faults (pytest shows it in ids)."""
    driver = FaultyDriver("storage", tier=1, fail_in="stop", delay={"initialize": 2})
    assert repr(driver) == (
        "<FaultyDriver 'storage' tier=1 fail_in='stop' delay={'initialize': 2.0}>"
    )
    assert repr(FaultyDriver("x")) == "<FaultyDriver 'x' tier=None>"
    crashy = FaultyDriver("c", crash_after=5, crash_times=2, crash_from=3)
    assert repr(crashy) == (
        "<FaultyDriver 'c' tier=None crash_after=5.0 crash_times=2 crash_from=3>"
    )


def test_crashes_in_says_which_lives_crash() -> None:
    """crash_from and crash_times pick the lives; None is every life from crash_from."""
    loop = FaultyDriver("a", crash_after=1.0)
    assert [loop.crashes_in(n) for n in (1, 2, 50)] == [True, True, True]
    window = FaultyDriver("a", crash_after=1.0, crash_times=2, crash_from=2)
    assert [window.crashes_in(n) for n in (1, 2, 3, 4)] == [False, True, True, False]
    assert not FaultyDriver("a").crashes_in(1)


# -- FaultyDriver: running, on every backend --------------------------------


@pytest.mark.anyio
async def test_without_faults_every_phase_runs_and_is_recorded() -> None:
    """No fault: initialize, autostart, reload and stop run once each, recorded."""
    recorder = Recorder()
    runtime = tiered.Runtime("t")
    driver = runtime.add(FaultyDriver("a", value={"k": 1}, recorder=recorder))
    async with runtime.run() as run:
        assert run.get("a").value == {"k": 1}
        assert await run.reload() == ()
    assert [(e.phase, e.kind) for e in recorder.events] == [
        ("initialize", "begin"),
        ("initialize", "end"),
        ("autostart", "begin"),
        ("autostart", "end"),
        ("reload", "begin"),
        ("reload", "end"),
        ("stop", "begin"),
        ("stop", "end"),
    ]
    assert {e.tier for e in recorder.events} == {0}
    assert driver.calls == {"initialize": 1, "autostart": 1, "reload": 1, "stop": 1}


@pytest.mark.anyio
@pytest.mark.parametrize("phase", ["initialize", "autostart"])
async def test_fail_in_a_startup_phase_rolls_back(
    phase: Literal["initialize", "autostart"],
) -> None:
    """A failure in storage's start-up: StartupError, qemu never starts, tiers stop."""
    recorder = Recorder()
    run = three_tiers(recorder, storage={"fail_in": phase}).run()
    with pytest.raises(tiered.StartupError) as info:
        async with run:
            pytest.fail("start-up should have failed")
    [error] = info.value.exceptions
    assert isinstance(error, InjectedFault)
    assert f"driver 'storage' fails in {phase}" in str(error)
    assert any(f"phase {phase}" in note for note in error.__notes__)
    assert recorder.count("storage", phase, "fail") == 1
    recorder.assert_not_started("qemu")
    recorder.assert_stopped_exactly_once()
    recorder.assert_stopped_in_reverse()
    if phase == "initialize":
        recorder.assert_not_stopped("storage")
    else:
        recorder.assert_stopped_exactly_once("storage", "secrets")


@pytest.mark.anyio
async def test_fail_in_stop_raises_shutdown_error_after_every_stop() -> None:
    """A failing stop is a ShutdownError; the other drivers still stop, in reverse."""
    recorder = Recorder()
    run = three_tiers(recorder, storage={"fail_in": "stop"}).run()
    with pytest.raises(tiered.ShutdownError) as info:
        async with run:
            pass
    assert info.group_contains(InjectedFault, match="fails in stop")
    recorder.assert_stopped_exactly_once("secrets", "storage", "qemu")
    recorder.assert_stopped_in_reverse()
    assert statuses(run)["storage"] == "failed"


@pytest.mark.anyio
async def test_fail_in_reload_is_returned_not_raised() -> None:
    """run.reload() returns the injected fault; the run goes on."""
    runtime = tiered.Runtime("t")
    runtime.add(FaultyDriver("a", fail_in="reload"))
    async with runtime.run() as run:
        [error] = await run.reload()
        assert isinstance(error, InjectedFault)
        assert statuses(run)["a"] == "running"


@pytest.mark.anyio
@pytest.mark.parametrize("phase", ["initialize", "autostart"])
async def test_skip_in_a_phase_skips_the_driver(
    phase: Literal["initialize", "autostart"],
) -> None:
    """skip_in raises tiered.Skip: the driver is skipped, the run comes up."""
    recorder = Recorder()
    runtime = tiered.Runtime("t")
    runtime.add(FaultyDriver("kvm", skip_in=phase, recorder=recorder))
    runtime.add(FaultyDriver("net", recorder=recorder))
    async with runtime.run() as run:
        assert statuses(run) == {"kvm": "skipped", "net": "running"}
    [skip] = [e for e in recorder.of("kvm") if e.kind == "skip"]
    assert skip.phase == phase
    assert skip.detail == f"Skip: driver 'kvm' skips itself in {phase} (tiered.testing)"


@pytest.mark.anyio
async def test_error_may_be_a_class_or_an_instance() -> None:
    """error=OSError is made with the message; an instance is raised as is."""
    disk_full = OSError(28, "No space left on device")
    runtime = tiered.Runtime("t")
    runtime.add(FaultyDriver("a", fail_in="reload", error=OSError))
    runtime.add(FaultyDriver("b", fail_in="reload", error=disk_full))
    async with runtime.run() as run:
        errors = await run.reload()
    [made] = [e for e in errors if e is not disk_full]
    assert disk_full in errors
    assert type(made) is OSError
    assert str(made) == "driver 'a' fails in reload (fault injected by tiered.testing)"


@pytest.mark.anyio
async def test_an_optional_driver_failing_lets_the_run_go_on() -> None:
    """optional=True, fail_in='initialize': failed, logged, and the run is up."""
    runtime = tiered.Runtime("t")
    runtime.add(FaultyDriver("gpu", optional=True, fail_in="initialize"))
    runtime.add(FaultyDriver("net"))
    async with runtime.run() as run:
        assert statuses(run) == {"gpu": "failed", "net": "running"}


@pytest.mark.anyio
async def test_fail_in_background_stops_the_run() -> None:
    """A background task that fails once the run is up: ShutdownError, phase background."""
    recorder = Recorder()
    runtime = tiered.Runtime("t")
    runtime.add(
        FaultyDriver(
            "qemu", fail_in="background", delay={"background": 0.01}, recorder=recorder
        )
    )
    with pytest.raises(tiered.ShutdownError) as info:
        async with runtime.run():
            await anyio.sleep_forever()  # the run's failure cancels the body
    assert info.group_contains(InjectedFault, match="fails in background")
    assert recorder.count("qemu", "background", "fail") == 1
    recorder.assert_stopped_exactly_once("qemu")


@pytest.mark.anyio
async def test_hang_in_background_is_cancelled_at_stop() -> None:
    """A background task that never returns is cancelled when its driver stops."""
    recorder = Recorder()
    runtime = tiered.Runtime("t")
    runtime.add(FaultyDriver("qemu", hang_in="background", recorder=recorder))
    async with runtime.run():
        await anyio.sleep(0.01)
    assert [e.kind for e in recorder.events if e.phase == "background"] == [
        "begin",
        "cancel",
    ]
    # cancelled first, then the driver's stop runs (the contract's order)
    assert [(e.phase, e.kind) for e in recorder.events[-3:]] == [
        ("background", "cancel"),
        ("stop", "begin"),
        ("stop", "end"),
    ]


@pytest.mark.anyio
async def test_a_crash_without_restart_stops_the_run() -> None:
    """crash_after alone: the life's task raises after start-up; the run stops."""
    recorder = Recorder()
    runtime = tiered.Runtime("t")
    qemu = runtime.add(FaultyDriver("qemu", crash_after=0.05, recorder=recorder))
    with pytest.raises(tiered.ShutdownError) as info:
        async with runtime.run():
            await anyio.sleep_forever()  # the run's failure cancels the body
    assert info.group_contains(InjectedFault, match="'qemu' crashes in life 1")
    assert (qemu.lives, qemu.calls["background"]) == (1, 1)
    assert [(e.phase, e.kind) for e in recorder.events[-3:]] == [
        ("background", "fail"),
        ("stop", "begin"),
        ("stop", "end"),
    ]


@pytest.mark.anyio
async def test_a_crash_with_restart_recovers_after_crash_times() -> None:
    """crash_times=2 with a restart: two crashes, two restarts, then it holds."""
    recorder = Recorder()
    runtime = tiered.Runtime("t")
    policy = tiered.Restart(delay=0.001)
    storage = runtime.add(
        FaultyDriver(
            "storage",
            restart=policy,
            crash_after=0.02,
            crash_times=2,
            recorder=recorder,
        )
    )
    async with runtime.run() as run:
        with anyio.fail_after(10):
            while not (storage.lives == 3 and run.ready):  # noqa: ASYNC110
                await anyio.sleep(0.005)
        await anyio.sleep(0.05)  # longer than crash_after: the third life holds
        assert run.report.driver("storage").restarts == 2
    assert storage.lives == 3
    assert [e.kind for e in recorder.events if e.phase == "background"] == [
        "begin",
        "fail",
        "begin",
        "fail",
        "begin",
        "cancel",
    ]
    recorder.assert_restarted("storage", times=2)
    recorder.assert_stopped_once_per_life()


# -- FaultyDriver: virtual time, with pytest-trio ---------------------------


@pytest.mark.trio
async def test_a_crash_loop_runs_on_virtual_time(autojump_clock: MockClock) -> None:
    """Every life crashes 10 s in: restarts after 0.1, 0.2, 0.4 s, then it gives up."""
    recorder = Recorder()
    runtime = tiered.Runtime("t")
    policy = tiered.Restart(max_restarts=3, delay=0.1)
    runtime.add(FaultyDriver("a", restart=policy, crash_after=10.0, recorder=recorder))
    began = trio.current_time()
    with pytest.raises(tiered.ShutdownError, match="gave up restarting a"):
        async with runtime.run():
            await trio.sleep_forever()
    assert trio.current_time() - began == pytest.approx(40.7)
    lives = [e.at - began for e in recorder.events if e.phase == "initialize"][::2]
    assert lives == pytest.approx([0.0, 10.1, 20.3, 30.7])


@pytest.mark.trio
async def test_crash_from_spares_the_first_lives(autojump_clock: MockClock) -> None:
    """b (crash_from=2) runs well until a's crash restarts it; its second life crashes."""
    recorder = Recorder()
    runtime = tiered.Runtime("t")
    policy = tiered.Restart(delay=0.5)
    runtime.add(FaultyDriver("a", restart=policy, crash_after=10, crash_times=1))
    b = runtime.add(
        FaultyDriver(
            "b",
            requires=("a",),
            restart=policy,
            crash_after=3,
            crash_times=1,
            crash_from=2,
            recorder=recorder,
        )
    )
    async with runtime.run() as run:
        await trio.sleep(30.0)
        assert (b.lives, run.report.driver("b").restarts) == (3, 2)
    # b: up at 0; restarted with a at 10.5; crashes at 13.5, up again at 14
    lives = [e.at for e in recorder.events if e.phase == "initialize"][::2]
    assert [t - lives[0] for t in lives] == pytest.approx([0.0, 10.5, 14.0])


@pytest.mark.trio
@pytest.mark.parametrize("phase", ["initialize", "autostart"])
async def test_a_hang_in_startup_times_out_after_90_virtual_seconds(
    phase: Literal["initialize", "autostart"], autojump_clock: MockClock
) -> None:
    """A hang fails start-up after the default 90 s, in virtual time."""
    recorder = Recorder()
    run = three_tiers(recorder, storage={"hang_in": phase}).run()
    start = trio.current_time()
    with pytest.raises(tiered.StartupError) as info:
        async with run:
            pytest.fail("start-up should have failed")
    assert trio.current_time() - start == pytest.approx(90.0)
    assert info.group_contains(tiered.DriverTimeout)
    assert recorder.count("storage", phase, "cancel") == 1
    recorder.assert_not_started("qemu")
    recorder.assert_stopped_exactly_once()


@pytest.mark.trio
async def test_a_hang_in_stop_is_cut_after_90_virtual_seconds(
    autojump_clock: MockClock,
) -> None:
    """A stop that hangs fails after 90 s; the tier below still stops after it."""
    recorder = Recorder()
    run = three_tiers(recorder, qemu={"hang_in": "stop"}).run()
    with pytest.raises(tiered.ShutdownError) as info:
        async with run:
            start = trio.current_time()
    assert trio.current_time() - start == pytest.approx(90.0)
    assert info.group_contains(tiered.DriverTimeout)
    recorder.assert_stopped_in_reverse()
    recorder.assert_stopped_exactly_once()
    assert statuses(run) == {
        "secrets": "stopped",
        "storage": "stopped",
        "qemu": "failed",
    }


@pytest.mark.trio
async def test_delays_are_exact_in_virtual_time(autojump_clock: MockClock) -> None:
    """A delay per phase shows, to the microsecond, in the report."""
    runtime = tiered.Runtime("t")
    runtime.add(FaultyDriver("a", delay={"initialize": 2.0, "autostart": 3.0}))
    runtime.add(FaultyDriver("b", tier=1, delay=0.5))  # a number: initialize only
    async with runtime.run() as run:
        report = run.report
    a, b = report.driver("a"), report.driver("b")
    assert a.duration("initialize") == pytest.approx(2.0)
    assert a.duration("autostart") == pytest.approx(3.0)
    assert b.phases["initialize"][0] == pytest.approx(5.0)
    assert report.ready_at == pytest.approx(5.5)
    assert b.duration("autostart") == pytest.approx(0.0)
    assert run.report.driver("b").duration("stop") == pytest.approx(0.0)


@pytest.mark.trio
async def test_a_driver_timeout_of_its_own_is_honoured(
    autojump_clock: MockClock,
) -> None:
    """start_timeout on the FaultyDriver overrides the runtime's 90 s."""
    runtime = tiered.Runtime("t")
    runtime.add(FaultyDriver("a", hang_in="autostart", start_timeout=5.0))
    start = trio.current_time()
    with pytest.raises(tiered.StartupError):
        async with runtime.run():
            pass
    assert trio.current_time() - start == pytest.approx(5.0)


# -- Recorder: on real runs -------------------------------------------------


@pytest.mark.anyio
async def test_recorder_assertions_hold_on_a_run_that_goes_well() -> None:
    """Up in tier order, down in reverse, each stopped once."""
    recorder = Recorder()
    async with three_tiers(recorder).run():
        recorder.assert_started("secrets", "storage", "qemu")
        recorder.assert_started_before("secrets", "storage")
        recorder.assert_started_before("storage", "qemu")
        recorder.assert_not_stopped("secrets")
        assert recorder.started() == ["secrets", "storage", "qemu"]
    recorder.assert_stopped_in_reverse()
    recorder.assert_stopped_exactly_once()
    assert recorder.stopped() == ["qemu", "storage", "secrets"]


@pytest.mark.anyio
async def test_recorder_assertions_fail_on_a_real_run_in_the_wrong_order() -> None:
    """Asked the wrong way round, each assertion fails and shows the log."""
    recorder = Recorder()
    async with three_tiers(recorder).run():
        with pytest.raises(AssertionError, match="'secrets' began to initialize at #0"):
            recorder.assert_started_before("storage", "secrets")
        with pytest.raises(AssertionError, match="expected 'qemu' not to start"):
            recorder.assert_not_started("qemu")
    with pytest.raises(AssertionError, match="expected 'qemu' not to stop") as info:
        recorder.assert_not_stopped("qemu")
    assert "recorded events (18):" in str(info.value)


@pytest.mark.anyio
async def test_phase_records_how_a_hand_written_hook_ended() -> None:
    """recorder.phase() records end, fail, skip and cancel, and re-raises."""
    recorder = Recorder()

    class Hand(tiered.Driver):
        async def initialize(self, ctx: tiered.Context) -> None:
            with recorder.phase(ctx, "initialize"):
                await anyio.lowlevel.checkpoint()

        async def reload(self, ctx: tiered.Context) -> None:
            with recorder.phase(ctx, "reload"):
                raise ValueError("bad config")

        async def stop(self, ctx: tiered.Context) -> None:
            with anyio.move_on_after(0.001), recorder.phase(ctx, "stop"):
                await anyio.sleep_forever()

    class Skipper(tiered.Driver):
        async def initialize(self, ctx: tiered.Context) -> None:
            with recorder.phase(ctx, "initialize"):
                raise tiered.Skip("no /dev/kvm")

    runtime = tiered.Runtime("t")
    runtime.add(Hand())
    runtime.add(Skipper())
    async with runtime.run() as run:
        [error] = await run.reload()
        assert isinstance(error, ValueError)
    kinds = {(e.driver, e.phase, e.kind): e.detail for e in recorder.events}
    assert kinds[("hand", "initialize", "end")] == ""
    assert kinds[("hand", "reload", "fail")] == "ValueError: bad config"
    assert kinds[("skipper", "initialize", "skip")] == "Skip: no /dev/kvm"
    assert ("hand", "stop", "cancel") in kinds


# -- Recorder: failure messages, from logs written by hand ------------------


def log(*lines: str) -> Recorder:
    """A recorder holding events written as 'tier driver.phase kind'."""
    recorder = Recorder()
    for i, line in enumerate(lines):
        tier, what, kind = line.split()
        driver, phase = what.split(".")
        recorder.events.append(Event(driver, int(tier), phase, kind, float(i)))  # type: ignore[arg-type]
    return recorder


GOOD = (
    "0 a.initialize begin",
    "0 a.initialize end",
    "1 b.initialize begin",
    "1 b.initialize end",
    "1 b.stop begin",
    "1 b.stop end",
    "0 a.stop begin",
    "0 a.stop end",
)


def test_hand_written_good_log_passes() -> None:
    """The log the contract describes satisfies every assertion."""
    recorder = log(*GOOD)
    recorder.assert_started("a", "b")
    recorder.assert_started_before("a", "b")
    recorder.assert_stopped_in_reverse()
    recorder.assert_stopped_in_reverse("a", "b")
    recorder.assert_stopped_exactly_once()
    recorder.assert_stopped_exactly_once("a")


def test_started_before_fails_when_the_second_began_first() -> None:
    """b began to initialize while a was still initializing: the message says where."""
    recorder = log("0 a.initialize begin", "1 b.initialize begin", "0 a.initialize end")
    with pytest.raises(AssertionError) as info:
        recorder.assert_started_before("a", "b")
    message = str(info.value)
    assert message.startswith(
        "expected 'a' to be up before 'b' began to initialize, but 'b' began to "
        "initialize at #1, before 'a' was up at #2\n"
    )
    assert "recorded events (3):" in message
    assert "  #1      1.000s  tier 1  b.initialize  begin\n" in message


def test_started_before_waits_for_autostart_too() -> None:
    """Up means autostart ended as well, when one began."""
    recorder = log(
        "0 a.initialize begin",
        "0 a.initialize end",
        "0 a.autostart begin",
        "1 b.initialize begin",
        "0 a.autostart end",
    )
    with pytest.raises(AssertionError, match="before 'a' was up at #4"):
        recorder.assert_started_before("a", "b")


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            ("0 a.initialize begin", "0 a.initialize fail"),
            "expected 'a' to be up before 'b' began to initialize, but the "
            "initialize of 'a' ended in fail at #1",
        ),
        (
            ("0 a.initialize begin", "0 a.initialize end"),
            "but 'b' never began to initialize",
        ),
    ],
)
def test_started_before_fails_when_one_never_started(
    lines: tuple[str, ...], message: str
) -> None:
    """A driver that never came up, or never began: said plainly."""
    with pytest.raises(AssertionError, match=message):
        log(*lines).assert_started_before("a", "b")


@pytest.mark.parametrize(
    ("lines", "story"),
    [
        ((), "'a' recorded nothing"),
        (("0 a.stop begin",), "'a' never began to initialize"),
        (
            ("0 a.initialize begin", "0 a.initialize end", "0 a.autostart begin"),
            "the autostart of 'a' began at #3 and has not ended",
        ),
        (
            ("0 a.initialize begin", "0 a.initialize cancel"),
            "the initialize of 'a' ended in cancel at #2",
        ),
    ],
)
def test_started_says_why_a_driver_is_not_up(
    lines: tuple[str, ...], story: str
) -> None:
    """assert_started tells where in the log the driver's start-up stopped."""
    with pytest.raises(
        AssertionError, match=f"^expected 'a' to come up, but {story}\n"
    ):
        log("0 z.initialize begin", *lines).assert_started("a")


def test_stopped_in_reverse_fails_when_a_lower_tier_stops_first() -> None:
    """Tier 0 began to stop while tier 1 was stopping: the message names both."""
    recorder = log(
        *GOOD[:4],
        "1 b.stop begin",
        "0 a.stop begin",
        "1 b.stop end",
        "0 a.stop end",
    )
    with pytest.raises(AssertionError) as info:
        recorder.assert_stopped_in_reverse()
    assert str(info.value).startswith(
        "expected tier 1 to stop before tier 0, but 'a' (tier 0) began to stop at "
        "#5 while 'b' (tier 1) had not finished stopping (it did at #6)\n"
    )


def test_stopped_in_reverse_fails_when_a_stop_never_ended() -> None:
    """A stop still running when the lower tier began: 'was still stopping'."""
    recorder = log(*GOOD[:4], "1 b.stop begin", "0 a.stop begin", "0 a.stop end")
    with pytest.raises(AssertionError, match="'b' \\(tier 1\\) was still stopping"):
        recorder.assert_stopped_in_reverse()


def test_stopped_in_reverse_fails_for_a_driver_that_did_not_stop() -> None:
    """Named explicitly, a driver that never stopped fails the assertion."""
    recorder = log(*GOOD[:4], "1 b.stop begin", "1 b.stop end")
    recorder.assert_stopped_in_reverse()  # b alone: nothing to order
    with pytest.raises(AssertionError, match="expected 'a' to stop in reverse"):
        recorder.assert_stopped_in_reverse("a", "b")


def test_stopped_in_reverse_fails_when_nothing_stopped() -> None:
    """An assertion about nothing is a mistake in the test: it fails."""
    with pytest.raises(AssertionError, match="but none stopped"):
        log(*GOOD[:4]).assert_stopped_in_reverse()


@pytest.mark.parametrize(
    ("extra", "times"),
    [((), 0), (("0 a.stop begin", "0 a.stop end"), 2)],
)
def test_stopped_exactly_once_fails_for_zero_or_two_stops(
    extra: tuple[str, ...], times: int
) -> None:
    """An initialized driver stopped never, or twice: the message gives the count."""
    lines = (*GOOD[:6], *extra) if times == 0 else (*GOOD, *extra)
    with pytest.raises(
        AssertionError,
        match=f"expected 'a' to stop exactly once, but it stopped {times} times",
    ):
        log(*lines).assert_stopped_exactly_once()


def test_stopped_exactly_once_fails_when_nothing_initialized() -> None:
    """No driver finished initialize: nothing to check is a failure, not a pass."""
    with pytest.raises(AssertionError, match="no driver finished initialize"):
        log("0 a.initialize begin", "0 a.initialize fail").assert_stopped_exactly_once()


def test_not_started_and_not_stopped_fail_with_the_position() -> None:
    """The message gives where the unexpected event is in the log."""
    recorder = log(*GOOD)
    with pytest.raises(AssertionError, match="it began to initialize at #2"):
        recorder.assert_not_started("b")
    with pytest.raises(AssertionError, match="it began to stop at #6"):
        recorder.assert_not_stopped("a")
    recorder.assert_not_started("c")
    recorder.assert_not_stopped("c")


@pytest.mark.parametrize(
    "method",
    ["assert_started", "assert_not_started", "assert_not_stopped"],
)
def test_assertions_about_named_drivers_need_a_name(method: str) -> None:
    """Called with no driver, they would check nothing: TypeError instead."""
    with pytest.raises(TypeError, match=f"Recorder.{method}\\(\\) needs at least one"):
        getattr(Recorder(), method)()


# -- the assertions about restarts, on hand-written logs --------------------

RESTARTED = (
    "0 a.initialize begin",
    "0 a.initialize end",
    "1 b.initialize begin",
    "1 b.initialize end",
    "0 a.background fail",
    "1 b.stop begin",
    "1 b.stop end",
    "0 a.stop begin",
    "0 a.stop end",
    "0 a.initialize begin",
    "0 a.initialize end",
    "1 b.initialize begin",
    "1 b.initialize end",
    "1 b.stop begin",
    "1 b.stop end",
    "0 a.stop begin",
    "0 a.stop end",
)


def test_a_restart_done_right_passes() -> None:
    """a fails, b stops, a stops; a starts, b starts: every restart assertion holds."""
    recorder = log(*RESTARTED)
    assert (recorder.lives("a"), recorder.lives("b"), recorder.lives("c")) == (2, 2, 0)
    recorder.assert_restarted("a")
    recorder.assert_restarted("a", times=1)
    recorder.assert_restarted("c", times=0)
    recorder.assert_stopped_once_per_life()
    recorder.assert_stopped_once_per_life("a")
    recorder.assert_never_running_without("b", "a")


@pytest.mark.parametrize(
    ("driver", "times", "message"),
    [
        (
            "a",
            2,
            "expected 'a' to be restarted twice, but it was restarted once (it "
            "began to initialize twice)",
        ),
        ("c", None, "expected 'c' to be restarted, but it never began to initialize"),
    ],
)
def test_restarted_fails_with_the_counts(
    driver: str, times: int | None, message: str
) -> None:
    """A count that does not match, or no restart at all: the message says how many."""
    with pytest.raises(AssertionError) as info:
        log(*RESTARTED).assert_restarted(driver, times=times)
    first, second, *_ = str(info.value).splitlines()
    assert (first, second) == (message, "recorded events (17):")


def test_restarted_without_times_needs_a_second_life() -> None:
    """One life only is no restart."""
    with pytest.raises(AssertionError, match="'a' to be restarted, but it began to "):
        log(*GOOD).assert_restarted("a")


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            RESTARTED[:7] + RESTARTED[9:],  # a's first life never stopped
            "expected life 1 of 'a' (from #0) to stop exactly once, but it stopped "
            "0 times",
        ),
        (
            (*RESTARTED, "0 a.stop begin"),
            "expected life 2 of 'a' (from #9) to stop exactly once, but it stopped "
            "twice (at #15, #17)",
        ),
        (
            ("0 a.initialize begin", "0 a.initialize fail", "0 a.stop begin"),
            "expected life 1 of 'a' (from #0), whose initialize did not end, not to "
            "stop, but it began to stop at #2",
        ),
    ],
)
def test_stopped_once_per_life_finds_the_life(
    lines: tuple[str, ...], message: str
) -> None:
    """A life stopped never, twice, or without having initialized: which one, and where."""
    recorder = log(*lines)
    with pytest.raises(AssertionError, match=re.escape(message)):
        recorder.assert_stopped_once_per_life("a")


def test_stopped_once_per_life_fails_when_nothing_initialized() -> None:
    """Nothing initialized: nothing to check is a failure, not a pass."""
    with pytest.raises(AssertionError, match="no driver finished initialize"):
        log("0 a.initialize begin").assert_stopped_once_per_life()


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            # b's second life begins before a's second is up
            (*RESTARTED[:9], RESTARTED[11], RESTARTED[9], RESTARTED[10]),
            "life 2 of 'b' (#9 to the end) was not within a time 'a' was up (up: "
            "#1 to #7, #11 to the end)",
        ),
        (
            # a stops while b, which requires it, still runs
            (*RESTARTED[:5], RESTARTED[7], RESTARTED[5], RESTARTED[6]),
            "life 1 of 'b' (#2 to #7) was not within a time 'a' was up (up: #1 to #5)",
        ),
        (
            ("1 b.initialize begin", "1 b.initialize end"),
            "life 1 of 'b' (#0 to the end) was not within a time 'a' was up (up: "
            "never)",
        ),
        (
            (
                "0 a.initialize begin",
                "0 a.initialize end",
                "0 a.autostart begin",
                "1 b.initialize begin",
                "0 a.autostart end",
            ),
            "life 1 of 'b' (#3 to the end) was not within a time 'a' was up (up: "
            "#4 to the end)",
        ),
    ],
)
def test_never_running_without_finds_the_life(
    lines: tuple[str, ...], message: str
) -> None:
    """b began before a was up, or ran on after a began to stop: the message says when."""
    with pytest.raises(AssertionError) as info:
        log(*lines).assert_never_running_without("b", "a")
    first = str(info.value).splitlines()[0]
    assert first == f"expected 'b' never to run without 'a', but {message}"


def test_never_running_without_counts_a_failed_start_as_a_life() -> None:
    """A life whose initialize failed ran too: it must have begun while a was up."""
    recorder = log(
        "1 b.initialize begin",
        "1 b.initialize fail",
        "0 a.initialize begin",
        "0 a.initialize end",
    )
    with pytest.raises(AssertionError, match=re.escape("life 1 of 'b' (#0 to #1)")):
        recorder.assert_never_running_without("b", "a")
    log("0 a.initialize begin").assert_never_running_without("b", "a")  # b never ran


def test_format_and_event_text() -> None:
    """The log reads as numbered lines; an event reads as driver.phase kind."""
    assert Recorder().format() == "recorded events: none"
    recorder = log("0 a.initialize begin")
    recorder.events.append(Event("a", 0, "initialize", "fail", 0.25, "OSError: disk"))
    assert recorder.format().splitlines() == [
        "recorded events (2):",
        "  #0      0.000s  tier 0  a.initialize  begin",
        "  #1      0.250s  tier 0  a.initialize  fail  (OSError: disk)",
    ]
    assert str(recorder.events[1]) == "a.initialize fail (OSError: disk)"
    assert repr(recorder) == "<tiered.testing.Recorder with 2 event(s)>"
    recorder.clear()
    assert recorder.events == []


# -- running() ---------------------------------------------------------------


@pytest.mark.anyio
async def test_running_is_up_in_the_block_and_stops_after() -> None:
    """running() returns the Run once every tier is up; leaving it stops them."""
    recorder = Recorder()
    async with running(three_tiers(recorder)) as run:
        assert statuses(run) == dict.fromkeys(("secrets", "storage", "qemu"), "running")
        recorder.assert_not_stopped("secrets")
    assert set(statuses(run).values()) == {"stopped"}
    recorder.assert_stopped_in_reverse()


@pytest.mark.anyio
async def test_running_raises_startup_error_unwrapped() -> None:
    """A failed start-up is the StartupError itself, not a group around it."""
    recorder = Recorder()
    with pytest.raises(tiered.StartupError):
        async with running(three_tiers(recorder, qemu={"fail_in": "initialize"})):
            pytest.fail("start-up should have failed")
    recorder.assert_stopped_exactly_once()


@pytest.mark.anyio
async def test_running_lets_the_block_finish_when_the_run_fails() -> None:
    """A background failure does not cancel the block; its ShutdownError comes after."""
    runtime = tiered.Runtime("t")
    runtime.add(FaultyDriver("qemu", fail_in="background", delay={"background": 0.01}))
    finished = False

    async def block() -> None:
        nonlocal finished
        async with running(runtime):
            await anyio.sleep(0.05)
            finished = True

    with pytest.raises(tiered.ShutdownError):
        await block()
    assert finished


@pytest.mark.anyio
async def test_running_lets_the_block_exception_through_unchanged() -> None:
    """The block's exception propagates as itself, with the run's failure as a note."""
    runtime = tiered.Runtime("t")
    runtime.add(FaultyDriver("a", fail_in="stop"))
    with pytest.raises(KeyError) as info:
        async with running(runtime):
            raise KeyError("mine")
    assert type(info.value) is KeyError
    [note] = info.value.__notes__
    assert note.startswith("meanwhile, the run of 't' failed: ShutdownError(")


@pytest.mark.anyio
async def test_running_refuses_what_is_not_a_runtime() -> None:
    """Given runtime.run() instead of the runtime, it says so."""
    runtime = tiered.Runtime("t")
    runtime.add(FaultyDriver("a"))
    with pytest.raises(
        TypeError, match=r"pass the runtime itself, not runtime\.run\(\)"
    ):
        async with running(runtime.run()):  # type: ignore[arg-type]
            pass


# -- the fixtures, in this very session --------------------------------------


@pytest.fixture
def tiered_runtime(tiered_recorder: Recorder) -> tiered.Runtime:
    """The runtime the tiered_run fixture runs in this module."""
    runtime = tiered.Runtime("fixture")
    runtime.add(FaultyDriver("secrets", tier=0, delay=3.0, recorder=tiered_recorder))  # fmt: skip
    runtime.add(FaultyDriver("storage", tier=1, recorder=tiered_recorder))
    return runtime


@pytest.mark.trio
async def test_tiered_run_under_pytest_trio_in_virtual_time(
    tiered_run: tiered.Run, tiered_recorder: Recorder, autojump_clock: MockClock
) -> None:
    """The fixture's run is up for the test, on the virtual clock: 3 s to start."""
    assert tiered_run.report.ready_at == pytest.approx(3.0)
    tiered_recorder.assert_started_before("secrets", "storage")
    tiered_recorder.assert_not_stopped("secrets", "storage")


@pytest.mark.anyio
async def test_tiered_run_under_anyio(
    tiered_run: tiered.Run, tiered_recorder: Recorder
) -> None:
    """The same fixture works for an anyio test, on each backend."""
    tiered_recorder.assert_started("secrets", "storage")
    assert tiered_run.get("storage").name == "storage"


# -- the plugin, installed, in user suites -----------------------------------
# Each runs pytest in a subprocess, in a directory of its own with no tiered
# configuration, so the plugin is found through its pytest11 entry point as a
# user's pytest finds it.

CONFTEST = """
import pytest
import tiered
from tiered.testing import FaultyDriver, Recorder


@pytest.fixture
def tiered_runtime(tiered_recorder: Recorder) -> tiered.Runtime:
    runtime = tiered.Runtime("user")
    runtime.add(FaultyDriver("secrets", tier=0, delay=60.0, recorder=tiered_recorder))
    runtime.add(FaultyDriver("storage", tier=1, recorder=tiered_recorder))
    return runtime


@pytest.fixture
def broken_in_background() -> tiered.Runtime:
    runtime = tiered.Runtime("broken")
    runtime.add(FaultyDriver("qemu", fail_in="background", delay={"background": 0.05}))
    return runtime
"""

INI = """
[pytest]
filterwarnings = error
addopts = --strict-markers -p no:cacheprovider
"""


@pytest.fixture
def user_suite(pytester: pytest.Pytester) -> pytest.Pytester:
    """A directory with a user's conftest.py and pytest.ini, no tiered config."""
    pytester.makeini(INI)
    pytester.makeconftest(CONFTEST)
    return pytester


def test_plugin_under_pytest_trio(user_suite: pytest.Pytester) -> None:
    """Installed, the fixtures work in a pytest-trio suite, on virtual time."""
    user_suite.makepyfile(
        test_user="""
        import pytest
        import trio
        import tiered
        from tiered.testing import FaultyDriver

        pytestmark = pytest.mark.trio

        async def test_up(tiered_run, tiered_recorder, autojump_clock):
            assert tiered_run.report.ready_at == pytest.approx(60.0)
            tiered_recorder.assert_started_before("secrets", "storage")

        async def test_hang_takes_90_virtual_seconds(autojump_clock):
            runtime = tiered.Runtime("h")
            runtime.add(FaultyDriver("stuck", hang_in="initialize"))
            start = trio.current_time()
            with pytest.raises(tiered.StartupError):
                async with runtime.run():
                    pass
            assert trio.current_time() - start == pytest.approx(90.0)
        """,
        test_broken="""
        import pytest
        import trio

        @pytest.fixture
        def tiered_runtime(broken_in_background):
            return broken_in_background

        @pytest.mark.trio
        async def test_broken(tiered_run, autojump_clock):
            await trio.sleep(5)
            print("the test ran to its end")
        """,
    )
    result = user_suite.runpytest_subprocess("-s")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*the test ran to its end*",
            "*ShutdownError: runtime 'broken' stopped with errors (qemu)*",
        ]
    )


def test_plugin_under_anyio(user_suite: pytest.Pytester) -> None:
    """Installed, the fixtures work for anyio tests: asyncio, trio, trio's MockClock."""
    user_suite.makepyfile(
        test_user="""
        import pytest
        import tiered
        from trio.testing import MockClock
        from tiered.testing import FaultyDriver

        pytestmark = pytest.mark.anyio

        @pytest.fixture(params=["asyncio", "trio", "virtual"])
        def anyio_backend(request):
            if request.param == "virtual":
                return ("trio", {"clock": MockClock(autojump_threshold=0)})
            return request.param

        @pytest.fixture
        def tiered_runtime(anyio_backend, tiered_recorder):
            # 60 s of start-up: only virtual on trio's MockClock
            seconds = 60.0 if isinstance(anyio_backend, tuple) else 0.01
            runtime = tiered.Runtime("user")
            runtime.add(FaultyDriver("secrets", delay=seconds, recorder=tiered_recorder))
            runtime.add(FaultyDriver("storage", tier=1, recorder=tiered_recorder))
            return runtime

        async def test_up(tiered_run, tiered_recorder, anyio_backend):
            if isinstance(anyio_backend, tuple):
                assert tiered_run.report.ready_at == pytest.approx(60.0)
            tiered_recorder.assert_started_before("secrets", "storage")
        """,
        test_broken="""
        import anyio
        import pytest

        @pytest.fixture
        def tiered_runtime(broken_in_background):
            return broken_in_background

        @pytest.mark.anyio
        @pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
        async def test_broken(tiered_run, anyio_backend):
            await anyio.sleep(0.2)  # the run fails meanwhile, after 0.05 s
            print("the test ran to its end")
        """,
    )
    result = user_suite.runpytest_subprocess("-s")
    result.assert_outcomes(passed=5, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*the test ran to its end*",
            "*ERROR at teardown of test_broken[[]asyncio[]]*",
            "*ShutdownError: runtime 'broken' stopped with errors (qemu)*",
        ]
    )


def test_plugin_says_to_define_tiered_runtime(pytester: pytest.Pytester) -> None:
    """tiered_run without a tiered_runtime fixture: an error that shows how to add one."""
    pytester.makeini(INI)
    pytester.makepyfile(
        test_user="""
        import pytest

        @pytest.mark.trio
        async def test_up(tiered_run):
            pass
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*the tiered_run fixture runs the runtime that the tiered_runtime fixture*",
            "*def tiered_runtime() -> tiered.Runtime:*",
        ]
    )


def test_plugin_reports_a_failed_startup_at_setup(user_suite: pytest.Pytester) -> None:
    """A runtime that cannot start makes the test fail with its StartupError."""
    user_suite.makepyfile(
        test_user="""
        import pytest
        import tiered
        from tiered.testing import FaultyDriver

        @pytest.fixture
        def tiered_runtime():
            runtime = tiered.Runtime("bad")
            runtime.add(FaultyDriver("storage", fail_in="autostart"))
            return runtime

        @pytest.mark.trio
        async def test_never_runs(tiered_run):
            print("the test body ran")
        """
    )
    result = user_suite.runpytest_subprocess("-s")
    result.assert_outcomes(failed=1)
    result.stdout.no_fnmatch_line("*the test body ran*")
    result.stdout.fnmatch_lines(
        ["*StartupError*", "*InjectedFault*fails in autostart*"]
    )


# -- the suite that docs/testing.md shows --------------------------------------


def test_the_docs_example_suite_passes() -> None:
    """The suites in examples/testing, which docs/testing.md includes, pass."""
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", str(EXAMPLES)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "14 passed in" in out.stdout, out.stdout


def test_the_docs_page_includes_the_example_suite() -> None:
    """docs/testing.md includes the suite and the daemon it tests, by path."""
    page = (ROOT / "docs" / "testing.md").read_text()
    for name in ("virtd.py", "test_virtd.py", "test_virtd_anyio.py"):
        path = f"../examples/testing/{name}"
        assert f"```{{literalinclude}} {path}\n" in page
        assert (ROOT / "docs" / path).resolve().is_file()
