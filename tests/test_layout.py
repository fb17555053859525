"""The shape of the source: small modules, small functions, small classes.

The rules of the developers' guide: a module over 500 lines, a function over
80 or a class over 400 is holding two concepts, and should be split before
it lands.  Lines are counted as they stand, docstrings included.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).parent.parent / "src" / "tiered"
MODULES = sorted(SOURCE.rglob("*.py"))

MAX_MODULE = 500
MAX_FUNCTION = 80
MAX_CLASS = 400


def _name(path: Path) -> str:
    return str(path.relative_to(SOURCE.parent))


def test_the_source_is_found() -> None:
    assert len(MODULES) > 40, MODULES


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_module_function_and_class_sizes(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    too_long = []
    lines = len(text.splitlines())
    if lines > MAX_MODULE:
        too_long.append(f"the module has {lines} lines (at most {MAX_MODULE})")
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            assert node.end_lineno is not None
            size = node.end_lineno - node.lineno + 1
            limit = MAX_CLASS if isinstance(node, ast.ClassDef) else MAX_FUNCTION
            if size > limit:
                too_long.append(
                    f"{node.name} (line {node.lineno}) has {size} lines (at most {limit})"
                )
    assert not too_long, f"{_name(path)}: " + "; ".join(too_long)
