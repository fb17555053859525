"""The ``tiered`` command (also ``python -m tiered``).

Mistakes of the user (an unknown module, a bad plan) are one line on stderr
and an exit status, never a traceback (``--traceback`` shows it anyway).
Exit status: 0 fine, 1 the plan or the start-up failed, 2 a usage error.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import traceback
from typing import TYPE_CHECKING

import anyio

from ._exceptions import ConfigError
from ._runtime import Runtime
from ._serve import BACKENDS, aserve, serve

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["main"]


class _UsageProblem(Exception):
    """A mistake on the command line: exit status 2."""


def load_runtime(target: str, *, show_traceback: bool = False) -> Runtime:
    """Import ``MODULE:ATTR`` (like uvicorn's ``module:app``) and return the Runtime.

    The current directory is searched first, as ``python -m`` does.
    """
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
        raise _ImportFailed(module_name) from exc
    except Exception as exc:
        if show_traceback:
            traceback.print_exc()
        raise _ImportFailed(module_name) from exc
    obj: object = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            msg = f"module {module_name!r} has no attribute {attr!r}"
            raise _UsageProblem(msg) from None
    if not isinstance(obj, Runtime):
        msg = (
            f"{target} is a {type(obj).__name__}, not a tiered.Runtime; point at the "
            "object made by tiered.Runtime(...)"
        )
        raise _UsageProblem(msg)
    return obj


class _ImportFailed(Exception):
    """Importing the user's module raised: exit status 1, cause on one line."""

    def __init__(self, module: str) -> None:
        super().__init__(module)
        self.module = module


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tiered",
        description="Start and stop the drivers of an async daemon in tiers.",
    )
    parser.add_argument(
        "--traceback", action="store_true", help="show tracebacks of failures"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="serve a runtime until SIGTERM or SIGINT")
    run.add_argument(
        "target", metavar="MODULE:ATTR", help="where the tiered.Runtime is"
    )
    run.add_argument("--backend", choices=list(BACKENDS), default="asyncio")
    run.add_argument(
        "--report",
        metavar="FILE",
        help="write the run's report when it ends: FILE.svg, FILE.json, or text",
    )
    run.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="log level for tiered and the drivers (default: info)",
    )

    check = sub.add_parser("check", help="validate a runtime and print its plan")
    check.add_argument("target", metavar="MODULE:ATTR")

    # listed for --help only: main() hands `demo ...` to tiered.demo before parsing
    sub.add_parser(
        "demo",
        help="the virtualization-host demo: libvirt's restart race, with and without tiers",
        add_help=False,
    )

    graph = sub.add_parser(
        "graph", help="print the plan as a Mermaid or Graphviz graph"
    )
    graph.add_argument("target", metavar="MODULE:ATTR")
    graph.add_argument("--format", choices=["mermaid", "dot"], default="mermaid")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``tiered`` command; return its exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["demo"]:
        from .demo import main as demo  # imported on demand: not part of the core

        return demo(argv[1:])
    args = _parser().parse_args(argv)
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
        logging.basicConfig(
            level=args.log_level.upper(),
            stream=sys.stderr,
            format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        )
        # A SIGHUP before serve() listens has nothing to reload, and one
        # after it stopped listening (logrotate, say) must not kill a daemon
        # whose drivers have all stopped: serve() restores this when it ends.
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        try:
            if args.traceback:
                return _serve_with_traceback(runtime, args.backend, args.report)
            return serve(runtime, backend=args.backend, report=args.report)
        finally:
            # the run is over: a late SIGTERM or SIGINT must not turn its
            # exit status into death by signal (this process exits now)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
    except _UsageProblem as exc:
        print(f"tiered: {exc}", file=sys.stderr)
        return 2
    except _ImportFailed as exc:
        cause = exc.__cause__
        print(
            f"tiered: importing {exc.module!r} failed: {type(cause).__name__}: {cause}",
            file=sys.stderr,
        )
        return 1
    except ConfigError as exc:
        if args.traceback:
            traceback.print_exc()
        print(f"tiered: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # SIGINT before the handlers were in place
        return 130


def _serve_with_traceback(runtime: Runtime, backend: str, report: str | None) -> int:
    """Like serve(), but a failure propagates with its whole traceback."""
    name, options = BACKENDS[backend]
    anyio.run(
        lambda: aserve(runtime, report=report), backend=name, backend_options=options
    )
    return 0
