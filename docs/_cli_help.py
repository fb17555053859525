"""Write the help texts of docs/cli.md as the ``tiered`` parser prints them.

Each ```` ```console ```` block of docs/cli.md that begins with
``$ tiered [COMMAND] --help`` gets the text ``tiered [COMMAND] --help``
prints on a terminal 80 columns wide; the prose around the blocks is kept.
Run it from anywhere after changing the command line::

    .venv/bin/python docs/_cli_help.py          # rewrite docs/cli.md
    .venv/bin/python docs/_cli_help.py --check  # exit 1 if it is out of date

tests/test_cli.py fails when the page differs from what the parser prints.
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

from tiered._cli_parser import _render_help_blocks

PAGE = Path(__file__).resolve().parent / "cli.md"


def main(argv: list[str]) -> int:
    """Rewrite the page, or with ``--check`` show how it differs; the status."""
    if argv not in ([], ["--check"]):
        print("usage: python docs/_cli_help.py [--check]", file=sys.stderr)
        return 2
    text = PAGE.read_text(encoding="utf-8")
    rendered = _render_help_blocks(text)
    if rendered == text:
        return 0
    if argv:
        sys.stdout.writelines(
            difflib.unified_diff(
                text.splitlines(keepends=True),
                rendered.splitlines(keepends=True),
                "docs/cli.md",
                "tiered --help",
            )
        )
        return 1
    PAGE.write_text(rendered, encoding="utf-8")
    print(f"rewrote {PAGE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
