"""What importing tiered costs: the standard library and tiered itself, beyond anyio.

Each check runs in a fresh interpreter, since this one has imported
everything the test suite needs.  anyio imports its parts lazily (since 4.x,
``import anyio`` alone loads almost nothing), so "what anyio loads" is anyio
with every public name resolved: its own modules and its dependencies
(sniffio, typing_extensions, ...), which tiered may use.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from support.daemon import Daemon

#: anyio, loaded in full: every lazily imported public name resolved
ANYIO_LOADED = (
    "import anyio, anyio.abc, anyio.lowlevel, warnings; "
    "warnings.simplefilter('ignore'); "  # deprecated aliases among the names
    "[getattr(anyio, name) for name in dir(anyio)]"
)

#: what ``import tiered`` must never pull in: the other backends, the optional
#: integrations and the test tools
FORBIDDEN = (
    "trio",
    "uvloop",
    "opentelemetry",
    "starlette",
    "uvicorn",
    "fastapi",
    "hypothesis",
    "pytest",
)


def modules_added(statement: str, *, after: str = ANYIO_LOADED) -> list[str]:
    """The modules that ``statement`` loads in a fresh interpreter, once ``after`` ran."""
    code = textwrap.dedent(
        f"""
        import json, sys
        {after}
        before = set(sys.modules)
        {statement}
        print(json.dumps(sorted(set(sys.modules) - before)))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    added: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    return added


def foreign(modules: list[str]) -> list[str]:
    """Those of ``modules`` that are neither the standard library nor tiered."""
    return [
        m
        for m in modules
        if m.split(".")[0] not in sys.stdlib_module_names
        and m != "tiered"
        and not m.startswith("tiered.")
    ]


#: ``import M`` and every public name of M looked up: the names are lazy
#: (tiered/__init__.py), so importing alone would prove nothing
EVERY_NAME = "import {m}; [getattr({m}, name) for name in {m}.__all__]"


@pytest.mark.parametrize("module", ["tiered", "tiered.testing"])
def test_import_adds_only_the_standard_library(module: str) -> None:
    """Beyond what anyio loads, tiered (or tiered.testing) with every public name loads only stdlib and tiered."""
    added = modules_added(EVERY_NAME.format(m=module))
    assert module in added  # the measure measured something
    assert "tiered._run" in added
    assert not foreign(added), (
        f"import {module} loads modules from outside the standard library: "
        f"{foreign(added)}"
    )


def test_import_tiered_loads_no_backend_or_integration() -> None:
    """import tiered imports neither trio nor uvloop, nor any integration or test tool."""
    added = modules_added(EVERY_NAME.format(m="tiered"), after="pass")
    assert "tiered._serve" in added
    loaded = sorted({m.split(".")[0] for m in added} & set(FORBIDDEN))
    assert not loaded, f"import tiered imports {loaded}"


def test_import_tiered_itself_imports_nothing_more() -> None:
    """``import tiered`` loads no submodule and no anyio: each name on first use."""
    code = textwrap.dedent(
        """
        import sys
        import tiered
        print(sorted(m for m in sys.modules if m.startswith(("tiered.", "anyio"))))
        tiered.Runtime  # the first use imports what it needs
        print("tiered._runtime" in sys.modules, "tiered._serve" in sys.modules)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.splitlines() == ["[]", "True False"]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_daemon_where_nothing_fails_imports_only_what_it_uses(backend: str) -> None:
    """The failure policy, background tasks and tracing are imported when used.

    A daemon's start-up pays for every module it imports, about a tenth of
    a millisecond each (docs/benchmarks.md): ``serve()``, up to READY=1 and
    through a stop on SIGTERM, loads none of these unless a driver fails,
    starts a background task, or the environment switches tracing on.
    """
    code = textwrap.dedent(
        f"""
        import logging, sys
        import tiered
        logging.basicConfig(level=logging.INFO)
        runtime = tiered.Runtime("lean")

        @runtime.driver(tier=0)
        async def base(ctx):
            yield

        @runtime.driver(requires=(base,))
        async def top(ctx):
            yield

        status = tiered.serve(runtime, backend={backend!r})
        lazy = ("tiered._policy", "tiered._background", "tiered._otel_env")
        print(status, [m for m in lazy if m in sys.modules], flush=True)
        """
    )
    env = {k: "" for k in os.environ if k.startswith("OTEL_")}
    with Daemon([sys.executable, "-c", code], env=env) as daemon:
        daemon.wait_for("stderr", "runtime 'lean' is up")
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0, daemon.output()
    assert daemon.stdout == ["0 []"], daemon.output()


def test_errors_say_tiered_before_anyone_looked_them_up() -> None:
    """A StartupError raised before ``tiered.StartupError`` was touched still says tiered.StartupError."""
    code = textwrap.dedent(
        """
        import traceback
        import anyio
        from tiered._runtime import Runtime
        runtime = Runtime("t")

        @runtime.driver
        async def broken(ctx):
            raise OSError("no")
            yield

        async def main():
            async with runtime.run():
                pass

        try:
            anyio.run(main)
        except BaseException as exc:
            print(type(exc).__module__, type(exc).__qualname__)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "tiered StartupError"
