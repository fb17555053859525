"""The ``tiered`` command's argparse parsers, and its help texts in docs/cli.md.

``_cli`` reads a plain ``tiered run`` or ``tiered probe`` command line
itself and imports this module only for anything else (``--help``, a
mistake, an abbreviated option): importing argparse and building the
parsers was half of what ``tiered run`` added to a daemon's start-up
(docs/benchmarks.md).  ``tiered run``'s options are declared once, in
``_cli.RUN_OPTIONS``, for both readings; tests/test_cli_quick.py checks
that the two readings agree.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from ._cli import RUN_OPTIONS

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["parser"]


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
    """``tiered run``'s parser, from the options ``_cli`` reads without it."""
    run: argparse.ArgumentParser = sub.add_parser(
        "run", help="serve a runtime until SIGTERM or SIGINT", formatter_class=formatter
    )
    run.add_argument("target", metavar="MODULE:ATTR", help=target_help)
    for option in RUN_OPTIONS:
        kwargs: dict[str, Any] = {
            "choices": option.choices,
            "type": None if option.convert is None else _argparse_type(option.convert),
            "default": option.default,
            "metavar": option.metavar,
            "help": option.help,
        }
        run.add_argument(
            option.flag, **{k: v for k, v in kwargs.items() if v is not None}
        )
    return run


def _argparse_type(convert: Callable[[str], float]) -> Callable[[str], float]:
    """``convert``, its ValueError told as argparse tells a type's own message."""

    def checked(text: str) -> float:
        try:
            return convert(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    checked.__name__ = convert.__name__
    return checked


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


def parser() -> argparse.ArgumentParser:
    """The ``tiered`` command's parser, every command in it."""
    return _parsers()[0]


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
