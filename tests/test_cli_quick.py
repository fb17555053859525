"""The command line read without argparse: it agrees with argparse, or declines.

``tiered run`` and ``tiered probe`` read a plain command line themselves
(``tiered._cli.read_quickly``) and leave everything else to argparse.  The
rule the tests hold it to: on any command line, it either declines (None)
or gives exactly what argparse gives, and it declines every command line
argparse refuses.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from support.daemon import ROOT, child_env
from tiered._cli import RUN_OPTIONS, main, read_quickly
from tiered._cli_parser import parser

#: words a command line is made of: the commands, their flags and values,
#: and the near misses (abbreviations, bad values, a lone dash, --)
WORDS = (
    *("run", "probe", "check", "graph", "x:y", "mod:runtime", "", "a b", "-"),
    *("--traceback", "--", "-h", "--help", "--back", "--ready", "--live", "--rea"),
    *(option.flag for option in RUN_OPTIONS),
    *("asyncio", "trio", "uvloop", "bogus", "tiers", "dependencies", "INFO"),
    *("0", "1.5", "-1", "inf", "nan", "1e3", "debug", "warning", "/tmp/s.json"),
    *("--backend=trio", "--backend=", "--drain=2", "--drain=-1", "--report=-x"),
    *("--status-file=", "--log-level=error", "--traceback=1", "--live=1"),
)


def argparse_reads(argv: list[str]) -> dict[str, object] | None:
    """What argparse makes of ``argv``; None where it refuses it (or prints help)."""
    out = io.StringIO()
    with contextlib.redirect_stderr(out), contextlib.redirect_stdout(out):
        try:
            return vars(parser().parse_args(argv))
        except SystemExit:
            return None


def check_agrees(argv: list[str]) -> None:
    quick = read_quickly(argv)
    if quick is not None:
        assert vars(quick) == argparse_reads(argv), argv


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(WORDS), max_size=7))
def test_the_quick_reading_agrees_with_argparse_or_declines(argv: list[str]) -> None:
    check_agrees(argv)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(WORDS), max_size=6),
    st.sampled_from(["run", "probe"]),
    st.integers(0, 2),
)
def test_it_agrees_on_command_lines_that_begin_as_plain_ones(
    rest: list[str], command: str, tracebacks: int
) -> None:
    """Most random lines fail at their first word; these begin as a daemon's do."""
    check_agrees(["--traceback"] * tracebacks + [command, *rest])


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "mod:runtime"],
        ["--traceback", "run", "mod:runtime", "--backend", "trio"],
        ["run", "--drain=2.5", "mod:runtime", "--report", "r.svg"],
        ["run", "mod:runtime", "--status-file", "/run/s.json", "--log-level=debug"],
        ["run", "mod:runtime", "--root-log-level", "warning", "--schedule", "tiers"],
        ["run", "mod:runtime", "--backend", "asyncio", "--backend", "uvloop"],
        ["probe", "/run/s.json"],
        ["probe", "--live", "/run/s.json"],
        ["probe", "/run/s.json", "--ready"],
    ],
)
def test_a_daemons_command_line_is_read_without_argparse(argv: list[str]) -> None:
    """What unit files and probes run is read here, as argparse reads it."""
    quick = read_quickly(argv)
    assert quick is not None, argv
    assert vars(quick) == argparse_reads(argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["run"],
        ["run", "a:b", "c:d"],
        ["run", "a:b", "--back", "trio"],
        ["run", "a:b", "--backend", "bogus"],
        ["run", "a:b", "--drain", "-1"],
        ["run", "a:b", "--drain=nan"],
        ["run", "a:b", "--report"],
        ["run", "a:b", "--traceback"],
        ["run", "a:b", "--help"],
        ["probe"],
        ["probe", "p", "--ready", "--live"],
        ["check", "a:b"],
        [],
    ],
)
def test_anything_else_goes_to_argparse(argv: list[str]) -> None:
    assert read_quickly(argv) is None


def test_a_plain_run_imports_no_argparse() -> None:
    """``tiered run`` reaches the runtime without importing argparse."""
    code = textwrap.dedent(
        """
        import json, sys
        from tiered._cli import main
        status = main(["run", "no_such_module_here:runtime"])
        print(json.dumps([status, "argparse" in sys.modules]))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=ROOT,
    ).stdout
    status, imported = json.loads(out)
    assert status == 2  # the module does not exist: a usage error, as before
    assert imported is False


def test_argparse_is_still_there_for_help(capsys: pytest.CaptureFixture[str]) -> None:
    """A command line the quick reading declines is argparse's, help included."""
    with pytest.raises(SystemExit) as exc:
        main(["run", "--help"])
    assert exc.value.code == 0
    assert "--status-file PATH" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["run", "a:b", "--drain", "soon"])
    assert exc.value.code == 2
    assert "'soon' is not a number of seconds >= 0" in capsys.readouterr().err
    assert isinstance(parser(), argparse.ArgumentParser)
