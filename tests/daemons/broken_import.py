"""A module that fails while it is imported: ``tiered`` reports it on one line."""

from __future__ import annotations

msg = "broken_import: the configuration file is missing"
raise RuntimeError(msg)
