"""Code in the README and the docs either runs or is a verbatim copy of an example."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = (ROOT / "examples" / "small_daemon.py").read_text()
FROM_EXAMPLE = "# from examples/small_daemon.py\n"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def blocks(path: Path) -> list[str]:
    return BLOCK.findall(path.read_text())


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        ("README.md", ["reconnected with 'key'", "tier 2 up @"]),
        ("docs/index.md", ["hello world"]),
    ],
)
def test_page_example_runs(page: str, expected: list[str]) -> None:
    """The complete example at the top of the page runs and prints what it says."""
    [code, *_] = blocks(ROOT / page)
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    for text in expected:
        assert text in out.stdout


def test_tutorial_excerpts_are_verbatim() -> None:
    """Every tutorial block marked as taken from the example is in it, unchanged."""
    excerpts = [
        b.removeprefix(FROM_EXAMPLE)
        for b in blocks(ROOT / "docs" / "tutorial.md")
        if b.startswith(FROM_EXAMPLE)
    ]
    assert len(excerpts) >= 5
    for excerpt in excerpts:
        assert excerpt.strip() in EXAMPLE, excerpt[:200]
