"""A module whose own import of a missing module fails.

The missing module's name, ``tests.daemons.needs``, is a prefix of this
module's name as a string but not as a dotted path: ``tiered`` must report a
failed import of this module (exit 1), not a target that does not exist (2).
"""

from __future__ import annotations

import importlib

importlib.import_module("tests.daemons.needs")
