"""The ``tiered`` command (also ``python -m tiered``).

Mistakes of the user (an unknown module, a bad plan) are one line on stderr
and an exit status, never a traceback (``--traceback`` shows it anyway).
Exit status: 0 fine, 1 the plan or the start-up failed, 2 a usage error.

``tiered probe`` is run by kubelet every few seconds: this module imports
only ``argparse``, ``os`` and ``sys`` itself, and the probe path nothing but
tiered/_probe.py; the runtime, anyio and logging are imported by the other
commands, when they need them.
"""

from __future__ import annotations

import argparse
import os
import sys

TYPE_CHECKING = False  # not typing's: the probe need not import typing
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

    from ._runtime import Runtime
    from ._serve import Backend

__all__ = ["main"]

#: ``tiered run --backend``: the keys of tiered._serve.BACKENDS, which
#: imports anyio (tests/test_cli.py checks they agree)
_BACKENDS = ("asyncio", "uvloop", "trio")
_LOG_LEVELS = ("debug", "info", "warning", "error")
_FACTORY_HINT = (
    "point at the object made by tiered.Runtime(...), or at a function that returns one"
)


class _UsageProblem(Exception):
    """A mistake on the command line: exit status 2."""


class _UserCodeFailed(Exception):
    """Importing the user's module, or calling its factory, raised: status 1."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def load_runtime(target: str, *, show_traceback: bool = False) -> Runtime:
    """Import ``MODULE:ATTR`` (like uvicorn's ``module:app``) and return the Runtime.

    ``ATTR`` is a ``tiered.Runtime``, or a function (any callable but a
    class) that takes no arguments and returns one: it is called once.  The
    current directory is searched first, as ``python -m`` does.

    Raises:
        _UsageProblem: ``target`` is malformed, names no module or attribute,
            or names something that is not a Runtime nor a factory of one.
        _UserCodeFailed: importing the module or calling the factory raised.
    """
    import importlib

    from ._runtime import Runtime

    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        msg = f"{target!r} is not MODULE:ATTR; write it like myapp.daemon:runtime"
        raise _UsageProblem(msg)
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (
            module_name == exc.name or module_name.startswith(exc.name + ".")
        ):
            msg = f"cannot import {module_name!r}: no module named {exc.name!r} (run from the directory that holds it, or install it)"
            raise _UsageProblem(msg) from None
        what = f"importing {module_name!r}"
        raise _UserCodeFailed(what) from exc
    except Exception as exc:
        if show_traceback:
            _print_traceback()
        what = f"importing {module_name!r}"
        raise _UserCodeFailed(what) from exc
    obj: object = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            msg = f"module {module_name!r} has no attribute {attr!r}"
            raise _UsageProblem(msg) from None
    if isinstance(obj, Runtime):
        return obj
    if not callable(obj) or isinstance(obj, type):
        kind = "class" if isinstance(obj, type) else type(obj).__name__
        msg = f"{target} is {_a(kind)}, not a tiered.Runtime; {_FACTORY_HINT}"
        raise _UsageProblem(msg)
    made = _call_factory(target, obj, show_traceback=show_traceback)
    if not isinstance(made, Runtime):
        msg = (
            f"{target} returned {_a(type(made).__name__)}, not a tiered.Runtime; "
            "a factory must return the object made by tiered.Runtime(...)"
        )
        raise _UsageProblem(msg)
    return made


def _call_factory(
    target: str, factory: Callable[..., object], *, show_traceback: bool
) -> object:
    """Call ``factory()``, unless it plainly is no factory of a Runtime.

    Refused without a call, as a usage mistake: an async function, a function
    that needs arguments, and one whose return annotation names a type that
    is no Runtime (``def main() -> int``: likely the module's entry point,
    which would serve the daemon, or parse ``tiered``'s own arguments).
    """
    import inspect

    if inspect.iscoroutinefunction(factory) or inspect.isasyncgenfunction(factory):
        msg = f"{target} is an async function; point at the object made by tiered.Runtime(...), or at a plain function that returns one"
        raise _UsageProblem(msg)
    try:
        signature: inspect.Signature | None = inspect.signature(factory)
    except (TypeError, ValueError):  # some builtins have none: just call them
        signature = None
    if signature is not None:
        needed = [
            p.name
            for p in signature.parameters.values()
            if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        if needed:
            msg = f"{target} takes arguments ({', '.join(needed)}); a function that makes the tiered.Runtime is called with none"
            raise _UsageProblem(msg)
        declared = _declared_non_runtime(factory, signature.return_annotation)
        if declared is not None:
            msg = f"{target} is a function that returns {declared}, not a tiered.Runtime; {_FACTORY_HINT}"
            raise _UsageProblem(msg)
    try:
        return factory()
    except Exception as exc:
        if show_traceback:
            _print_traceback()
        what = f"calling {target}"
        raise _UserCodeFailed(what) from exc


def _declared_non_runtime(
    factory: Callable[..., object], annotation: Any
) -> str | None:
    """The name of the type ``factory`` declares it returns, when that is no Runtime.

    None when nothing is declared, or a Runtime (a subclass too), or what
    cannot be told apart from one (``Any``, a union, a name that cannot be
    resolved): then the factory is called and what it returns is checked.
    """
    import inspect
    import typing

    from ._runtime import Runtime

    if annotation is inspect.Signature.empty:
        return None
    if isinstance(annotation, str):  # from __future__ import annotations
        annotation = _resolve(factory, annotation)
    if annotation is None or annotation is type(None):
        return "None"
    if annotation is typing.NoReturn or annotation is typing.Never:
        return "nothing (it never returns)"
    if not isinstance(annotation, type) or annotation in (object, typing.Any):
        return None  # Any is a class since Python 3.11
    try:
        runtime = issubclass(annotation, Runtime)
    except TypeError:  # list[int] passes for a type, not for a class
        return None
    return None if runtime else annotation.__qualname__


def _resolve(factory: Callable[..., object], annotation: str) -> object:
    """What a string annotation names, if a plain (dotted) name; else the string.

    Looked up in the factory's module, then among the builtins, never
    evaluated: ``"tiered.Runtime"`` and ``"int"`` resolve, ``"Runtime | None"``
    and a name imported only under ``TYPE_CHECKING`` stay strings.
    """
    import builtins
    import inspect

    if annotation == "None":
        return None
    first, *rest = annotation.split(".")
    if not all(part.isidentifier() for part in (first, *rest)):
        return annotation
    # the module of the function under any functools.wraps decorators
    namespace = getattr(inspect.unwrap(factory), "__globals__", {})
    try:
        obj = namespace[first] if first in namespace else getattr(builtins, first)
        for part in rest:
            obj = getattr(obj, part)
    except AttributeError:
        return annotation
    return obj


def _a(noun: str) -> str:
    """``noun`` with its indefinite article: a str, an int."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def _print_traceback() -> None:
    import traceback

    traceback.print_exc()


def _fixed_width(columns: int) -> type[argparse.HelpFormatter]:
    """A help formatter that wraps as on a terminal ``columns`` wide."""

    class Formatter(argparse.HelpFormatter):
        def __init__(self, prog: str, *args: Any, **kwargs: Any) -> None:
            kwargs["width"] = columns - 2  # as argparse does with $COLUMNS
            super().__init__(prog, *args, **kwargs)

    return Formatter


def _parsers(
    formatter: type[argparse.HelpFormatter] = argparse.HelpFormatter,
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

    run = sub.add_parser(
        "run", help="serve a runtime until SIGTERM or SIGINT", formatter_class=formatter
    )
    run.add_argument("target", metavar="MODULE:ATTR", help=target_help)
    run.add_argument("--backend", choices=_BACKENDS, default="asyncio")
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

    probe = sub.add_parser(
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
    return parser, {
        "run": run,
        "check": check,
        "demo": demo,
        "graph": graph,
        "probe": probe,
    }


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
        return _serve(runtime, args.backend, args.report, traceback=args.traceback)
    except _UsageProblem as exc:
        print(f"tiered: {exc}", file=sys.stderr)
        return 2
    except _UserCodeFailed as exc:
        cause = exc.__cause__
        print(
            f"tiered: {exc.what} failed: {type(cause).__name__}: {cause}",
            file=sys.stderr,
        )
        return 1
    except ConfigError as exc:
        if args.traceback:
            _print_traceback()
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


def _serve(
    runtime: Runtime, backend: Backend, report: str | None, *, traceback: bool
) -> int:
    import signal

    from ._serve import BACKENDS, aserve, serve

    # A SIGHUP before serve() listens has nothing to reload, and one
    # after it stopped listening (logrotate, say) must not kill a daemon
    # whose drivers have all stopped: serve() restores this when it ends.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        if traceback:
            # like serve(), but a failure propagates with its whole traceback
            import anyio

            name, options = BACKENDS[backend]
            anyio.run(
                lambda: aserve(runtime, report=report),
                backend=name,
                backend_options=options,
            )
            return 0
        return serve(runtime, backend=backend, report=report)
    finally:
        # the run is over: a late SIGTERM or SIGINT must not turn its
        # exit status into death by signal (this process exits now)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)


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
