"""Runs whose reports tests/test_report.py and tests/test_svg.py read.

Each builder returns a fresh runtime whose hooks sleep with ``trio.sleep``,
so under pytest-trio's ``autojump_clock`` the report's times are exact; the
PNGs looked at for the report's look were drawn from these same runs.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import trio

import tiered

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

__all__ = [
    "LONG_ERROR",
    "dependencies",
    "failing",
    "report_of",
    "restarting",
    "virtd",
]

#: an error long enough to be cut, with markup that must be escaped
LONG_ERROR = "<script>alert('x')</script> & " + "pool unreachable; " * 30


def virtd(*, reload: float = 0.3) -> tiered.Runtime:
    """Three tiers that come up: a failed optional driver, a skipped one, a reload."""
    rt = tiered.Runtime("virtd", stop_timeout=5)

    @rt.driver(tier=0)
    async def secrets(ctx: tiered.Context) -> AsyncIterator[int]:
        await trio.sleep(1)
        yield 1
        await trio.sleep(0.5)

    @rt.driver(tier=0)
    async def network(ctx: tiered.Context) -> AsyncIterator[None]:
        await trio.sleep(2)
        yield

    @rt.driver(tier=0, optional=True)
    async def broken(ctx: tiered.Context) -> AsyncIterator[None]:
        await trio.sleep(0.2)
        if ctx.name:  # always: the yield below stays reachable for mypy
            raise OSError("no such device: /dev/kvm <is> & missing")
        yield  # pragma: no cover

    @rt.driver(tier=0)
    async def nodedev(ctx: tiered.Context) -> AsyncIterator[None]:
        await trio.sleep(0.3)
        if ctx.name:  # always: the yield below stays reachable for mypy
            raise tiered.Skip("no udev on this host")
        yield  # pragma: no cover

    class Storage(tiered.Driver):
        requires = (secrets,)

        async def initialize(self, ctx: tiered.Context) -> None:
            await trio.sleep(1)

        async def autostart(self, ctx: tiered.Context) -> None:
            await trio.sleep(3)

        async def reload(self, ctx: tiered.Context) -> None:
            await trio.sleep(reload)

        async def stop(self, ctx: tiered.Context) -> None:
            await trio.sleep(0.4)

    rt.add(Storage())

    @rt.driver(requires=(Storage, network))
    async def qemu(ctx: tiered.Context) -> AsyncIterator[None]:
        await trio.sleep(0.5)
        yield
        await trio.sleep(1)

    return rt


def failing(*, error: str = "pool 'images' is not reachable") -> tiered.Runtime:
    """Tier 1 fails (storage, after 1.5 s); tiers 2 and 3 never begin."""
    rt = tiered.Runtime("virtd", start_timeout=3)

    @rt.driver(tier=0)
    async def secrets(ctx: tiered.Context) -> AsyncIterator[int]:
        await trio.sleep(1)
        yield 1
        await trio.sleep(0.5)

    @rt.driver(tier=1, requires=(secrets,))
    async def storage(ctx: tiered.Context) -> AsyncIterator[None]:
        await trio.sleep(1.5)
        if ctx.name:  # always: the yield below stays reachable for mypy
            raise OSError(error)
        yield  # pragma: no cover

    @rt.driver(tier=1)
    async def network(ctx: tiered.Context) -> AsyncIterator[None]:
        await trio.sleep(10)  # cancelled when storage fails  # pragma: no cover
        yield  # pragma: no cover

    @rt.driver(tier=2, requires=(storage,))
    async def qemu(ctx: tiered.Context) -> AsyncIterator[None]:
        yield  # pragma: no cover

    @rt.driver(tier=3, requires=(qemu,))
    async def lxc(ctx: tiered.Context) -> AsyncIterator[None]:
        yield  # pragma: no cover

    return rt


def dependencies(*, limit: int | None = None) -> tiered.Runtime:
    """A DAG under ``schedule="dependencies"``: storage needs secrets, qemu both.

    Alone (no limit): secrets up at 1.0, network 1.5, storage 2.0, nodedev
    2.2 (unrelated), lxc 2.4 (after nodedev), qemu 2.5: the last one.
    """
    rt = tiered.Runtime(
        "virtd", schedule="dependencies", max_concurrent_starts=limit, stop_timeout=5
    )

    def sleeper(
        name: str,
        seconds: float,
        requires: tuple[str, ...] = (),
        after: tuple[str, ...] = (),
    ) -> None:
        async def driver(ctx: tiered.Context) -> AsyncIterator[None]:
            await trio.sleep(seconds)
            yield

        rt.driver(name=name, requires=requires, after=after)(driver)

    sleeper("secrets", 1.0)
    sleeper("network", 1.5)
    sleeper("nodedev", 2.2)
    sleeper("storage", 1.0, requires=("secrets",))
    sleeper("qemu", 0.5, requires=("storage", "network"))
    sleeper("lxc", 0.2, requires=("storage",), after=("nodedev",))
    return rt


def restarting(*, give_up: bool = False) -> tiered.Runtime:
    """storage's monitor fails 5 s after each start; qemu requires storage.

    Restarted once with a 2 s delay; with ``give_up`` it fails again after
    its restart, past ``max_restarts=1``, and the run gives up.
    """
    rt = tiered.Runtime("virtd", stop_timeout=5)
    lives = [0]
    policy = tiered.Restart(max_restarts=1 if give_up else 3, delay=2.0)

    @rt.driver(tier=0)
    async def secrets(ctx: tiered.Context) -> AsyncIterator[int]:
        await trio.sleep(1)
        yield 1

    @rt.driver(tier=1, requires=(secrets,), restart=policy)
    async def storage(ctx: tiered.Context) -> AsyncIterator[None]:
        await trio.sleep(1)
        lives[0] += 1
        if lives[0] == 1 or give_up:

            async def monitor() -> None:
                await trio.sleep(5)
                raise ConnectionError("ceph backend lost")

            ctx.start_soon(monitor)
        yield
        await trio.sleep(0.2)

    @rt.driver(requires=(storage,))
    async def qemu(ctx: tiered.Context) -> AsyncIterator[None]:
        await trio.sleep(0.5)
        yield
        await trio.sleep(0.3)

    return rt


async def report_of(
    rt: tiered.Runtime,
    body: Callable[[tiered.Run], Awaitable[object]] | float = 10.0,
) -> tiered.Report:
    """Run ``rt`` (``body``, or that many seconds up); the report once it stopped.

    What the run raises (a StartupError, a ShutdownError) is swallowed: the
    tests read the report of it.
    """
    run = rt.run()
    with contextlib.suppress(tiered.StartupError, tiered.ShutdownError):
        async with run:
            if callable(body):
                await body(run)
            else:
                await trio.sleep(body)
    return run.report
