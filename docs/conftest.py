"""Sybil runs the Python examples of every page in docs/ as tests.

Every ```` ```python ```` block of a page is executed, in page order, in one
namespace per page; hidden set-up and checks are MyST comments
(``% invisible-code-block: python``).  Two kinds of block are not executed,
and each is checked another way:

- a block that starts with ``# from examples/NAME.py`` is an excerpt of a
  real example file; tests/test_docs.py checks that it is in that file,
  character for character, and the example itself runs in
  tests/test_examples.py;
- a block after a ``% skip: next`` comment: there are none today, and
  tests/test_docs.py allows none without a reason.

The examples directory is importable, so a page can ``import asgi_app``.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from sybil import Document, Example, Region, Sybil
from sybil.parsers.myst import PythonCodeBlockParser, SkipParser

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sybil.typing import Evaluator

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
FROM_EXAMPLE = "# from examples/"


class ExecutedPythonBlocks(PythonCodeBlockParser):
    """Every python block but the excerpts checked verbatim by test_docs.py."""

    def __call__(self, document: Document) -> Iterable[Region]:
        for region in super().__call__(document):
            if not str(region.parsed).startswith(FROM_EXAMPLE):
                region.evaluator = _reporting(region.evaluator)
                yield region


def _reporting(evaluator: Evaluator | None) -> Evaluator:
    """Report an example's exception as a Sybil failure, traceback included.

    Sybil 10 crashes pytest (INTERNALERROR) while it trims the traceback of
    an exception group that came through trio; a failure returned as text is
    shown as it is.
    """
    assert evaluator is not None

    def evaluate(example: Example) -> str | None:
        try:
            return evaluator(example)
        except Exception as exc:  # BaseExceptions (skips, KeyboardInterrupt) pass
            return "".join(traceback.format_exception(exc))

    return evaluate


async def asgi_get(app: Any, path: str) -> tuple[int, bytes]:
    """Start ``app``'s lifespan, send one GET, shut the lifespan down.

    What an ASGI server does, in memory: the pages use it to show that their
    applications start their tiers, answer, and stop them.
    """
    startup: list[dict[str, Any]] = [{"type": "lifespan.startup"}]
    replies: list[dict[str, Any]] = []
    stop = anyio.Event()
    started = anyio.Event()
    state: dict[str, Any] = {}

    async def lifespan_receive() -> dict[str, Any]:
        if startup:
            return startup.pop()
        await stop.wait()
        return {"type": "lifespan.shutdown"}

    async def lifespan_send(message: dict[str, Any]) -> None:
        replies.append(message)
        if message["type"].startswith("lifespan.startup"):
            started.set()

    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": state}
    async with anyio.create_task_group() as tg:
        tg.start_soon(app, scope, lifespan_receive, lifespan_send)
        await started.wait()
        if replies[-1]["type"] != "lifespan.startup.complete":
            stop.set()
            msg = f"start-up failed: {replies[-1].get('message', '')}"
            raise RuntimeError(msg)
        sent: list[dict[str, Any]] = []

        async def http_receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def http_send(message: dict[str, Any]) -> None:
            sent.append(message)

        request = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"testserver")],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
            "state": dict(state),
        }
        await app(request, http_receive, http_send)
        stop.set()
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(
        m.get("body", b"") for m in sent if m["type"] == "http.response.body"
    )
    return status, body


def setup(namespace: dict[str, Any]) -> None:
    """Before each page: the examples are importable, the helper is at hand."""
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    namespace["asgi_get"] = asgi_get


pytest_collect_file = Sybil(
    parsers=[ExecutedPythonBlocks(), SkipParser()],
    patterns=["*.md"],
    excludes=["_build/*"],
    setup=setup,
).pytest()
