"""A driver that fails after start-up, restarted with its dependents, until it gives up.

docs/supervision.md walks through it.  Three drivers, as in small-virtd:

- tier 0, ``secrets``: a key, which never fails;
- tier 1, ``storage``: connects to a storage backend and watches the
  connection in a background task, which raises when the backend is lost;
  it is declared with ``restart=tiered.Restart(max_restarts=2, ...)``;
- tier 2, ``qemu``: requires ``storage``, so it restarts with it.

``main`` loses the backend three times.  The first two failures restart
``storage`` and ``qemu`` (``qemu`` stops first, then ``storage``; after the
backoff ``storage`` starts again, then ``qemu``); the third is one more than
``max_restarts`` within ``window``, so the run gives up and stops, and
leaving ``async with runtime.run()`` raises ``tiered.ShutdownError``.  What
the run says meanwhile (``run.state``, ``run.ready``, ``run.live``,
``run.get()``, the report's ``restarts`` and ``events``) is printed as it
happens::

    python examples/supervised.py --backend trio
"""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING

import anyio

import tiered

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

runtime = tiered.Runtime("supervised", start_timeout=5.0, stop_timeout=5.0)

#: storage's restart policy: short delays, so the example takes a second
RESTART = tiered.Restart(max_restarts=2, window=60.0, delay=0.05, max_delay=1.0)


class Backend:
    """A storage backend the driver connects to; ``main`` can make it go away."""

    def __init__(self) -> None:
        self.connections = 0
        self._lost: anyio.Event | None = None

    async def connect(self) -> anyio.Event:
        """A new connection: an event that is set when the backend is lost."""
        await anyio.sleep(0.01)  # stands for the connection's handshake
        self.connections += 1
        self._lost = anyio.Event()
        return self._lost

    def lose(self) -> None:
        """The backend goes away: the current connection breaks."""
        assert self._lost is not None
        self._lost.set()


BACKEND = Backend()


@runtime.driver(tier=0)
async def secrets(ctx: tiered.Context) -> AsyncIterator[str]:
    """A key for storage; it never fails."""
    yield "AQBx"


@runtime.driver(requires=(secrets,), restart=RESTART)
async def storage(ctx: tiered.Context) -> AsyncIterator[int]:
    """Connect to the backend, and fail (after start-up) when it is lost."""
    lost = await BACKEND.connect()

    async def watch() -> None:
        await lost.wait()
        msg = "the storage backend went away"
        raise ConnectionError(msg)

    # A background task that raises once the run is up is a failure after
    # start-up: the restart policy of this driver decides what it means.
    ctx.start_soon(watch)
    yield BACKEND.connections


@runtime.driver(requires=(storage,))
async def qemu(ctx: tiered.Context) -> AsyncIterator[str]:
    """Requires storage, so it is stopped and started again with it."""
    yield f"guests on connection {ctx.get(storage)}"


async def wait_until(run: tiered.Run, state: str) -> None:
    """Wait until ``run.state`` is ``state``, listening to the run's events."""
    changed = anyio.Event()

    def on_event(event: tiered.RunEvent) -> None:
        if event.kind == "state":
            changed.set()

    stop_listening = run.listen(on_event)
    try:
        while run.state != state:
            await changed.wait()
            changed = anyio.Event()
    finally:
        stop_listening()


def say_how_it_is(run: tiered.Run) -> None:
    """One line: the run's state, readiness and liveness, and qemu's value."""
    try:
        value = repr(run.get(qemu))
    except (tiered.DependencyError, tiered.UsageError) as exc:
        value = f"{type(exc).__name__}: {exc}"
    print(f"  state {run.state}, ready {run.ready}, live {run.live}")
    print(f"  run.get(qemu): {value}")


async def supervise() -> None:
    """Start the runtime, lose the storage backend three times, print what happens."""
    run = runtime.run()
    try:
        async with run:
            run.listen(print_incident)
            print("up:", ", ".join(f"{n} {s}" for n, s in run.statuses().items()))
            say_how_it_is(run)
            for loss in (1, 2):
                print(f"the storage backend goes away ({loss})")
                BACKEND.lose()
                await wait_until(run, "restarting")
                say_how_it_is(run)
                await wait_until(run, "running")
                say_how_it_is(run)
            print("the storage backend goes away (3)")
            BACKEND.lose()
            # one failure more than max_restarts within the window: the run
            # gives up and stops, which cancels this body
            await anyio.sleep_forever()
    except tiered.ShutdownError as exc:
        print(f"ShutdownError: {exc.message}")
        for failure in exc.failures:
            print(f"  {failure.describe()}")
    print(f"after the run: state {run.state}, live {run.live}")
    report = run.report
    for record in report.drivers:
        print(f"  {record.name}: {record.status}, {record.restarts} restart(s)")
    print("report.events (time, kind, driver, value):")
    for event in report.events:
        print(f"  {event.time:6.3f}s {event.kind:<8} {event.driver} {event.value!r}")


def print_incident(event: tiered.RunEvent) -> None:
    """The failures, restarts and give-ups, as the run announces them."""
    if event.kind in ("failure", "restart", "gave-up"):
        print(f"  event {event.kind}: {event.detail}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the example once on the backend asked for; return the exit status."""
    parser = argparse.ArgumentParser(description="Restarts, then a give-up.")
    parser.add_argument(
        "--backend", choices=("asyncio", "uvloop", "trio"), default="asyncio"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    if args.backend == "uvloop":
        anyio.run(supervise, backend="asyncio", backend_options={"use_uvloop": True})
    else:
        anyio.run(supervise, backend=args.backend)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
