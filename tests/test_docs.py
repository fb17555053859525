"""Code in the README and the docs either runs or is a verbatim copy of an example.

Sybil (docs/conftest.py) executes every python block of docs/*.md except the
excerpts marked ``# from examples/NAME.py``; these tests check the excerpts,
run the README, and keep the two rules from being bypassed.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
BLOCK = re.compile(r"```python\n(.*?)```", re.S)
EXCERPT = re.compile(r"# from (examples/[\w/]+\.py)\n")
FENCE = re.compile(r"^```(\S*)", re.M)


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


def test_excerpts_are_verbatim() -> None:
    """Every block marked as taken from an example is in that file, unchanged."""
    checked = 0
    for page in PAGES:
        for block in blocks(page):
            match = EXCERPT.match(block)
            if match is None:
                continue
            example = (ROOT / match.group(1)).read_text()
            excerpt = block[match.end() :]
            assert excerpt.strip() in example, f"{page.name}: {excerpt[:200]}"
            checked += 1
    assert checked >= 10  # the tutorial's and the FastAPI page's


def test_no_python_block_is_skipped() -> None:
    """No page hides a python block from Sybil: each one runs or is an excerpt."""
    for page in PAGES:
        text = page.read_text()
        assert "skip:" not in text, f"{page.name} skips an example"
        # Sybil runs ```python only; another spelling would hide the block
        for language in FENCE.findall(text):
            assert language not in {"py", "python3", "pycon", "ipython"}, page.name


def test_tutorial_ends_under_systemd() -> None:
    """The tutorial goes from nothing to a unit file, with the real entry point."""
    text = (DOCS / "tutorial.md").read_text()
    assert "Type=notify" in text
    assert "../examples/serve_daemon.py" in text
    assert "_static/small-daemon-timeline.svg" in text


def test_api_reference_covers_every_public_name() -> None:
    """docs/api.md documents every name of tiered.__all__ and the public modules."""
    import tiered

    text = (DOCS / "api.md").read_text()
    for name in tiered.__all__:
        assert re.search(rf"^\.\. auto\w+:: tiered\.{name}$", text, re.M), name
    assert ".. automodule:: tiered.asgi" in text
    assert ".. automodule:: tiered.testing" in text
