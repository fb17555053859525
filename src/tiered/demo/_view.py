"""What the demo prints: the live view of a start, the restart tables."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

if TYPE_CHECKING:
    from typing import TextIO

    import tiered

    from ._host import Mode

__all__ = ["LiveView", "Stats", "format_table"]


@dataclass
class Stats:
    """The outcome of ``restarts`` restarts of the daemon in one mode."""

    mode: Mode
    backend: str
    restarts: int = 0
    restarts_with_kills: int = 0
    domains_killed: int = 0
    #: restarts in which the rbd pool stayed down: its key was not there yet
    unkeyed: int = 0
    #: guest name to how many times it was killed
    victims: dict[str, int] = field(default_factory=dict)
    startups: list[float] = field(default_factory=list)
    #: "restart N: message" for each warning or error the daemon logged
    notes: list[str] = field(default_factory=list)

    @property
    def startup_median_s(self) -> float | None:
        """Median seconds from the start of a run to every tier up."""
        return statistics.median(self.startups) if self.startups else None

    @property
    def share(self) -> float:
        """Share of restarts in which at least one guest was killed."""
        return self.restarts_with_kills / self.restarts if self.restarts else 0.0

    def to_json(self) -> dict[str, Any]:
        """The one JSON line of ``--json``."""
        median = self.startup_median_s
        return {
            "mode": self.mode,
            "restarts": self.restarts,
            "restarts_with_kills": self.restarts_with_kills,
            "domains_killed": self.domains_killed,
            "startup_median_s": None if median is None else round(median, 4),
        }


def format_table(columns: list[Stats]) -> str:
    """One column per mode, side by side."""
    rows: list[tuple[str, list[str]]] = [
        ("mode", [s.mode for s in columns]),
        ("restarts", [str(s.restarts) for s in columns]),
        (
            "restarts with kills",
            [f"{s.restarts_with_kills} ({s.share:.0%})" for s in columns],
        ),
        ("guests killed", [str(s.domains_killed) for s in columns]),
        ("rbd pool without its key", [str(s.unkeyed) for s in columns]),
        (
            "median start-up",
            [
                "-" if (m := s.startup_median_s) is None else f"{m:.3f} s"
                for s in columns
            ],
        ),
    ]
    label = max(len(r[0]) for r in rows)
    width = max(12, *(len(v) for _, values in rows for v in values))
    lines = [
        f"{name:<{label}}" + "".join(f"  {v:>{width}}" for v in values)
        for name, values in rows
    ]
    rule = "-" * len(lines[0])
    return "\n".join([lines[0], rule, *lines[1:]])


class LiveView:
    """Follows a run while it starts: a progress display, or plain lines.

    It polls ``run.report`` (a snapshot) every few milliseconds; on a terminal
    it redraws one line per tier, otherwise it prints one line per event
    (a tier begins, a driver sets its status, a tier is up).
    """

    POLL = 0.005
    BAR = 20

    def __init__(self, out: TextIO, *, tty: bool) -> None:
        self.out = out
        self.tty = tty
        self._drawn = 0
        self._seen_tiers: set[int] = set()
        self._up_tiers: set[int] = set()
        self._status: dict[str, str | None] = {}
        self._last: dict[int, str] = {}
        self._t0 = 0.0
        self._frame: list[str] = []
        utf = "utf" in (getattr(out, "encoding", None) or "").lower()
        self._full, self._empty = ("█", "░") if utf else ("#", "-")

    async def follow(self, run: tiered.Run, finished: anyio.Event) -> None:
        """Show the run's start until every tier is up (or it stopped)."""
        tiers = run.plan.tiers
        self._t0 = anyio.current_time()  # the run takes its own t0 just after
        while True:
            report = run.report
            done = report.ready_at is not None or report.stopped_at is not None
            if self.tty:
                self._draw(report, tiers)
            else:
                self._lines(report)
            if done:
                break
            await anyio.sleep(self.POLL)
        finished.set()

    # -- plain lines -----------------------------------------------------------

    def _lines(self, report: tiered.Report) -> None:
        by_name = {r.name: r for r in report.drivers}
        for tier in report.tiers:
            if tier.index not in self._seen_tiers:
                self._seen_tiers.add(tier.index)
                self._print(f"tier {tier.index} starts: {', '.join(tier.drivers)}")
            for name in tier.drivers:
                text = by_name[name].status_text
                if text is not None and text != self._status.get(name):
                    self._status[name] = text
                    self._print(f"  {name}: {text}")
            if tier.end is not None and tier.index not in self._up_tiers:
                self._up_tiers.add(tier.index)
                took = tier.end - tier.start
                self._print(f"tier {tier.index} is up ({took:.3f} s)")
        for record in report.drivers:
            if record.status == "failed" and self._status.get(record.name) != "!":
                self._status[record.name] = "!"
                self._print(f"  {record.name} failed: {record.error}")

    def _print(self, text: str) -> None:
        at = anyio.current_time() - self._t0
        print(f"{at:7.3f}s {text}", file=self.out, flush=True)

    # -- a progress display ----------------------------------------------------

    def _draw(self, report: tiered.Report, tiers: tuple[tuple[str, ...], ...]) -> None:
        by_name = {r.name: r for r in report.drivers}
        begun = {t.index: t for t in report.tiers}
        lines: list[str] = []
        for index, names in enumerate(tiers):
            records = [by_name[n] for n in names]
            for r in records:
                if r.status_text is not None and r.status_text != self._status.get(
                    r.name
                ):
                    self._status[r.name] = r.status_text
                    self._last[index] = f"{r.name}: {r.status_text}"
            steps = sum(
                1.0
                if r.status == "running"
                else 0.5
                if r.duration("initialize") is not None
                else 0.0
                for r in records
            )
            filled = round(self.BAR * steps / max(len(records), 1))
            bar = self._full * filled + self._empty * (self.BAR - filled)
            tier = begun.get(index)
            if tier is None:
                what = "waiting"
            elif tier.end is not None:
                what = f"up in {tier.end - tier.start:.3f} s"
            else:
                what = self._last.get(index, "starting")
            up = sum(r.status == "running" for r in records)
            lines.append(
                f"tier {index} {bar} {up}/{len(records)}  {', '.join(names)}"[:100]
            )
            lines.append(f"         {what}"[:100])
        if lines == self._frame:
            return
        self._frame = lines
        if self._drawn:
            self.out.write(f"\x1b[{self._drawn}F")
        for line in lines:
            self.out.write(f"\x1b[2K{line}\n")
        self.out.flush()
        self._drawn = len(lines)
