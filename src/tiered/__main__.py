"""``python -m tiered``: the same as the ``tiered`` command."""

from __future__ import annotations

from ._cli import main

raise SystemExit(main())
