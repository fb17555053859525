"""Daemons that tests start with ``tiered run`` (from the repository root)."""
