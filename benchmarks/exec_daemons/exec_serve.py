"""``tiered.serve(runtime)`` called directly: ``python -m exec_serve [BACKEND]``.

What ``tiered run`` does, less its command line: the same log configuration
(INFO, the CLI's format, to stderr), then ``serve()``.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Literal

from exec_common import LOG_FORMAT
from exec_runtime import runtime

import tiered

if TYPE_CHECKING:
    from collections.abc import Mapping

CHOICES: Mapping[str, Literal["asyncio", "uvloop", "trio"]] = {
    "asyncio": "asyncio",
    "uvloop": "uvloop",
    "trio": "trio",
}

logging.basicConfig(level=logging.INFO, stream=sys.stderr, format=LOG_FORMAT)
backend = CHOICES[sys.argv[1] if len(sys.argv) > 1 else "asyncio"]
raise SystemExit(tiered.serve(runtime, backend=backend))
