"""``Report``: what happened in a run, as data that renders to text, JSON, SVG.

Times are seconds since the run began, read from ``anyio.current_time()``, so
a trio ``MockClock`` drives them.  Nothing here holds a driver's value: only
names, statuses, times and error descriptions (tests/test_report.py pins that
a secret handed between drivers never reaches a report).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape as _html_escape
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["ChainLink", "DriverRecord", "Report", "TierRecord"]

Status = Literal[
    "pending", "starting", "running", "failed", "skipped", "cancelled", "stopped"
]
PHASES = ("initialize", "autostart", "reload", "stop")


@dataclass(frozen=True, slots=True)
class DriverRecord:
    """One driver in a :class:`Report`.

    Attributes:
        name: the driver's name.
        tier: its tier.
        status: ``"pending"`` (its tier has not begun), ``"starting"``,
            ``"running"``, ``"failed"``, ``"skipped"``, ``"cancelled"`` (its
            start was cancelled: a sibling failed, or from outside) or
            ``"stopped"``.
        optional: whether its failure is tolerated.
        phases: phase name (``"initialize"``, ``"autostart"``, ``"reload"``,
            ``"stop"``) to ``(start, end)``; a phase not run is absent, one
            still running has ``end`` None.
        error: ``"ExceptionType: message"`` of its failure, if any.
        reason: why it was skipped or cancelled, if it was.
        status_text: the last ``ctx.status()`` it set.
    """

    name: str
    tier: int
    status: Status
    optional: bool
    phases: Mapping[str, tuple[float, float | None]]
    error: str | None = None
    reason: str | None = None
    status_text: str | None = None

    def duration(self, phase: str) -> float | None:
        """Seconds ``phase`` took; None if it did not run or has not ended."""
        times = self.phases.get(phase)
        if times is None or times[1] is None:
            return None
        return times[1] - times[0]

    @property
    def startup(self) -> float:
        """Seconds of ``initialize`` plus ``autostart`` (what blame sorts by)."""
        return (self.duration("initialize") or 0.0) + (
            self.duration("autostart") or 0.0
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as :meth:`Report.to_json` writes it."""
        return {
            "name": self.name,
            "tier": self.tier,
            "status": self.status,
            "optional": self.optional,
            "phases": {k: list(v) for k, v in self.phases.items()},
            "error": self.error,
            "reason": self.reason,
            "status_text": self.status_text,
        }


@dataclass(frozen=True, slots=True)
class TierRecord:
    """One tier: its drivers, when it began and when its barrier passed."""

    index: int
    drivers: tuple[str, ...]
    start: float
    end: float | None

    @property
    def duration(self) -> float | None:
        """Seconds from the tier's first initialize to its barrier."""
        return None if self.end is None else self.end - self.start


@dataclass(frozen=True, slots=True)
class ChainLink:
    """One step of the critical chain: the driver a tier's barrier waited on."""

    tier: int
    name: str
    phase: str
    start: float
    end: float

    @property
    def duration(self) -> float:
        """Seconds the phase took."""
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Report:
    """What happened in one run; a frozen snapshot taken by ``run.report``.

    Example::

        async with runtime.run() as run:
            report = run.report  # the start-up: every tier is up here
            print(report.to_text())  # tiers, blame, critical chain
            slowest = report.blame()[0]
            print(slowest.name, slowest.startup)
        # read after the block, it holds the stop phases too
        Path("timeline.svg").write_text(run.report.to_svg())

    Attributes:
        name: the runtime's name.
        drivers: one record per driver, in tier then declaration order.
        tiers: the tiers that began, in start order.
        ready_at: when every tier was up, or None.
        stopping_at: when the shutdown began, or None.
        stopped_at: when the run ended, or None.
    """

    name: str
    drivers: tuple[DriverRecord, ...]
    tiers: tuple[TierRecord, ...]
    ready_at: float | None = None
    stopping_at: float | None = None
    stopped_at: float | None = None

    def driver(self, name: str) -> DriverRecord:
        """The record of the driver ``name``.

        Raises:
            KeyError: no driver of that name.
        """
        for record in self.drivers:
            if record.name == name:
                return record
        raise KeyError(name)

    def blame(self) -> tuple[DriverRecord, ...]:
        """Drivers that started, slowest start-up (initialize + autostart) first."""
        started = [r for r in self.drivers if "initialize" in r.phases]
        return tuple(sorted(started, key=lambda r: -r.startup))

    def critical_chain(self) -> tuple[ChainLink, ...]:
        """What start-up waited on, tier by tier.

        Per tier: the driver whose ``initialize`` ended last (every autostart
        of the tier waited for it), then the one whose ``autostart`` ended
        last (the next tier waited for it), when the tier has autostarts.
        """
        by_name = {r.name: r for r in self.drivers}
        chain: list[ChainLink] = []
        for tier in self.tiers:
            for phase in ("initialize", "autostart"):
                best: ChainLink | None = None
                for name in tier.drivers:
                    times = by_name[name].phases.get(phase)
                    if times is None or times[1] is None:
                        continue
                    if best is None or times[1] > best.end:
                        best = ChainLink(tier.index, name, phase, times[0], times[1])
                if best is not None:
                    chain.append(best)
        return tuple(chain)

    # -- renderings ------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain data: what :meth:`to_json` writes."""
        return {
            "name": self.name,
            "ready_at": self.ready_at,
            "stopping_at": self.stopping_at,
            "stopped_at": self.stopped_at,
            "tiers": [
                {
                    "index": t.index,
                    "drivers": list(t.drivers),
                    "start": t.start,
                    "end": t.end,
                }
                for t in self.tiers
            ],
            "drivers": [r.to_dict() for r in self.drivers],
            "blame": [{"name": r.name, "startup": r.startup} for r in self.blame()],
            "critical_chain": [
                {
                    "tier": c.tier,
                    "name": c.name,
                    "phase": c.phase,
                    "start": c.start,
                    "end": c.end,
                }
                for c in self.critical_chain()
            ],
        }

    def to_json(self, *, indent: int | None = None) -> str:
        """The report as JSON (times in seconds, None as null)."""
        return json.dumps(self.to_dict(), indent=indent)

    def format_blame(self, limit: int | None = None) -> str:
        """Like ``systemd-analyze blame``: one line per driver, slowest first."""
        lines = [
            f"{r.startup:9.3f}s  {r.name} (tier {r.tier}){_suffix(r)}"
            for r in self.blame()[:limit]
        ]
        return "\n".join(lines)

    def format_critical_chain(self) -> str:
        """Like ``systemd-analyze critical-chain``: per tier, what it waited on."""
        lines: list[str] = []
        ends = {t.index: t.end for t in self.tiers}
        current = None
        for link in self.critical_chain():
            if link.tier != current:
                current = link.tier
                end = ends.get(link.tier)
                up = f"up @{end:.3f}s" if end is not None else "not up"
                lines.append(f"tier {link.tier} {up}")
            lines.append(
                f"  └─ {link.name} {link.phase} +{link.duration:.3f}s (@{link.start:.3f}s)"
            )
        return "\n".join(lines)

    def to_text(self) -> str:
        """A human summary: tiers, then blame, then the critical chain."""
        if self.ready_at is not None:
            head = f"runtime {self.name!r} was up in {self.ready_at:.3f}s"
        else:
            head = f"runtime {self.name!r} did not come up"
        lines = [head, ""]
        by_name = {r.name: r for r in self.drivers}
        for tier in self.tiers:
            took = f"{tier.duration:.3f}s" if tier.duration is not None else "-"
            lines.append(f"tier {tier.index} ({took})")
            for name in tier.drivers:
                r = by_name[name]
                phases = "  ".join(
                    f"{p} {d:.3f}s"
                    for p in ("initialize", "autostart", "stop")
                    if (d := r.duration(p)) is not None
                )
                lines.append(f"  {r.name:<20} {r.status:<9} {phases}{_suffix(r)}")
        blame = self.format_blame()
        if blame:
            lines += ["", "blame:", blame]
        chain = self.format_critical_chain()
        if chain:
            lines += ["", "critical chain:", chain]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()

    def to_svg(self) -> str:
        """A timeline like ``systemd-analyze plot``: a bar per driver and phase.

        Rows are grouped by tier, with the tier's barrier drawn as a dashed
        line.  When the run has stopped, the time it spent running is cut out
        of the axis so start-up and shutdown both stay readable.
        """
        return _svg(self)


def _escape(text: str) -> str:
    """Text for an SVG text node (xml.sax.saxutils costs 25 ms of imports)."""
    return _html_escape(text, quote=False)


def _suffix(r: DriverRecord) -> str:
    if r.error:
        return f"  [{r.error}]"
    if r.reason:
        return f"  [{r.reason}]"
    return ""


# -- SVG --------------------------------------------------------------------

_COLORS = {
    "initialize": "#4e79a7",
    "autostart": "#59a14f",
    "reload": "#b07aa1",
    "stop": "#e15759",
}
_ROW = 22
_LABEL = 220
_WIDTH = 760
_GAP = 60


class _Axis:
    """Seconds to pixels; the time the run spent up is squeezed into a gap.

    Without the squeeze a daemon that ran for a day would draw its start-up
    and its shutdown as two specks at both ends.
    """

    def __init__(self, ready: float, stopping: float | None, end: float) -> None:
        self.ready, self.stopping, self.end = ready, stopping, end
        self.cut = stopping is not None and end > stopping
        if self.cut:
            assert stopping is not None
            up, down = ready, end - stopping
            # the shutdown gets a fair share of the width even when it was quick
            share = min(max(down / ((up + down) or 1.0), 0.2), 0.5)
            self.down_px = (_WIDTH - _GAP) * share
            self.up_px = _WIDTH - _GAP - self.down_px
        else:
            self.up_px, self.down_px = float(_WIDTH), 0.0
            self.ready = max(end, ready)

    def __call__(self, t: float) -> float:
        if t <= self.ready or not self.cut:
            return _LABEL + t / (self.ready or 1e-9) * self.up_px
        stopping = self.stopping
        assert stopping is not None
        if t < stopping:  # while up: reloads land in the gap
            return (
                _LABEL + self.up_px + (t - self.ready) / (stopping - self.ready) * _GAP
            )
        span = (self.end - stopping) or 1e-9
        return _LABEL + self.up_px + _GAP + (t - stopping) / span * self.down_px

    def ticks(self) -> list[float]:
        ticks = [self.ready * i / 6 for i in range(7)]
        if self.cut:
            assert self.stopping is not None
            ticks += [self.stopping, self.end]
        return ticks


def _svg(report: Report) -> str:
    ends = [t[1] for r in report.drivers for t in r.phases.values() if t[1] is not None]
    end = max([0.0, *ends])
    ready = report.ready_at if report.ready_at is not None else end
    axis = _Axis(ready, report.stopping_at, end)
    by_name = {r.name: r for r in report.drivers}

    body: list[str] = []
    y = 40
    for tier in report.tiers:
        took = f" ({tier.duration:.3f}s)" if tier.duration is not None else ""
        body.append(
            f'<text x="8" y="{y + 15}" class="tier">tier {tier.index}{took}</text>'
        )
        top = y
        y += _ROW
        for name in tier.drivers:
            r = by_name[name]
            body.append(
                f'<text x="20" y="{y + 15}" class="{r.status}">{_escape(name)}'
                f"<title>{_escape(name)}: {r.status}{_escape(_suffix(r))}</title></text>"
            )
            for phase, (t0, t1) in r.phases.items():
                if t1 is None:
                    continue
                x0, x1 = axis(t0), axis(t1)
                body.append(
                    f'<rect x="{x0:.2f}" y="{y + 4}" width="{max(x1 - x0, 1.0):.2f}" '
                    f'height="{_ROW - 8}" fill="{_COLORS.get(phase, "#999")}">'
                    f"<title>{_escape(name)} {phase}: {t0:.3f}s to {t1:.3f}s "
                    f"({t1 - t0:.3f}s)</title></rect>"
                )
            y += _ROW
        body.append(
            f'<rect x="4" y="{top}" width="{_LABEL + _WIDTH}" height="{y - top}" class="band"/>'
        )
        if tier.end is not None:
            bx = axis(tier.end)
            body.append(
                f'<line x1="{bx:.2f}" y1="{top}" x2="{bx:.2f}" y2="{y}" class="barrier">'
                f"<title>tier {tier.index} barrier at {tier.end:.3f}s</title></line>"
            )
        y += 6

    grid: list[str] = []
    last = -1e9
    for t in axis.ticks():
        tx = axis(t)
        if tx - last < 45:  # keep labels apart
            continue
        last = tx
        grid.append(
            f'<line x1="{tx:.2f}" y1="30" x2="{tx:.2f}" y2="{y}" class="grid"/>'
            f'<text x="{tx:.2f}" y="24" class="tick">{t:.3f}s</text>'
        )
    if axis.cut:
        assert report.stopping_at is not None
        gx = _LABEL + axis.up_px + _GAP / 2
        grid.append(
            f'<text x="{gx:.2f}" y="{y + 16}" class="tick">up for '
            f"{report.stopping_at - ready:.1f}s</text>"
        )
    legend = "".join(
        f'<rect x="{_LABEL + i * 110}" y="{y + 28}" width="12" height="12" fill="{c}"/>'
        f'<text x="{_LABEL + i * 110 + 16}" y="{y + 38}" class="legend">{p}</text>'
        for i, (p, c) in enumerate(_COLORS.items())
    )
    up = f"up in {report.ready_at:.3f}s" if report.ready_at is not None else "not up"
    title = _escape(f"{report.name}: start-up timeline, {up}")
    width, height = _LABEL + _WIDTH + 20, y + 50
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">'
        "<style>"
        ".tier{font-weight:bold}.tick{fill:#555;font-size:10px;text-anchor:middle}"
        ".legend{fill:#333;font-size:11px}.grid{stroke:#e4e4e4}"
        ".band{fill:none;stroke:#ccc}.barrier{stroke:#333;stroke-dasharray:4 3}"
        ".failed{fill:#c00}.skipped,.cancelled,.pending{fill:#888}"
        "</style>"
        f'<text x="8" y="14" class="tier">{title}</text>'
        + "".join(grid)
        + "".join(body)
        + legend
        + "</svg>\n"
    )
