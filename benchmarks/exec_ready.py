"""Workload 6: exec to READY, daemons as real processes.

Each run spawns a daemon of :mod:`processes`, times it from the spawn to
``READY=1`` on a notify socket, then from SIGTERM to its exit.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import processes
from harness import ratio, summary
from workloads import say

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from harness import Backend
    from workloads import Settings

EXEC_DAEMONS = (
    processes.TIERED_CLI,
    processes.TIERED_SERVE,
    processes.ANYIO_DAEMON,
    processes.ASYNCIO_DAEMON,
)
# what workload 6 compares on each backend: numerator ÷ denominator
EXEC_RATIOS = (
    ("tiered_cli", "anyio_daemon"),
    ("tiered_serve", "anyio_daemon"),
    ("tiered_cli", "tiered_serve"),
    ("anyio_daemon", "asyncio_daemon"),
)

Figures = list[float | None]
"""One figure per round; None where that round's run failed."""


Key = tuple[str, str | None]
"""A daemon's key and the backend it ran on (None for the floor)."""


@dataclass
class _Tally:
    """What the runs of workload 6 gave, per daemon and backend."""

    ready: dict[Key, Figures] = field(default_factory=dict)
    exits: dict[Key, Figures] = field(default_factory=dict)
    failed: dict[Key, int] = field(default_factory=dict)
    last: dict[Key, processes.Outcome] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)

    def expect(self, key: Key) -> None:
        """Make room for one daemon on one backend."""
        self.ready[key], self.exits[key], self.failed[key] = [], [], 0

    def record(self, key: Key, at: int, outcome: processes.Outcome) -> None:
        """One run's outcome; round 0 warms up and gives no figure."""
        if outcome.failure is None:
            self.last[key] = outcome
        else:
            self.failed[key] += 1
            self.failures.append(
                {
                    "subject": key[0],
                    "backend": key[1],
                    "round": at,
                    "why": outcome.failure,
                }
            )
        if at:
            self.ready[key].append(outcome.ready)
            self.exits[key].append(outcome.exit)

    def entry(self, key: Key) -> dict[str, Any]:
        """One daemon's figures on one backend."""
        return _exec_entry(
            self.ready[key], self.exits[key], self.failed[key], self.last.get(key)
        )


def exec_ready(
    settings: Settings,
    backends: Sequence[Backend],
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Daemons as processes: exec to READY=1, then READY=1 to exit on SIGTERM.

    Every subject runs once untimed first (its byte code compiled and cached,
    its files read once), then once per round: all of them, on every
    backend, in one order rotated each round.  The interpreter floor runs no
    event loop; every backend's comparisons use the same floor runs.
    """
    cases: list[tuple[processes.Daemon, str | None]] = [
        (d, b.name)
        for b in backends
        for d in EXEC_DAEMONS
        if d.backends is not None and b.name in d.backends
    ]
    cases.append((processes.FLOOR, None))
    tally = _Tally()
    for d, b in cases:
        tally.expect((d.key, b))

    def run(
        daemon: processes.Daemon, backend: str | None, at: int, workdir: Path
    ) -> None:
        outcome = processes.run_daemon(
            daemon,
            backend,
            workdir,
            settings.exec_timeout,
            settings.exec_drivers,
            settings.exec_tiers,
        )
        tally.record((daemon.key, backend), at, outcome)

    with processes.scratch_dir() as workdir:
        for daemon, backend in cases:
            run(daemon, backend, 0, workdir)
        say(progress, f"warmed up {len(cases)} daemons")
        rounds = settings.exec_rounds
        for r in range(rounds):
            shift = r % len(cases)
            for daemon, backend in cases[shift:] + cases[:shift]:
                run(daemon, backend, r + 1, workdir)
            say(progress, f"round {r + 1}/{rounds}")
    return _exec_result(settings, backends, tally)


def _exec_result(
    settings: Settings, backends: Sequence[Backend], tally: _Tally
) -> dict[str, Any]:
    """Workload 6's results: the daemons, the floor, and each backend's figures."""
    floor_key = (processes.FLOOR.key, None)
    result: dict[str, Any] = {
        "drivers": settings.exec_drivers,
        "tiers": settings.exec_tiers,
        "rounds": settings.exec_rounds,
        "timeout_s": settings.exec_timeout,
        "subjects": {
            d.key: {
                "label": d.label,
                "how": d.how,
                "backends": sorted(d.backends) if d.backends is not None else [],
                "command": d.command(None if d.backends is None else "BACKEND"),
            }
            for d in (*EXEC_DAEMONS, processes.FLOOR)
        },
        "floor": tally.entry(floor_key),
        "failures": tally.failures,
        "backends": {},
    }
    floor = tally.ready[floor_key]
    ready = tally.ready
    for b in backends:
        entries: dict[str, Any] = {}
        for d in EXEC_DAEMONS:
            key = (d.key, b.name)
            if key not in ready:
                continue
            entry = tally.entry(key)
            vs_floor = _paired_ratio(ready[key], floor)
            if vs_floor is not None:
                entry["vs_floor"] = vs_floor
                entry["above_floor_s"] = statistics.median(
                    _figures(ready[key])
                ) - statistics.median(_figures(floor))
            entries[d.key] = entry
        ratios: dict[str, Any] = {}
        for a, c in EXEC_RATIOS:
            if (a, b.name) in ready and (c, b.name) in ready:
                paired = _paired_ratio(ready[a, b.name], ready[c, b.name])
                if paired is not None:
                    ratios[f"{a}_vs_{c}"] = paired
        result["backends"][b.name] = {"subjects": entries, "ratios": ratios}
    return result


def _figures(values: Figures) -> list[float]:
    return [v for v in values if v is not None]


def _paired_ratio(numerator: Figures, denominator: Figures) -> dict[str, Any] | None:
    """:func:`harness.ratio` over the rounds where both sides have a figure."""
    pairs = [
        (a, b)
        for a, b in zip(numerator, denominator, strict=True)
        if a is not None and b is not None
    ]
    if not pairs:
        return None
    return ratio([a for a, _ in pairs], [b for _, b in pairs])


def _exec_entry(
    ready: Figures,
    exits: Figures,
    failures: int,
    last: processes.Outcome | None,
) -> dict[str, Any]:
    """One subject's figures: seconds to READY=1 and from it to the exit."""
    ok, gone = _figures(ready), _figures(exits)
    return {
        "runs": len(ok),
        "failures": failures,
        "ready": summary(ok) if ok else None,
        "exit": summary(gone) if gone else None,
        "ready_message": last.message if last is not None else None,
        "datagrams_before_ready": last.before_ready if last is not None else None,
    }
