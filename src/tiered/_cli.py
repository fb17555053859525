"""The ``tiered`` command (also ``python -m tiered``).

Mistakes of the user (an unknown module, a bad plan) are one line on stderr
and an exit status, never a traceback (``--traceback`` shows it anyway).
Exit status: 0 fine, 1 the plan or the start-up failed, 2 a usage error.

A daemon's unit file runs ``tiered run``, and kubelet runs ``tiered probe``
every few seconds: a plain command line of either (the command, its
argument, options spelled out in full) is read here, without argparse;
anything else (``--help``, an abbreviation, a mistake) goes to argparse in
``_cli_parser``, which says what is wrong as usual.  Importing argparse and
building the parsers was half of what ``tiered run`` added to a daemon's
start-up (docs/benchmarks.md).  This module imports only ``sys`` and
``types``; the probe path nothing but tiered/_probe.py; the runtime, anyio
and logging are imported by the other commands, when they need them
(``_target`` finds the user's runtime).
"""

from __future__ import annotations

import sys
from types import SimpleNamespace

TYPE_CHECKING = False  # not typing's: the probe need not import typing
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence
    from typing import TypeAlias

    from ._runtime import Runtime

    Args: TypeAlias = argparse.Namespace | SimpleNamespace

__all__ = ["RUN_OPTIONS", "Option", "main", "read_quickly", "seconds"]

#: ``tiered run --backend``: the keys of tiered._serve.BACKENDS, which
#: imports anyio (tests/test_cli.py checks they agree)
_BACKENDS = ("asyncio", "uvloop", "trio")
_LOG_LEVELS = ("debug", "info", "warning", "error")


def seconds(text: str) -> float:
    """``--drain S``: a finite number of seconds >= 0, else ValueError."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        msg = f"{text!r} is not a number of seconds >= 0"
        raise ValueError(msg)
    return value


class Option:
    """One option of ``tiered run``: what argparse is told, and what is read here."""

    __slots__ = ("choices", "convert", "default", "dest", "flag", "help", "metavar")

    def __init__(
        self,
        flag: str,
        *,
        choices: tuple[str, ...] | None = None,
        convert: Callable[[str], float] | None = None,
        default: object = None,
        metavar: str | None = None,
        help: str | None = None,
    ) -> None:
        self.flag = flag
        self.dest = flag[2:].replace("-", "_")  # as argparse names it
        self.choices = choices
        self.convert = convert
        self.default = default
        self.metavar = metavar
        self.help = help

    def value(self, text: str) -> object:
        """What argparse stores for ``text``; ValueError where it refuses it."""
        if self.choices is not None and text not in self.choices:
            raise ValueError(text)
        return text if self.convert is None else self.convert(text)


#: ``tiered run``'s options, after its MODULE:ATTR, in the order of its --help
RUN_OPTIONS = (
    Option("--backend", choices=_BACKENDS, default="asyncio"),
    Option(
        "--schedule",
        choices=("tiers", "dependencies"),
        help="how drivers are ordered: tiers (a barrier between tiers) or "
        "dependencies (each as soon as what it requires is up); default: the "
        "runtime's",
    ),
    Option(
        "--drain",
        convert=seconds,
        default=0.0,
        metavar="S",
        help="on SIGTERM or SIGINT, stay up but not ready for S seconds before "
        "stopping (default: 0)",
    ),
    Option(
        "--status-file",
        metavar="PATH",
        help="rewrite PATH (JSON) at every change of state, for tiered probe",
    ),
    Option(
        "--report",
        metavar="FILE",
        help="write the run's report when it ends: FILE.svg, FILE.json, or text",
    ),
    Option(
        "--log-level",
        default="info",
        choices=_LOG_LEVELS,
        help="log level of tiered and the drivers (the tiered logger; default: info)",
    ),
    Option(
        "--root-log-level",
        choices=_LOG_LEVELS,
        help="log level of every other logger (the root logger; default: "
        "warning, or what the module set)",
    ),
)
_RUN_BY_FLAG = {option.flag: option for option in RUN_OPTIONS}
#: ``tiered probe``'s two flags, and the value of ``live`` each stores
_PROBE_FLAGS = {"--ready": False, "--live": True}


def read_quickly(argv: Sequence[str]) -> SimpleNamespace | None:
    """A plain ``tiered [--traceback] run|probe ...``, as argparse reads it.

    None for anything else, and for anything argparse would refuse or might
    read differently: an option not spelled out in full, a value that
    begins with ``-``, a bad value, a missing or a second argument.
    argparse then reads the command line and says what is wrong
    (tests/test_cli_quick.py checks that the two agree on every command
    line they try).
    """
    i = 0
    while i < len(argv) and argv[i] == "--traceback":
        i += 1
    command, rest = argv[i : i + 1], argv[i + 1 :]
    if command == ["run"]:
        return _read_run(rest, traceback=i > 0)
    if command == ["probe"]:
        return _read_probe(rest, traceback=i > 0)
    return None


def _read_run(rest: Sequence[str], *, traceback: bool) -> SimpleNamespace | None:
    values = {option.dest: option.default for option in RUN_OPTIONS}
    target: str | None = None
    j = 0
    while j < len(rest):
        arg = rest[j]
        j += 1
        if not arg.startswith("-"):
            if target is not None:
                return None  # argparse: unrecognized arguments
            target = arg
            continue
        flag, equals, text = arg.partition("=")
        option = _RUN_BY_FLAG.get(flag)
        if option is None:
            return None
        if not equals:
            if j == len(rest) or rest[j].startswith("-"):
                return None
            text = rest[j]
            j += 1
        try:
            values[option.dest] = option.value(text)
        except ValueError:
            return None
    if target is None:
        return None
    return SimpleNamespace(traceback=traceback, command="run", target=target, **values)


def _read_probe(rest: Sequence[str], *, traceback: bool) -> SimpleNamespace | None:
    paths = [arg for arg in rest if not arg.startswith("-")]
    flags = [arg for arg in rest if arg.startswith("-")]
    if len(paths) != 1 or len(flags) > 1 or not set(flags) <= _PROBE_FLAGS.keys():
        return None
    live = _PROBE_FLAGS[flags[0]] if flags else False
    return SimpleNamespace(
        traceback=traceback, command="probe", path=paths[0], live=live
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``tiered`` command; return its exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["demo"]:
        from .demo import main as demo  # imported on demand: not part of the core

        return demo(argv[1:])
    args: Args | None = read_quickly(argv)
    if args is None:  # anything but a plain command line: argparse decides
        from ._cli_parser import parser

        args = parser().parse_args(argv)
    if args.command == "probe":
        from ._probe import probe

        return probe(args.path, live=args.live)
    return _with_runtime(args)


def _with_runtime(args: Args) -> int:
    """``run``, ``check`` and ``graph``: load the runtime, then do the command."""
    from ._exceptions import ConfigError
    from ._target import UsageProblem, UserCodeFailed, load_runtime, print_traceback

    try:
        runtime = load_runtime(args.target, show_traceback=args.traceback)
        if args.command == "check":
            print(runtime.check().to_text())
            return 0
        if args.command == "graph":
            plan = runtime.check()
            print(
                plan.to_mermaid() if args.format == "mermaid" else plan.to_dot(), end=""
            )
            return 0
        _configure_logging(args.log_level, args.root_log_level)
        return _serve(runtime, args)
    except UsageProblem as exc:
        print(f"tiered: {exc}", file=sys.stderr)
        return 2
    except UserCodeFailed as exc:
        cause = exc.__cause__
        print(
            f"tiered: {exc.what} failed: {type(cause).__name__}: {cause}",
            file=sys.stderr,
        )
        return 1
    except ConfigError as exc:
        if args.traceback:
            print_traceback()
        print(f"tiered: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # SIGINT before the handlers were in place
        return 130


def _configure_logging(level: str, root_level: str | None) -> None:
    """Log to stderr: ``level`` for the ``tiered`` loggers, ``root_level`` for all.

    The handler sits on the root logger, so other libraries' warnings still
    show; the level applies to the ``tiered`` logger (drivers log on its
    children, ``tiered.driver.NAME``), so ``info`` is not every HTTP request
    some library logs.  A module that configured logging as it was imported
    keeps its handlers (``logging.basicConfig`` adds none then).
    """
    import logging

    logging.basicConfig(
        stream=sys.stderr,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    logging.getLogger("tiered").setLevel(level.upper())
    if root_level is not None:
        logging.getLogger().setLevel(root_level.upper())


def _serve(runtime: Runtime, args: Args) -> int:
    import signal

    from ._serve import BACKENDS, aserve, serve

    options = {
        "schedule": args.schedule,
        "drain": args.drain,
        "status_file": args.status_file,
        "report": args.report,
    }
    # A SIGHUP before serve() listens has nothing to reload, and one
    # after it stopped listening (logrotate, say) must not kill a daemon
    # whose drivers have all stopped: serve() restores this when it ends.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        if args.traceback:
            # like serve(), but a failure propagates with its whole traceback
            import anyio

            name, backend_options = BACKENDS[args.backend]
            anyio.run(
                lambda: aserve(runtime, **options),
                backend=name,
                backend_options=backend_options,
            )
            return 0
        return serve(runtime, backend=args.backend, **options)
    finally:
        # the run is over: a late SIGTERM or SIGINT must not turn its
        # exit status into death by signal (this process exits now)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
