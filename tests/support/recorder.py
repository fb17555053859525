"""A shared, ordered log of what driver hooks did, for tests to assert on.

Hooks append ``(kind, name)`` events (``("init_begin", "storage")``); a test
then checks orderings by index.  Appending never awaits, so the order of
events is the order in which the hooks ran.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Event", "Recorder"]

Event = tuple[str, str]


@dataclass
class Recorder:
    """An append-only list of ``(kind, name)`` events."""

    events: list[Event] = field(default_factory=list)

    def add(self, kind: str, name: str = "") -> None:
        """Record one event now."""
        self.events.append((kind, name))

    def indices(self, kind: str, name: str | None = None) -> list[int]:
        """Positions of the events of ``kind`` (of driver ``name`` if given)."""
        return [
            i
            for i, (k, n) in enumerate(self.events)
            if k == kind and (name is None or n == name)
        ]

    def first(self, kind: str, name: str | None = None) -> int | None:
        """Position of the first such event, or None."""
        found = self.indices(kind, name)
        return found[0] if found else None

    def count(self, kind: str, name: str | None = None) -> int:
        """How many such events were recorded."""
        return len(self.indices(kind, name))

    def has(self, kind: str, name: str | None = None) -> bool:
        """Whether at least one such event was recorded."""
        return self.first(kind, name) is not None

    def names(self, kind: str) -> set[str]:
        """Names of the drivers that recorded at least one event of ``kind``."""
        return {n for k, n in self.events if k == kind}

    def of(self, name: str) -> list[int]:
        """Positions of every event of driver ``name``."""
        return [i for i, (_, n) in enumerate(self.events) if n == name]
