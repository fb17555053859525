"""Running: the barrier, concurrency within a tier, values, reload, background."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel
import pytest

import tiered

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

pytestmark = pytest.mark.anyio


def _three_tiers(log: list[str]) -> tiered.Runtime:
    rt = tiered.Runtime("three")

    for name, tier in (("secrets", 0), ("network", 0), ("storage", 1), ("qemu", 2)):

        class D(tiered.Driver):
            async def initialize(self, ctx: tiered.Context) -> None:
                log.append(f"init+ {ctx.name}")
                await anyio.sleep(0.01 if ctx.name == "network" else 0)
                log.append(f"init- {ctx.name}")

            async def autostart(self, ctx: tiered.Context) -> None:
                log.append(f"auto+ {ctx.name}")
                await anyio.lowlevel.checkpoint()
                log.append(f"auto- {ctx.name}")

            async def stop(self, ctx: tiered.Context) -> None:
                log.append(f"stop {ctx.name}")

        d = D()
        d.name, d.tier = name, tier
        rt.add(d)
    return rt


async def test_tier_waits_for_lower_tiers_initialize_and_autostart() -> None:
    """A tier begins only after every driver below finished initialize and autostart."""
    log: list[str] = []
    async with _three_tiers(log).run():
        pass
    tier0 = ["secrets", "network"]
    last_tier0 = max(log.index(f"auto- {n}") for n in tier0)
    assert log.index("init+ storage") > last_tier0
    assert log.index("init+ qemu") > log.index("auto- storage")


async def test_autostart_waits_for_every_initialize_of_its_tier() -> None:
    """No autostart of a tier begins before every initialize of that tier ended."""
    log: list[str] = []
    async with _three_tiers(log).run():
        pass
    # network initializes slowly; secrets' autostart must still wait for it
    assert log.index("auto+ secrets") > log.index("init- network")


async def test_drivers_of_a_tier_initialize_concurrently() -> None:
    """Both tier-0 drivers are inside initialize at the same time."""
    log: list[str] = []
    async with _three_tiers(log).run():
        pass
    assert log.index("init+ network") < log.index("init- secrets")


async def test_stop_runs_in_reverse_tier_order_exactly_once() -> None:
    """Leaving the block stops tier 2, then 1, then 0; each driver once."""
    log: list[str] = []
    async with _three_tiers(log).run():
        assert not [e for e in log if e.startswith("stop")]
    stops = [e.split()[1] for e in log if e.startswith("stop")]
    assert stops[:2] == ["qemu", "storage"]
    assert sorted(stops[2:]) == ["network", "secrets"]


async def test_values_by_name_handle_and_class() -> None:
    """ctx.get and run.get return the yielded value or the Driver instance."""
    rt = tiered.Runtime()

    @rt.driver(tier=0)
    async def secrets(ctx: tiered.Context) -> AsyncIterator[dict[str, str]]:
        yield {"ceph": "key"}

    class Storage(tiered.Driver):
        requires = (secrets,)
        seen: dict[str, str] | None = None

        async def initialize(self, ctx: tiered.Context) -> None:
            self.seen = ctx.get(secrets)

    storage = rt.add(Storage())

    @rt.driver(requires=(Storage, "secrets"))
    async def qemu(ctx: tiered.Context) -> AsyncIterator[str]:
        assert ctx.get(Storage) is storage
        assert ctx.get("secrets") == {"ceph": "key"}
        yield "qemu"

    async with rt.run() as run:
        assert storage.seen == {"ceph": "key"}
        assert run.get(qemu) == "qemu"
        assert run.get(Storage) is storage
        assert run.get("storage") is storage
        assert run.get(storage) is storage
    assert rt.check().tiers == (("secrets",), ("storage",), ("qemu",))


async def test_generator_driver_holds_a_task_group_across_its_yield() -> None:
    """A generator driver runs in one task, so it may keep a task group open."""
    rt = tiered.Runtime()
    ticks: list[int] = []

    @rt.driver
    async def ticker(ctx: tiered.Context) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tg:

            async def tick() -> None:
                while True:
                    ticks.append(1)
                    await anyio.sleep(0.001)

            tg.start_soon(tick)
            yield
            tg.cancel_scope.cancel()

    async with rt.run():
        await anyio.sleep(0.01)
    assert ticks


async def test_background_tasks_are_cancelled_before_stop() -> None:
    """ctx.start_soon tasks live until the driver stops and end before its stop."""
    rt = tiered.Runtime()
    log: list[str] = []

    class Poller(tiered.Driver):
        async def initialize(self, ctx: tiered.Context) -> None:
            ctx.start_soon(self.poll, "x")

        async def poll(self, tag: str) -> None:
            try:
                await anyio.sleep_forever()
            finally:
                log.append(f"poll {tag} ended")

        async def stop(self, ctx: tiered.Context) -> None:
            log.append("stop")

    rt.add(Poller())
    async with rt.run():
        await anyio.lowlevel.checkpoint()
        assert log == []
    assert log == ["poll x ended", "stop"]


async def test_background_failure_stops_the_run() -> None:
    """A crashing background task cancels the body and ends in ShutdownError."""
    rt = tiered.Runtime()
    stopped: list[str] = []

    @rt.driver
    async def base(ctx: tiered.Context) -> AsyncIterator[None]:
        yield
        stopped.append("base")

    class Flaky(tiered.Driver):
        requires = ("base",)

        async def initialize(self, ctx: tiered.Context) -> None:
            ctx.start_soon(self.crash)

        async def crash(self) -> None:
            await anyio.sleep(0.01)
            raise OSError("link down")

        async def stop(self, ctx: tiered.Context) -> None:
            stopped.append("flaky")

    rt.add(Flaky())
    with pytest.raises(tiered.ShutdownError) as info:
        async with rt.run() as run:
            await anyio.sleep_forever()
    assert stopped == ["flaky", "base"]
    [exc] = info.value.exceptions
    assert isinstance(exc, OSError)
    assert "driver 'flaky' (tier 1), phase background" in exc.__notes__
    assert run.report.driver("flaky").status == "failed"


async def test_background_of_failed_init_ends() -> None:
    """Background tasks of a driver whose initialize failed are cancelled with it."""
    rt = tiered.Runtime()
    started, ended = anyio.Event(), anyio.Event()

    class Half(tiered.Driver):
        async def initialize(self, ctx: tiered.Context) -> None:
            ctx.start_soon(self.forever)
            await started.wait()
            raise RuntimeError("half-way")

        async def forever(self) -> None:
            started.set()
            try:
                await anyio.sleep_forever()
            finally:
                ended.set()

    rt.add(Half())
    with pytest.raises(tiered.StartupError):
        async with rt.run():
            pass  # pragma: no cover
    assert ended.is_set()


async def test_body_exception_propagates_unwrapped() -> None:
    """An exception raised in the block comes out as itself, after every stop."""
    rt = tiered.Runtime()
    stopped: list[str] = []

    @rt.driver
    async def one(ctx: tiered.Context) -> AsyncIterator[None]:
        yield
        stopped.append("one")

    with pytest.raises(KeyError, match="boom"):
        async with rt.run():
            raise KeyError("boom")
    assert stopped == ["one"]


async def test_body_exception_wins_over_stop_failure_which_is_noted() -> None:
    """When the block raises and a stop fails, the block's exception propagates, noted."""
    rt = tiered.Runtime()

    @rt.driver
    async def bad_stop(ctx: tiered.Context) -> AsyncIterator[None]:
        yield
        raise OSError("disk gone")

    with pytest.raises(KeyError) as info:
        async with rt.run():
            raise KeyError("boom")
    assert any("OSError: disk gone" in n for n in info.value.__notes__)


async def test_outside_cancellation_of_the_body_stops_everything() -> None:
    """Cancelling a running run from outside stops every driver and propagates."""
    rt = tiered.Runtime()
    stopped: list[str] = []

    @rt.driver
    async def one(ctx: tiered.Context) -> AsyncIterator[None]:
        yield
        await anyio.lowlevel.checkpoint()  # a checkpoint: the stop is shielded
        stopped.append("one")

    with anyio.CancelScope() as scope:
        async with rt.run():
            scope.cancel()
            await anyio.sleep_forever()
    assert scope.cancelled_caught
    assert stopped == ["one"]


async def test_reload_runs_tier_by_tier_and_returns_errors() -> None:
    """reload() calls reload per tier in order; errors are returned, not raised."""
    rt = tiered.Runtime()
    log: list[str] = []

    class R(tiered.Driver):
        fail = False

        async def initialize(self, ctx: tiered.Context) -> None:
            pass

        async def reload(self, ctx: tiered.Context) -> None:
            log.append(f"+{ctx.name}")
            await anyio.sleep(0.001)
            log.append(f"-{ctx.name}")
            if self.fail:
                raise ValueError("bad config")

    for name, tier, fail in (("a", 0, False), ("b", 0, True), ("c", 1, False)):
        r = R()
        r.name, r.tier, r.fail = name, tier, fail
        rt.add(r)

    async with rt.run() as run:
        errors = await run.reload()
        assert run.report.driver("c").status == "running"
    assert log.index("+c") > max(log.index("-a"), log.index("-b"))
    assert log.index("+b") < log.index("-a")  # concurrent within the tier
    [err] = errors
    assert isinstance(err, ValueError)
    assert "driver 'b' (tier 0), phase reload" in err.__notes__


async def test_concurrent_reloads_wait_for_each_other() -> None:
    """A reload that arrives while one runs waits for it; they never overlap."""
    rt = tiered.Runtime()
    inside = 0
    most = 0

    class R(tiered.Driver):
        async def initialize(self, ctx: tiered.Context) -> None:
            pass

        async def reload(self, ctx: tiered.Context) -> None:
            nonlocal inside, most
            inside += 1
            most = max(most, inside)
            await anyio.sleep(0.005)
            inside -= 1

    rt.add(R())
    async with rt.run() as run, anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(run.reload)
    assert most == 1


async def test_runtime_runs_again_after_a_run() -> None:
    """A runtime can run several times, one run after another, each one fresh."""
    rt = tiered.Runtime()
    starts = 0

    @rt.driver
    async def counter(ctx: tiered.Context) -> AsyncIterator[int]:
        nonlocal starts
        starts += 1
        yield starts

    for expected in (1, 2, 3):
        async with rt.run() as run:
            assert run.get(counter) == expected


async def test_status_text_reaches_the_report() -> None:
    """ctx.status() is kept in the report."""
    rt = tiered.Runtime()

    @rt.driver
    async def pools(ctx: tiered.Context) -> AsyncIterator[None]:
        ctx.status("3 pools active")
        yield

    async with rt.run() as run:
        assert run.report.driver("pools").status_text == "3 pools active"


KI_SCRIPT = """
import os, signal, sys, time
import anyio, tiered

rt = tiered.Runtime("ki", stop_timeout=30)
where = sys.argv[2]

@rt.driver(tier=0)
async def base(ctx):
    yield
    print("stop base", flush=True)

@rt.driver(tier=1)
async def top(ctx):
    if where == "start":
        os.kill(os.getpid(), signal.SIGINT)
        await anyio.sleep(10)
    yield
    print("stop top", flush=True)
    if where == "stop":
        os.kill(os.getpid(), signal.SIGINT)
        await anyio.sleep(10)

async def main():
    async with rt.run():
        pass

t0 = time.monotonic()
try:
    anyio.run(main, backend=sys.argv[1])
except KeyboardInterrupt:
    print(f"KeyboardInterrupt after {time.monotonic() - t0:.1f}s", flush=True)
"""


@pytest.mark.parametrize("where", ["start", "stop"])
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_keyboard_interrupt_while_stopping(backend: str, where: str) -> None:
    """Ctrl-C (a real SIGINT) in start-up or stop ends quickly, every driver stopped once."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", KI_SCRIPT, backend, where],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    lines = out.stdout.splitlines()
    assert lines[-1].startswith("KeyboardInterrupt after"), out.stdout + out.stderr
    assert float(lines[-1].split()[-1].rstrip("s")) < 5
    expected = ["stop base"] if where == "start" else ["stop top", "stop base"]
    assert lines[:-1] == expected
