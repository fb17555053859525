"""How big the reliability tests run: ``make test`` sizes, or ``make soak`` sizes.

``make soak`` sets ``TIERED_SOAK=1`` and runs the same test files
(tests/test_properties.py, tests/test_soak.py, tests/test_storms.py) with the
sizes the issue asks for; ``make test`` runs them small enough to stay fast
while each check can still fail.
"""

from __future__ import annotations

import os

__all__ = ["SOAK", "size"]

#: True under ``make soak`` (``TIERED_SOAK`` set to anything but "" or "0").
SOAK = os.environ.get("TIERED_SOAK", "") not in ("", "0")


def size(test: int, soak: int) -> int:
    """``soak`` under ``make soak``, else ``test``."""
    return soak if SOAK else test
