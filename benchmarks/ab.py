"""Two versions of tiered side by side: CPU time against an anyio floor, per process.

    python benchmarks/ab.py e88d865 [--against HEAD] [--processes 20]
        [--backends asyncio uvloop trio] [--drivers 10000]

Each version's ``src/`` is taken with ``git archive`` (the working tree's own
with ``--against .``) and imported in fresh interpreters through
``PYTHONPATH``, interleaved: one process of each version per round.  A process
makes the same no-op generator drivers in 10 tiers, runs them (start and
stop, planning included, default timeouts on) and an anyio floor (a task
group per tier whose tasks wait to be told to stop, stopped in reverse),
three times each, and reports the median of its three CPU-time ratios:
tiered ÷ floor.  Dividing by a floor run in the same process takes out most
of what the machine does to both.  What ``docs/benchmarks.md`` reports as
"side by side with the core before the redesign" comes from this script.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from sources import source_of

TIERS = 10


def child(backend: str, drivers: int) -> float:
    """In a fresh interpreter: the median of three tiered ÷ floor CPU-time ratios."""
    import anyio
    import anyio.lowlevel

    import tiered

    per = drivers // TIERS

    def noop() -> Any:
        async def driver(ctx: tiered.Context) -> Any:
            yield None

        return driver

    def runtime() -> tiered.Runtime:
        rt = tiered.Runtime("ab")
        for t in range(TIERS):
            for i in range(per):
                rt.driver(name=f"d{t}_{i}", tier=t)(noop())
        return rt

    async def rest(event: anyio.Event) -> None:
        await event.wait()

    async def floor() -> None:
        events = []
        async with AsyncExitStack() as stack:
            for _ in range(TIERS):
                tg = await stack.enter_async_context(anyio.create_task_group())
                event = anyio.Event()
                for _ in range(per):
                    tg.start_soon(rest, event)
                events.append(event)
                await anyio.lowlevel.checkpoint()
            for event in reversed(events):
                event.set()

    async def main() -> float:
        ratios = []
        for _ in range(3):
            rt = runtime()
            gc.collect()
            began = time.process_time()
            async with rt.run():
                pass
            ours = time.process_time() - began
            gc.collect()
            began = time.process_time()
            await floor()
            ratios.append(ours / (time.process_time() - began))
        return statistics.median(ratios)

    name = "asyncio" if backend == "uvloop" else backend
    options = {"use_uvloop": True} if backend == "uvloop" else {}
    result: float = anyio.run(main, backend=name, backend_options=options)
    return result


def measure(
    versions: dict[str, Path], backend: str, processes: int, drivers: int
) -> dict[str, list[float]]:
    """``processes`` rounds, one process of each version a round, in turn."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # byte code cached, as users have it
    found: dict[str, list[float]] = {name: [] for name in versions}
    for _ in range(processes):
        for name, src in versions.items():
            env["PYTHONPATH"] = str(src)
            out = subprocess.run(
                [sys.executable, __file__, "--child", backend, str(drivers)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
                timeout=600,
            ).stdout
            found[name].append(float(out.split()[-1]))
    return found


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, measure, print one line per backend."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--child"]:
        print(f"{child(args[1], int(args[2])):.6f}")
        return 0
    parser = argparse.ArgumentParser(prog="benchmarks/ab.py", description=__doc__)
    parser.add_argument("rev", help="the version to compare (a git revision)")
    parser.add_argument("--against", default="HEAD", help="the other (., the tree)")
    parser.add_argument("--processes", type=int, default=20)
    parser.add_argument("--drivers", type=int, default=10_000)
    parser.add_argument("--backends", nargs="+", default=["asyncio", "uvloop", "trio"])
    options = parser.parse_args(args)
    if options.rev == options.against:
        parser.error("give two different versions")
    with tempfile.TemporaryDirectory() as tmp:
        versions = {
            options.against: source_of(options.against, Path(tmp) / "b"),
            options.rev: source_of(options.rev, Path(tmp) / "a"),
        }
        for backend in options.backends:
            found = measure(versions, backend, options.processes, options.drivers)
            new, old = (statistics.median(found[v]) for v in versions)
            spread = {v: f"{min(f):.3f}-{max(f):.3f}" for v, f in found.items()}
            print(
                f"{backend}: tiered ÷ floor, {options.against} {new:.3f} "
                f"({spread[options.against]}), {options.rev} {old:.3f} "
                f"({spread[options.rev]}): {new / old - 1:+.1%} "
                f"({options.processes} processes each)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
