"""The ``tiered`` command (also ``python -m tiered``).

Mistakes of the user (an unknown module, a bad plan) are one line on stderr
and an exit status, never a traceback (``--traceback`` shows it anyway).
Exit status: 0 fine, 1 the plan or the start-up failed, 2 a usage error.

``tiered probe`` is run by kubelet every few seconds: this module imports
only ``argparse``, ``os`` and ``sys`` itself, and the probe path nothing but
tiered/_probe.py; the runtime, anyio and logging are imported by the other
commands, when they need them (``_target`` finds the user's runtime).
"""

from __future__ import annotations

import argparse
import os
import sys

TYPE_CHECKING = False  # not typing's: the probe need not import typing
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from ._runtime import Runtime

__all__ = ["main"]

#: ``tiered run --backend``: the keys of tiered._serve.BACKENDS, which
#: imports anyio (tests/test_cli.py checks they agree)
_BACKENDS = ("asyncio", "uvloop", "trio")
_LOG_LEVELS = ("debug", "info", "warning", "error")


class _TerminalFormatter(argparse.HelpFormatter):
    """argparse's formatter, as wide as the terminal, found without ``shutil``.

    argparse imports ``shutil`` (and with it zlib, bz2, lzma and fnmatch) the
    first time it makes a formatter, which it does for every argument it
    adds: that import was most of what building the parsers cost ``tiered
    run`` and ``tiered probe`` (docs/benchmarks.md).  The width is the one
    ``shutil.get_terminal_size()`` gives: ``$COLUMNS``, else the terminal's,
    else 80; less 2, as argparse takes it.
    """

    def __init__(self, prog: str, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("width", _columns() - 2)
        super().__init__(prog, *args, **kwargs)


def _columns() -> int:
    """The terminal's width in columns, as ``shutil.get_terminal_size()`` says it."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


def _fixed_width(columns: int) -> type[argparse.HelpFormatter]:
    """A help formatter that wraps as on a terminal ``columns`` wide."""

    class Formatter(argparse.HelpFormatter):
        def __init__(self, prog: str, *args: Any, **kwargs: Any) -> None:
            kwargs["width"] = columns - 2  # as argparse does with $COLUMNS
            super().__init__(prog, *args, **kwargs)

    return Formatter


def _parsers(
    formatter: type[argparse.HelpFormatter] = _TerminalFormatter,
) -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The ``tiered`` parser and its subcommands' parsers, by name."""
    parser = argparse.ArgumentParser(
        prog="tiered",
        description="Start and stop the drivers of an async daemon in tiers.",
        formatter_class=formatter,
    )
    parser.add_argument(
        "--traceback", action="store_true", help="show tracebacks of failures"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    target_help = "the tiered.Runtime, or a function that returns one"

    run = _add_run(sub, formatter, target_help)

    check = sub.add_parser(
        "check", help="validate a runtime and print its plan", formatter_class=formatter
    )
    check.add_argument("target", metavar="MODULE:ATTR", help=target_help)

    # listed for --help only: main() hands `demo ...` to tiered.demo before parsing
    demo = sub.add_parser(
        "demo",
        help="the virtualization-host demo: libvirt's restart race, with and without tiers",
        add_help=False,
        formatter_class=formatter,
    )

    graph = sub.add_parser(
        "graph",
        help="print the plan as a Mermaid or Graphviz graph",
        formatter_class=formatter,
    )
    graph.add_argument("target", metavar="MODULE:ATTR", help=target_help)
    graph.add_argument("--format", choices=["mermaid", "dot"], default="mermaid")

    probe = _add_probe(sub, formatter)
    return parser, {
        "run": run,
        "check": check,
        "demo": demo,
        "graph": graph,
        "probe": probe,
    }


def _add_run(
    sub: Any, formatter: type[argparse.HelpFormatter], target_help: str
) -> argparse.ArgumentParser:
    """``tiered run``'s parser."""
    run: argparse.ArgumentParser = sub.add_parser(
        "run", help="serve a runtime until SIGTERM or SIGINT", formatter_class=formatter
    )
    run.add_argument("target", metavar="MODULE:ATTR", help=target_help)
    run.add_argument("--backend", choices=_BACKENDS, default="asyncio")
    run.add_argument(
        "--schedule",
        choices=("tiers", "dependencies"),
        help="how drivers are ordered: tiers (a barrier between tiers) or "
        "dependencies (each as soon as what it requires is up); default: the "
        "runtime's",
    )
    run.add_argument(
        "--drain",
        type=_seconds,
        default=0.0,
        metavar="S",
        help="on SIGTERM or SIGINT, stay up but not ready for S seconds before "
        "stopping (default: 0)",
    )
    run.add_argument(
        "--status-file",
        metavar="PATH",
        help="rewrite PATH (JSON) at every change of state, for tiered probe",
    )
    run.add_argument(
        "--report",
        metavar="FILE",
        help="write the run's report when it ends: FILE.svg, FILE.json, or text",
    )
    run.add_argument(
        "--log-level",
        default="info",
        choices=_LOG_LEVELS,
        help="log level of tiered and the drivers (the tiered logger; default: info)",
    )
    run.add_argument(
        "--root-log-level",
        choices=_LOG_LEVELS,
        help="log level of every other logger (the root logger; default: "
        "warning, or what the module set)",
    )
    return run


def _add_probe(
    sub: Any, formatter: type[argparse.HelpFormatter]
) -> argparse.ArgumentParser:
    """``tiered probe``'s parser."""
    probe: argparse.ArgumentParser = sub.add_parser(
        "probe",
        help="exit 0 if a daemon's status file says it is ready (or live)",
        description="Read the status file a daemon keeps; exit 0 when it says the "
        "daemon is ready (or live, with --live) and the daemon's process is "
        "alive, else 1 with one line on stdout saying why. For Kubernetes exec "
        "probes and scripts.",
        formatter_class=formatter,
    )
    probe.add_argument("path", metavar="PATH", help="the status file")
    which = probe.add_mutually_exclusive_group()
    which.add_argument(
        "--ready",
        dest="live",
        action="store_false",
        help="is every tier up? (the default: a readiness probe)",
    )
    which.add_argument(
        "--live",
        dest="live",
        action="store_true",
        help="has the run not failed? (a liveness probe)",
    )
    probe.set_defaults(live=False)
    return probe


def _parser() -> argparse.ArgumentParser:
    return _parsers()[0]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``tiered`` command; return its exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["demo"]:
        from .demo import main as demo  # imported on demand: not part of the core

        return demo(argv[1:])
    args = _parser().parse_args(argv)
    if args.command == "probe":
        from ._probe import probe

        return probe(args.path, live=args.live)
    return _with_runtime(args)


def _with_runtime(args: argparse.Namespace) -> int:
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


def _serve(runtime: Runtime, args: argparse.Namespace) -> int:
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


def _seconds(text: str) -> float:
    """``--drain S``: a finite number of seconds >= 0."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        msg = f"{text!r} is not a number of seconds >= 0"
        raise argparse.ArgumentTypeError(msg)
    return value


# -- the help texts in docs/cli.md ---------------------------------------------


def _help_text(command: str | None = None, *, columns: int = 80) -> str:
    """What ``tiered [COMMAND] --help`` prints on a terminal ``columns`` wide."""
    formatter = _fixed_width(columns)
    if command == "demo":  # main() hands `demo --help` to the demo's own parser
        from .demo._main import _parser as demo_parser

        parser = demo_parser()
        parser.formatter_class = formatter
    else:
        top, commands = _parsers(formatter)
        parser = top if command is None else commands[command]
    if "color" in vars(parser):  # Python 3.14 colours help for a terminal
        vars(parser)["color"] = False
    return parser.format_help()


def _help_commands() -> list[str | None]:
    """Every help text docs/cli.md shows: ``tiered --help``, then each command's."""
    return [None, *_parsers()[1]]


#: A help block of docs/cli.md: ```console, then `$ tiered [COMMAND] --help`
_HELP_BLOCK = (
    r"(```console\n\$ tiered(?: (?P<command>[a-z]+))? --help\n)(?P<text>.*?)(```)"
)


def _render_help_blocks(markdown: str, *, columns: int = 80) -> str:
    """``markdown`` with each help block's text as the parser prints it now.

    docs/_cli_help.py writes the result into docs/cli.md; tests/test_cli.py
    checks the page is up to date.
    """
    import re

    def render(match: re.Match[str]) -> str:
        text = _help_text(match["command"], columns=columns)
        return match[1] + text + match[4]

    return re.sub(_HELP_BLOCK, render, markdown, flags=re.S)


def _help_blocks(markdown: str) -> list[str | None]:
    """The commands whose help blocks ``markdown`` shows, in order."""
    import re

    return [m["command"] for m in re.finditer(_HELP_BLOCK, markdown, flags=re.S)]
