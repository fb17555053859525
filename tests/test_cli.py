"""``tiered check``, ``tiered graph`` and user mistakes, in process.

``tiered._cli.main(argv)`` returns the exit status: 0 fine, 1 a bad plan or a
failed import, 2 a usage error.  A mistake of the user is one line on stderr,
never a traceback, unless ``--traceback`` asks for it.  Serving a runtime needs
signals and a process of its own: that is tests/test_serve.py.
"""

from __future__ import annotations

import sys

import pytest

from support.daemon import ROOT
from tiered._cli import main

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
        (["graph", PROBE, "--format", "png"], "invalid choice: 'png'"),
    ],
    ids=["nothing", "unknown-command", "no-target", "backend", "log-level", "format"],
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
    """``tiered --help`` names run, check and graph, and exits 0."""
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out, _ = capsys.readouterr()
    for command in ("run", "check", "graph", "--traceback"):
        assert command in out
