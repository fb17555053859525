"""The event loops a test runs on when it runs them itself (outside ``anyio_backend``).

The property tests, the soaks and the robustness cases start their own loops
(``anyio.run``), so they take the backend as a plain parameter: ``BACKENDS``,
with uvloop left out where it does not exist.
"""

from __future__ import annotations

import sys
from typing import Literal

import pytest

__all__ = ["BACKENDS", "Backend"]

Backend = Literal["asyncio", "uvloop", "trio"]

BACKENDS = [
    pytest.param("asyncio", id="asyncio"),
    pytest.param("uvloop", id="uvloop"),
    pytest.param("trio", id="trio"),
]
if sys.platform == "win32":  # pragma: no cover - uvloop does not exist there
    del BACKENDS[1]
