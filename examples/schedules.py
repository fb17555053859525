"""One runtime, started with each schedule: the tier barrier, then dependencies.

docs/choosing-tiers.md walks through it.  Five drivers, whose delays stand
for I/O, in three inferred tiers:

- tier 0: ``database`` (slow, 0.2 s) and ``metrics`` (quick, 0.01 s);
- tier 1: ``cache`` requires ``database`` (0.05 s), ``alerts`` requires
  ``metrics`` (0.02 s);
- tier 2: ``dashboard`` requires ``alerts`` (0.15 s).

With ``schedule="tiers"`` each tier waits for the slowest driver of the one
below, so start-up takes the sum of each tier's slowest driver: about
0.2 + 0.05 + 0.15 s.  With ``schedule="dependencies"`` each driver starts as
soon as what it requires is up, so start-up takes the longest chain of
requirements: ``database`` then ``cache``, about 0.25 s, while ``metrics``,
``alerts`` and ``dashboard`` come up beside them.  For each schedule it prints
the start-up time, when ``dashboard`` began, and the critical chain
(``report.format_critical_chain()``: tier by tier under ``"tiers"``, along
the requirements under ``"dependencies"``)::

    python examples/schedules.py --backend trio
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

import anyio

import tiered

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

runtime = tiered.Runtime("shop")


def declare(
    name: str, seconds: float, *requires: tiered.DriverHandle[str]
) -> tiered.DriverHandle[str]:
    """A driver that takes ``seconds`` to start and requires ``requires``."""

    async def start(ctx: tiered.Context) -> AsyncIterator[str]:
        await anyio.sleep(seconds)  # stands for connecting, loading, probing
        yield name

    return runtime.driver(name=name, requires=requires)(start)


database = declare("database", 0.2)
metrics = declare("metrics", 0.01)
cache = declare("cache", 0.05, database)
alerts = declare("alerts", 0.02, metrics)
dashboard = declare("dashboard", 0.15, alerts)


async def start_with(schedule: str) -> tiered.Report:
    """Start the runtime with ``schedule``; the report, read once it is up."""
    async with runtime.run(schedule=schedule) as run:
        return run.report


async def compare() -> None:
    """Start the runtime with each schedule; print what each one waited on."""
    ready: dict[str, float] = {}
    for schedule in ("tiers", "dependencies"):
        report = await start_with(schedule)
        assert report.ready_at is not None
        ready[schedule] = report.ready_at
        began = report.driver("dashboard").phases["initialize"][0]
        print(f"schedule {schedule!r}: up in {report.ready_at:.3f}s")
        print(f"  dashboard began at {began:.3f}s")
        print("  critical chain:")
        # per tier under "tiers"; along the requirements under "dependencies"
        for line in report.format_critical_chain().splitlines():
            print(f"    {line}")
    print(
        f"dependencies took {ready['dependencies'] / ready['tiers']:.0%} of "
        "the time of tiers"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Compare the two schedules on the backend asked for; return the exit status."""
    parser = argparse.ArgumentParser(description="Tiers against dependencies.")
    parser.add_argument(
        "--backend", choices=("asyncio", "uvloop", "trio"), default="asyncio"
    )
    args = parser.parse_args(argv)
    if args.backend == "uvloop":
        anyio.run(compare, backend="asyncio", backend_options={"use_uvloop": True})
    else:
        anyio.run(compare, backend=args.backend)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
