"""``tiered check``, ``tiered graph``, factories and user mistakes, in process.

``tiered._cli.main(argv)`` returns the exit status: 0 fine, 1 a bad plan, a
failed import or a factory that raised, 2 a usage error.  A mistake of the
user is one line on stderr, never a traceback, unless ``--traceback`` asks
for it.  Serving a runtime needs signals and a process of its own: that is
tests/test_serve.py, and here the tests of ``--log-level`` and of ``tiered
run`` with a factory.  The help texts in docs/cli.md are checked against the
parser.  ``tiered probe``: tests/test_probe.py.
"""

from __future__ import annotations

import signal
import sys
from typing import TYPE_CHECKING

import pytest

from support.daemon import ROOT, Daemon, tiered_command
from tiered._cli import _BACKENDS, main
from tiered._cli_parser import (
    _help_blocks,
    _help_commands,
    _help_text,
    _parsers,
    _render_help_blocks,
)
from tiered._serve import BACKENDS

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

PROBE = "tests.daemons.serve_probe:runtime"
BAD_PLAN = "tests.daemons.bad_plan:runtime"

PLAN = """\
runtime 'probe': 3 drivers in 3 tiers
tier 0:
  a: start 30s, stop 30s
tier 1:
  b: requires a; start 30s, stop 30s
tier 2:
  c: requires b; start 30s, stop 30s
"""

BAD_PLAN_ERROR = (
    "tiered: runtime 'bad': storage (tier 0) requires qemu (tier 1): a driver may "
    "only require drivers of lower tiers; put 'qemu' in a tier below 0, or raise "
    "'storage' above tier 1 (or drop its tier= to infer it)\n"
)


@pytest.fixture(autouse=True)
def _from_the_repository_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from the repository root, as `tiered` is run; undo its sys.path change."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "path", list(sys.path))


def test_check_prints_the_plan(capsys: pytest.CaptureFixture[str]) -> None:
    """``tiered check`` prints every tier and driver and returns 0."""
    assert main(["check", PROBE]) == 0
    out, err = capsys.readouterr()
    assert out == PLAN
    assert err == ""


def test_check_bad_plan(capsys: pytest.CaptureFixture[str]) -> None:
    """A bad plan: the ConfigError's message on one line, status 1."""
    assert main(["check", BAD_PLAN]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == BAD_PLAN_ERROR


def test_check_bad_plan_with_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    """``--traceback`` adds the ConfigError's traceback before the line."""
    assert main(["--traceback", "check", BAD_PLAN]) == 1
    _, err = capsys.readouterr()
    assert err.startswith("Traceback (most recent call last):")
    assert "tiered.ConfigError: runtime 'bad'" in err
    assert err.endswith(BAD_PLAN_ERROR)


def test_graph_refuses_a_bad_plan(capsys: pytest.CaptureFixture[str]) -> None:
    """``graph`` refuses a bad plan as ``check`` does (``run``: tests/test_serve.py)."""
    assert main(["graph", BAD_PLAN]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == BAD_PLAN_ERROR


MERMAID = """\
flowchart BT
  subgraph tier0["tier 0"]
    d0["a"]
  end
  subgraph tier1["tier 1"]
    d1["b"]
  end
  subgraph tier2["tier 2"]
    d2["c"]
  end
  d1 --> d0
  d2 --> d1
"""

DOT = """\
digraph "probe" {
  rankdir=BT;
  node [shape=box];
  subgraph cluster_tier0 { label="tier 0";
    "a";
  }
  subgraph cluster_tier1 { label="tier 1";
    "b";
  }
  subgraph cluster_tier2 { label="tier 2";
    "c";
  }
  "b" -> "a";
  "c" -> "b";
}
"""


@pytest.mark.parametrize(
    ("args", "expected"),
    [([], MERMAID), (["--format", "mermaid"], MERMAID), (["--format", "dot"], DOT)],
    ids=["default", "mermaid", "dot"],
)
def test_graph(
    args: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``tiered graph`` prints Mermaid by default, Graphviz with ``--format dot``."""
    assert main(["graph", PROBE, *args]) == 0
    out, err = capsys.readouterr()
    assert out == expected
    assert err == ""


@pytest.mark.parametrize("command", ["run", "check", "graph"])
@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("x", "tiered: 'x' is not MODULE:ATTR; write it like myapp.daemon:runtime"),
        (":runtime", "tiered: ':runtime' is not MODULE:ATTR"),
        ("tests.daemons.serve_probe:", "tiered: 'tests.daemons.serve_probe:' is not"),
        (
            "nope:runtime",
            "tiered: cannot import 'nope': no module named 'nope' (run from the "
            "directory that holds it, or install it)",
        ),
        (
            "tests.daemons.nope:runtime",
            "tiered: cannot import 'tests.daemons.nope': no module named "
            "'tests.daemons.nope'",
        ),
        (
            "tests.daemons.serve_probe:NOT_A_RUNTIME",
            "tiered: tests.daemons.serve_probe:NOT_A_RUNTIME is a str, not a "
            "tiered.Runtime; point at the object made by tiered.Runtime(...)",
        ),
        (
            "tests.daemons.serve_probe:nothing",
            "tiered: module 'tests.daemons.serve_probe' has no attribute 'nothing'",
        ),
        (
            "tests.daemons.serve_probe:runtime.nothing",
            "tiered: module 'tests.daemons.serve_probe' has no attribute "
            "'runtime.nothing'",
        ),
    ],
    ids=[
        "no-colon",
        "no-module",
        "no-attr",
        "unknown-module",
        "unknown-submodule",
        "not-a-runtime",
        "unknown-attr",
        "unknown-dotted-attr",
    ],
)
def test_usage_error_is_one_line(
    command: str, target: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A wrong MODULE:ATTR is exit status 2 and one line on stderr."""
    assert main([command, target]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(message)


def test_import_failure_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """A module that raises on import: status 1 and its error on one line."""
    assert main(["check", "tests.daemons.broken_import:runtime"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "tiered: importing 'tests.daemons.broken_import' failed: RuntimeError: "
        "broken_import: the configuration file is missing\n"
    )


def test_import_failure_with_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    """``--traceback`` shows where the import failed, then the line."""
    assert main(["--traceback", "check", "tests.daemons.broken_import:runtime"]) == 1
    _, err = capsys.readouterr()
    assert err.startswith("Traceback (most recent call last):")
    assert "broken_import.py" in err
    assert err.endswith(
        "tiered: importing 'tests.daemons.broken_import' failed: RuntimeError: "
        "broken_import: the configuration file is missing\n"
    )


def test_missing_dependency_is_an_import_failure(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The target exists but imports a missing module: status 1, not a usage error."""
    assert main(["check", "tests.daemons.needs_missing:runtime"]) == 1
    _, err = capsys.readouterr()
    assert err == (
        "tiered: importing 'tests.daemons.needs_missing' failed: "
        "ModuleNotFoundError: No module named 'tests.daemons.needs'\n"
    )


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        ([], "the following arguments are required: COMMAND"),
        (["serve", PROBE], "invalid choice: 'serve'"),
        (["run"], "the following arguments are required: MODULE:ATTR"),
        (["run", PROBE, "--backend", "curio"], "invalid choice: 'curio'"),
        (["run", PROBE, "--log-level", "loud"], "invalid choice: 'loud'"),
        (["run", PROBE, "--root-log-level", "all"], "invalid choice: 'all'"),
        (["graph", PROBE, "--format", "png"], "invalid choice: 'png'"),
    ],
    ids=[
        "nothing",
        "unknown-command",
        "no-target",
        "backend",
        "log-level",
        "root-log-level",
        "format",
    ],
)
def test_bad_arguments_exit_2(
    argv: list[str], complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """argparse refuses bad arguments with its usage and status 2."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    _, err = capsys.readouterr()
    assert err.startswith("usage: tiered")
    assert complaint in err


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    """``tiered --help`` names every command and --traceback, and exits 0."""
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out, _ = capsys.readouterr()
    for command in ("run", "check", "demo", "graph", "probe"):
        assert f"\n    {command} " in out
    assert "--traceback" in out


def test_backends_agree_with_serve() -> None:
    """``--backend``'s choices, kept in _cli (which must not import anyio), are serve's."""
    assert tuple(BACKENDS) == _BACKENDS


# -- factories: MODULE:FUNCTION -------------------------------------------------

FACTORIES = """
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import tiered

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from tiered import Runtime as Hidden  # a name the CLI cannot resolve

calls: list[str] = []


def build_runtime() -> tiered.Runtime:
    calls.append("build_runtime")
    runtime = tiered.Runtime("made")

    @runtime.driver(tier=0)
    async def a(ctx: tiered.Context) -> AsyncIterator[None]:
        yield None

    return runtime


def unannotated():
    return build_runtime()


def defaults(name: str = "made", *args: str, **kwargs: str) -> tiered.Runtime:
    return build_runtime()


def anything() -> Any:
    return build_runtime()


def hidden() -> Hidden:
    return build_runtime()


class MyRuntime(tiered.Runtime):
    pass


def subclass() -> MyRuntime:
    calls.append("subclass")
    return MyRuntime("sub")


class Maker:
    def __call__(self) -> tiered.Runtime:
        return build_runtime()


maker = Maker()


def returns_a_str():
    return "runtime"


def broken() -> tiered.Runtime:
    raise RuntimeError("factory: the configuration file is missing")


def main(argv: list[str] | None = None) -> int:
    raise SystemExit("main() was called")


def serve() -> None:
    raise SystemExit("serve() was called")


def needs(config: str, debug: bool = False) -> tiered.Runtime:
    raise SystemExit("needs() was called")


async def async_factory() -> tiered.Runtime:
    raise SystemExit("async_factory() was called")
"""

MADE_PLAN = "runtime 'made': 1 driver in 1 tier\ntier 0:\n  a: start 90s, stop 90s\n"


@pytest.fixture
def factories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An importable module ``cli_factories`` of factories, good and bad."""
    (tmp_path / "cli_factories.py").write_text(FACTORIES, encoding="utf-8")
    monkeypatch.syspath_prepend(tmp_path)
    yield "cli_factories"
    sys.modules.pop("cli_factories", None)


@pytest.mark.parametrize(
    "attr", ["build_runtime", "unannotated", "defaults", "anything", "hidden", "maker"]
)
def test_check_calls_a_factory(
    factories: str, attr: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``MODULE:FUNCTION``: a function that returns a Runtime is called, once."""
    assert main(["check", f"{factories}:{attr}"]) == 0
    out, err = capsys.readouterr()
    assert (out, err) == (MADE_PLAN, "")
    assert sys.modules[factories].calls == ["build_runtime"]


def test_a_factory_of_a_runtime_subclass(
    factories: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A factory declared to return a subclass of Runtime is called too."""
    assert main(["graph", f"{factories}:subclass"]) == 0
    assert capsys.readouterr().out.startswith("flowchart BT")
    assert sys.modules[factories].calls == ["subclass"]


@pytest.mark.parametrize("command", ["run", "check", "graph"])
@pytest.mark.parametrize(
    ("attr", "message"),
    [
        (
            "returns_a_str",
            "returns_a_str returned a str, not a tiered.Runtime; a factory must "
            "return the object made by tiered.Runtime(...)",
        ),
        (
            "main",
            "main is a function that returns int, not a tiered.Runtime; point at "
            "the object made by tiered.Runtime(...), or at a function that "
            "returns one",
        ),
        ("serve", "serve is a function that returns None, not a tiered.Runtime"),
        (
            "needs",
            "needs takes arguments (config); a function that makes the "
            "tiered.Runtime is called with none",
        ),
        (
            "async_factory",
            "async_factory is an async function; point at the object made by "
            "tiered.Runtime(...), or at a plain function that returns one",
        ),
        ("MyRuntime", "MyRuntime is a class, not a tiered.Runtime"),
    ],
    ids=["returns-a-str", "main", "serve", "needs-arguments", "async", "class"],
)
def test_a_bad_factory_is_a_usage_error(
    factories: str,
    command: str,
    attr: str,
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No factory of a Runtime: status 2, one line; ``main() -> int`` is not called."""
    assert main([command, f"{factories}:{attr}"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"tiered: {factories}:{message}")


@pytest.mark.parametrize("command", ["run", "check", "graph"])
def test_a_factory_that_raises(
    factories: str, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A factory that raises: status 1 and its error on one line, as an import."""
    assert main([command, f"{factories}:broken"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        f"tiered: calling {factories}:broken failed: RuntimeError: factory: the "
        "configuration file is missing\n"
    )


def test_a_factory_that_raises_with_traceback(
    factories: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--traceback`` shows where the factory raised, then the line."""
    assert main(["--traceback", "check", f"{factories}:broken"]) == 1
    _, err = capsys.readouterr()
    assert err.startswith("Traceback (most recent call last):")
    assert 'cli_factories.py", line' in err
    assert err.endswith("the configuration file is missing\n")


# -- tiered run: a factory, and the log levels (real processes) -------------------

CHATTY = """
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import tiered

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


def build_runtime() -> tiered.Runtime:
    runtime = tiered.Runtime("chatty")

    @runtime.driver(tier=0)
    async def talker(ctx: tiered.Context) -> AsyncIterator[None]:
        library = logging.getLogger("chatty.http")  # another library's logger
        library.debug("library debug line")
        library.info("library info line")
        library.warning("library warning line")
        ctx.logger.debug("driver debug line")
        ctx.logger.info("driver info line")
        print("logged", flush=True)
        yield None

    return runtime


runtime = build_runtime()
"""

serving = pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals")


def serve_chatty(tmp_path: Path, target: str, *args: str) -> str:
    """Serve the chatty module from ``tmp_path`` until it logged; its stderr."""
    (tmp_path / "chatty.py").write_text(CHATTY, encoding="utf-8")
    with Daemon(tiered_command("run", target, *args), cwd=tmp_path) as d:
        d.wait_for("stdout", "logged")
        d.signal(signal.SIGTERM)
        assert d.wait() == 0, d.output()
        return "\n".join(d.stderr)


@serving
def test_run_serves_what_a_factory_returns(tmp_path: Path) -> None:
    """``tiered run MODULE:FUNCTION`` serves the factory's Runtime until SIGTERM."""
    stderr = serve_chatty(tmp_path, "chatty:build_runtime")
    assert "tiered: runtime 'chatty' is up" in stderr
    assert "tiered: talker (tier 0) stopped" in stderr


@serving
@pytest.mark.parametrize(
    ("args", "shown", "hidden"),
    [
        (
            [],
            ["tiered: talker (tier 0)", "driver info line", "library warning line"],
            ["library info line", "library debug line", "driver debug line"],
        ),
        (
            ["--log-level", "info"],
            ["tiered: talker (tier 0)", "driver info line", "library warning line"],
            ["library info line", "library debug line", "driver debug line"],
        ),
        (
            ["--log-level", "debug"],
            ["driver debug line", "driver info line", "library warning line"],
            ["library info line", "library debug line"],
        ),
        (
            ["--log-level", "warning"],
            ["library warning line"],
            ["tiered: talker", "driver info line", "library info line"],
        ),
        (
            ["--root-log-level", "info"],
            ["driver info line", "library info line", "library warning line"],
            ["library debug line", "driver debug line"],
        ),
        (
            ["--log-level", "warning", "--root-log-level", "debug"],
            ["library debug line", "library info line", "library warning line"],
            ["tiered: talker", "driver info line", "driver debug line"],
        ),
    ],
    ids=["default", "info", "debug", "warning", "root-info", "root-debug"],
)
def test_log_level_is_for_tiered_and_the_drivers(
    tmp_path: Path, args: list[str], shown: list[str], hidden: list[str]
) -> None:
    """``--log-level`` sets tiered's loggers; other libraries' only ``--root-log-level``."""
    stderr = serve_chatty(tmp_path, "chatty:runtime", *args)
    for text in shown:
        assert text in stderr
    for text in hidden:
        assert text not in stderr


# -- docs/cli.md ------------------------------------------------------------------

CLI_PAGE = ROOT / "docs" / "cli.md"


def test_docs_show_the_help_the_parser_prints(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every help text in docs/cli.md is what the parser prints 80 columns wide."""
    # The width is fixed whatever the terminal says ($COLUMNS is 40 here), and
    # argparse prints these texts identically on Python 3.11, 3.12 and 3.13
    # (compared by hand with 3.11.7, 3.12.1 and 3.13.0), so the comparison is
    # exact.  To regenerate the page: .venv/bin/python docs/_cli_help.py
    monkeypatch.setenv("COLUMNS", "40")
    text = CLI_PAGE.read_text(encoding="utf-8")
    assert _render_help_blocks(text) == text, (
        "docs/cli.md is out of date: run .venv/bin/python docs/_cli_help.py"
    )


def test_docs_show_the_help_of_every_command() -> None:
    """docs/cli.md shows ``tiered --help`` and each command's ``--help``, once each."""
    shown = _help_blocks(CLI_PAGE.read_text(encoding="utf-8"))
    assert len(shown) == len(set(shown))
    assert set(shown) == set(_help_commands())
    assert {None, "run", "check", "demo", "graph", "probe"} == set(shown)


def test_help_text_is_what_help_prints(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """What docs/cli.md shows is what ``--help`` prints on an 80-column terminal."""
    monkeypatch.setenv("COLUMNS", "80")
    for command in ([], ["run"], ["probe"]):
        with pytest.raises(SystemExit):
            main([*command, "--help"])
        assert capsys.readouterr().out == _help_text(*command)
    assert main(["demo", "--help"]) == 0
    assert capsys.readouterr().out == _help_text("demo")


@pytest.mark.parametrize("columns", ["40", "100", "0", "wide"])
def test_help_wraps_at_the_width_argparse_would_take(
    columns: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The formatter that spares argparse its shutil import wraps as argparse's own.

    ``$COLUMNS`` first; a value that is not a positive number falls back to
    the terminal (none under pytest's capture: 80), as shutil does.
    """
    import argparse

    monkeypatch.setenv("COLUMNS", columns)
    ours_top, ours = _parsers()
    theirs_top, theirs = _parsers(argparse.HelpFormatter)
    assert ours_top.format_help() == theirs_top.format_help()
    for command in ours:
        assert ours[command].format_help() == theirs[command].format_help(), command
    if columns == "40":
        assert max(map(len, ours_top.format_help().splitlines())) <= 40
