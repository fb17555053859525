"""``tiered demo``: restart a virtualization host with guests running.

See docs/libvirt.md for the story this reproduces.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

import tiered

from ._chaos import POLICY, ChaosStats, format_chaos, run_chaos
from ._drivers import build_runtime
from ._guests import DOMAINS, POOLS, Guests, prepare_state
from ._host import MODES, Host
from ._view import LiveView, Stats, format_table

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from types import FrameType
    from typing import TextIO

    from ._host import Mode

__all__ = ["main"]

DEFAULT_RESTARTS = 20
DEFAULT_SEED = 4  # libvirt's race is issue 4 of this project
DEFAULT_FAILURES = 3


class _Collector(logging.Handler):
    """Keeps the warnings and errors the daemon logs (why a guest was killed)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.name.rpartition('.')[2]}: {record.getMessage()}")

    def drain(self) -> list[str]:
        messages, self.messages = self.messages, []
        return messages


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tiered demo",
        description=(
            "A virtualization host on tiered: eight libvirt-like drivers, "
            f"{len(DOMAINS)} guests (real processes) on {len(POOLS)} storage pools. "
            "Restarts the daemon with the guests running and counts the guests "
            "the hypervisor drivers kill because their pool is not active yet: "
            "libvirt's restart race, which tiers end. Without --mode: a tiered "
            "start with its report, then the restarts in all three modes. "
            "--chaos then makes the storage backend fail while the guests run, "
            "with and without supervision."
        ),
    )
    parser.add_argument(
        "--mode",
        choices=MODES,
        help="only this mode: tiered (the fix), flat (every driver in one tier) "
        "or dependencies (declared as in tiered, each driver as soon as what it "
        "requires is up)",
    )
    parser.add_argument(
        "--restarts",
        type=_count,
        default=DEFAULT_RESTARTS,
        metavar="N",
        help="daemon restarts per mode (default: %(default)s; with --chaos, 0 "
        "skips them)",
    )
    parser.add_argument(
        "--chaos",
        action="store_true",
        help="after the restarts: the Ceph monitors drop the storage driver "
        "while the guests run, with restart= on storage and without (in tiered "
        "mode, or in --mode dependencies)",
    )
    parser.add_argument(
        "--failures",
        type=_count,
        default=DEFAULT_FAILURES,
        metavar="N",
        help="monitor connections lost in the supervised chaos run; more than "
        f"{POLICY.max_restarts} within {POLICY.window:g} s make tiered give up "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--backend", choices=("asyncio", "uvloop", "trio"), default="asyncio"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON line per mode (and per chaos run), only that",
    )
    parser.add_argument(
        "--svg",
        type=Path,
        metavar="FILE",
        help="write the start-up timeline of the last start (without --mode: "
        "of the tiered start whose report is printed)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        metavar="DIR",
        help="keep the host's state there (default: a temporary directory, removed)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        metavar="S",
        help="seed of every random delay (default: %(default)s)",
    )
    return parser


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        msg = f"{text} is not a count (0 or more)"
        raise argparse.ArgumentTypeError(msg)
    return value


class _Demo:
    """One invocation: the runtimes, the guests, what gets printed."""

    def __init__(
        self, args: argparse.Namespace, state: Path, guests: Guests, out: TextIO
    ) -> None:
        self.args = args
        self.state = state
        self.guests = guests
        self.out = out
        self.log = _Collector()
        self.svg: str | None = None
        self.showed_live = False
        self.interrupted = False

    def say(self, text: str = "", end: str = "\n") -> None:
        if not self.args.json:
            print(text, end=end, file=self.out, flush=True)

    async def main(self) -> None:
        """Run the demo; a SIGINT cancels it (and sets ``interrupted``).

        SIGINT is received here, not left to the event loop: a
        KeyboardInterrupt that trio injects into a run's coordinator while it
        starts or stops leaves the run waiting forever (as of this writing),
        where a cancellation rolls back cleanly on every backend.
        """
        if threading.current_thread() is not threading.main_thread():
            await self.run()
            return
        scope = anyio.CancelScope()
        error: Exception | None = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._watch_sigint, scope)
            with scope:
                try:
                    await self.run()
                except Exception as exc:  # raised as is, not in a group
                    error = exc
            tg.cancel_scope.cancel()
        if error is not None:
            raise error

    async def _watch_sigint(self, scope: anyio.CancelScope) -> None:
        with anyio.open_signal_receiver(signal.SIGINT) as signals:
            async for _ in signals:  # a second Ctrl-C changes nothing: stop is quick
                self.interrupted = True
                scope.cancel()

    async def run(self) -> list[Stats]:
        args = self.args
        modes: tuple[Mode, ...] = (args.mode,) if args.mode else MODES
        hosts = {m: Host(self.state, args.seed, m) for m in modes}
        runtimes = {m: build_runtime(h) for m, h in hosts.items()}
        self.say(
            f"virtd demo: {len(DOMAINS)} guests on {len(POOLS)} pools, backend "
            f"{args.backend}, seed {args.seed}, state in {self.state}"
        )
        if args.mode is None and not args.json:
            await self._live(runtimes["tiered"], hosts["tiered"])
        results: list[Stats] = []
        if args.restarts:
            self.say(
                f"\nrestarting the daemon {args.restarts} times per mode with the "
                "guests running (. no guest killed, x a guest killed):"
            )
        for mode in modes if args.restarts or not args.chaos else ():
            stats = await self._restarts(runtimes[mode], hosts[mode])
            results.append(stats)
            if args.json:
                print(json.dumps(stats.to_json()), file=self.out, flush=True)
        if results and not args.json:
            self.say()
            self.say(format_table(results))
            for stats in results:
                self._why(stats)
        if args.chaos:
            await self._chaos()
        return results

    async def _chaos(self) -> list[ChaosStats]:
        """The chaos runs: supervised, then unsupervised for contrast."""
        args = self.args
        mode: Mode = args.mode or "tiered"
        self.say(
            f"\nchaos, {mode} mode: the Ceph monitors drop the storage driver's "
            f"session {args.failures} time(s) while the guests run, with "
            "restart= on storage; then once without it:"
        )
        columns = []
        for supervised in (True, False):
            stats = await run_chaos(
                self.state,
                args.seed,
                mode,
                self.guests,
                supervised=supervised,
                failures=args.failures,
                drain_log=self.log.drain,
            )
            columns.append(stats)
            if args.json:
                print(json.dumps(stats.to_json()), file=self.out, flush=True)
        self.say()
        self.say(format_chaos(columns))
        for stats in columns:
            self.say(f"\n{stats.label} (from the daemon's log):")
            if stats.outcome != "running":
                self.say(f"  the run stopped: {stats.outcome}")
            for note in stats.notes[:3]:
                self.say(f"  {note}")
            if len(stats.notes) > 3:
                self.say(f"  ... and {len(stats.notes) - 3} more")
        return columns

    def _why(self, stats: Stats) -> None:
        if not stats.notes:
            return
        self.say(f"\nwhy, in {stats.mode} mode (from the daemon's log):")
        for note in stats.notes[:3]:
            self.say(f"  {note}")
        if len(stats.notes) > 3:
            self.say(f"  ... and {len(stats.notes) - 3} more")
        victims = ", ".join(
            f"{guest} {n}x"
            for guest, n in sorted(stats.victims.items(), key=lambda kv: -kv[1])
        )
        if victims:
            self.say(f"  killed: {victims}")

    async def _live(self, runtime: tiered.Runtime, host: Host) -> None:
        """One tiered start, shown as it happens, then its report."""
        self.guests.ensure_running()
        host.begin("live")
        tty = self.out.isatty() and os.environ.get("TERM", "") != "dumb"
        self.say(
            f"\nstarting {runtime.name} ({len(runtime.drivers)} drivers) with the "
            f"guests running:"
        )
        view = LiveView(self.out, tty=tty)
        finished = anyio.Event()
        run = runtime.run()
        async with anyio.create_task_group() as tg:
            tg.start_soon(view.follow, run, finished)
            async with run:
                await finished.wait()
                report = run.report
        self.say()
        self.say(report.to_text())
        self.svg = run.report.to_svg()
        self.showed_live = True
        for line in self.log.drain():
            self.say(f"  log: {line}")

    async def _restarts(self, runtime: tiered.Runtime, host: Host) -> Stats:
        stats = Stats(host.mode, self.args.backend)
        self.say(f"  {host.mode:<12} ", end="")
        for i in range(self.args.restarts):
            self.guests.ensure_running()  # guests killed last time come back
            host.begin(str(i))
            async with runtime.run() as run:
                pass
            report = run.report
            assert report.ready_at is not None
            seen = len(host.reconnected) + len(host.killed)
            if seen != len(DOMAINS):  # the numbers would mean nothing
                msg = (
                    f"restart {i}: the hypervisors found {seen} running guests "
                    f"of {len(DOMAINS)}"
                )
                raise RuntimeError(msg)
            stats.restarts += 1
            stats.startups.append(report.ready_at)
            stats.domains_killed += len(host.killed)
            if host.killed:
                stats.restarts_with_kills += 1
            for _driver, guest, _pool in host.killed:
                stats.victims[guest] = stats.victims.get(guest, 0) + 1
            if host.unkeyed:
                stats.unkeyed += 1
            stats.notes += [f"restart {i}: {m}" for m in self.log.drain()]
            self.say("x" if host.killed else ".", end="")
            if self.args.mode is not None or (
                host.mode == "tiered" and not self.showed_live
            ):
                self.svg = report.to_svg()
        self.say()
        return stats


def _interrupted(exc: BaseException) -> bool:
    """Whether ``exc`` is a KeyboardInterrupt, or a group of nothing else."""
    if isinstance(exc, KeyboardInterrupt):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return all(_interrupted(e) for e in exc.exceptions)
    return False


def _startup_error(exc: BaseException) -> tiered.StartupError | None:
    if isinstance(exc, tiered.StartupError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _startup_error(inner)
            if found is not None:
                return found
    return None


def _run_backend(backend: str, fn: Callable[[], Any]) -> Any:
    if backend == "uvloop":
        return anyio.run(fn, backend="asyncio", backend_options={"use_uvloop": True})
    return anyio.run(fn, backend=backend)


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace | int:
    """The parsed arguments, or the exit status of --help or a usage error."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
        if args.chaos and args.mode == "flat":
            # nothing is declared in flat mode: no dependents to restart with
            # storage, so supervision would have nothing to show
            parser.error(
                "--chaos restarts storage with the drivers that require it, "
                "and flat mode declares none: use --mode tiered or dependencies"
            )
    except SystemExit as exc:  # --help, or a usage error (already printed)
        return exc.code if isinstance(exc.code, int) else 2
    if args.backend == "uvloop":
        try:
            import uvloop  # noqa: F401
        except ImportError:
            print(
                "tiered demo: --backend uvloop needs uvloop (pip install uvloop)",
                file=sys.stderr,
            )
            return 2
    return args


def _state_dir(args: argparse.Namespace) -> Path | None:
    """The state directory, prepared (a temporary one unless --state-dir); None: unusable."""
    state: Path = args.state_dir or Path(tempfile.mkdtemp(prefix="tiered-demo-"))
    try:
        state.mkdir(parents=True, exist_ok=True)
        prepare_state(state)
    except OSError as exc:
        print(
            f"tiered demo: cannot use {state} as state directory: {exc}",
            file=sys.stderr,
        )
        return None
    return state


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; return the exit status (0 done, 1 failed, 2 usage, 130 Ctrl-C).

    Every guest it starts is killed before it returns, whatever happens.
    """
    args = _arguments(argv)
    if isinstance(args, int):
        return args
    keep = args.state_dir is not None
    state = _state_dir(args)
    if state is None:
        return 2
    guests = Guests(state)
    demo = _Demo(args, state, guests, sys.stdout)
    logger = logging.getLogger("tiered")
    logger.addHandler(demo.log)

    def cleanup() -> None:
        guests.kill_all()
        if not keep:
            shutil.rmtree(state, ignore_errors=True)

    def on_term(signum: int, frame: FrameType | None) -> None:
        # SIGTERM or SIGHUP: nothing would run a finally; clean up, then die of it
        cleanup()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(signum) == signal.SIG_DFL:
                previous[signum] = signal.signal(signum, on_term)
    try:
        _run_backend(args.backend, demo.main)
        if demo.interrupted:
            print("tiered demo: interrupted; guests killed", file=sys.stderr)
            return 130
        if args.svg is not None and demo.svg is not None:
            args.svg.parent.mkdir(parents=True, exist_ok=True)
            args.svg.write_text(demo.svg, encoding="utf-8")
            demo.say(f"\nstart-up timeline written to {args.svg}")
        return 0
    except BaseException as exc:
        if _interrupted(exc):
            print("tiered demo: interrupted; guests killed", file=sys.stderr)
            return 130
        error = _startup_error(exc)
        if error is None:
            raise
        print(f"tiered demo: {error}", file=sys.stderr)
        for inner in error.exceptions:
            notes = "; ".join(getattr(inner, "__notes__", ()))
            print(f"  {inner!r} ({notes})", file=sys.stderr)
        return 1
    finally:
        # a second Ctrl-C must not stop the guests from being killed
        main_thread = threading.current_thread() is threading.main_thread()
        sigint: Any = (
            signal.signal(signal.SIGINT, signal.SIG_IGN) if main_thread else None
        )
        try:
            cleanup()
            logger.removeHandler(demo.log)
            for number, handler in previous.items():
                signal.signal(number, handler)
        finally:
            if main_thread:
                signal.signal(signal.SIGINT, sigint)
