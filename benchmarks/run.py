"""Start-up overhead of tiered against a hand-written anyio task group per tier.

A first, small benchmark (issue 5 grows it): N no-op drivers in T tiers, one
full start and stop, against the floor, the same work written by hand with one
anyio task group per tier for start and one per tier, in reverse, for stop.
Runs are interleaved in one process and compared as ratios of medians.

    python benchmarks/run.py [--drivers 10000] [--tiers 10] [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import TYPE_CHECKING, Any

import anyio

import tiered

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

BACKENDS: dict[str, tuple[str, dict[str, Any]]] = {
    "asyncio": ("asyncio", {}),
    "uvloop": ("asyncio", {"use_uvloop": True}),
    "trio": ("trio", {}),
}


def build(drivers: int, tiers: int) -> tiered.Runtime:
    """A runtime of no-op generator drivers spread evenly over the tiers."""
    rt = tiered.Runtime("bench")
    for i in range(drivers):

        async def noop(ctx: tiered.Context) -> Any:
            yield None

        rt.driver(name=f"d{i}", tier=i % tiers)(noop)
    return rt


async def with_tiered(rt: tiered.Runtime) -> None:
    """One start and stop through tiered."""
    async with rt.run():
        pass


async def by_hand(drivers: int, tiers: int) -> None:
    """The floor: a task group per tier to start, one per tier to stop."""

    async def start() -> None:
        await anyio.lowlevel.checkpoint()

    async def stop() -> None:
        await anyio.lowlevel.checkpoint()

    per_tier = drivers // tiers
    for _ in range(tiers):
        async with anyio.create_task_group() as tg:
            for _ in range(per_tier):
                tg.start_soon(start)
    for _ in range(tiers):
        async with anyio.create_task_group() as tg:
            for _ in range(per_tier):
                tg.start_soon(stop)


def timed(
    fn: Callable[..., Coroutine[Any, Any, None]],
    args: tuple[Any, ...],
    backend: tuple[str, dict[str, Any]],
) -> float:
    """Seconds one anyio.run of fn(*args) takes."""
    name, options = backend
    t0 = time.perf_counter()
    anyio.run(fn, *args, backend=name, backend_options=options)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    """Print, per backend, the median times and the ratio to the floor."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drivers", type=int, default=10_000)
    parser.add_argument("--tiers", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    rt = build(args.drivers, args.tiers)
    print(f"{args.drivers} no-op drivers in {args.tiers} tiers, {args.rounds} rounds")
    print(f"{'backend':<8} {'tiered':>10} {'by hand':>10} {'ratio':>7}")
    for label, backend in BACKENDS.items():
        ours: list[float] = []
        floor: list[float] = []
        for _ in range(args.rounds):  # interleaved, so drift hits both alike
            ours.append(timed(with_tiered, (rt,), backend))
            floor.append(timed(by_hand, (args.drivers, args.tiers), backend))
        a, b = statistics.median(ours), statistics.median(floor)
        print(f"{label:<8} {a * 1000:>8.1f}ms {b * 1000:>8.1f}ms {a / b:>6.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
