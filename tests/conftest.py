"""Every async test runs on asyncio, uvloop and trio (anyio's ``anyio_backend``).

Tests about timing use pytest-trio's ``autojump_clock`` instead (marked
``trio``), so a 90 s timeout is tested in virtual time, deterministically.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

BACKENDS = [
    pytest.param(("asyncio", {}), id="asyncio"),
    pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
    pytest.param(("trio", {}), id="trio"),
]
if sys.platform == "win32":  # pragma: no cover - uvloop does not exist there
    del BACKENDS[1]


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """The backend an ``anyio``-marked test runs on."""
    return request.param  # type: ignore[no-any-return]
