"""The SVG timeline of a report, like ``systemd-analyze plot``.

Apart from ``_report`` because only a user who draws a timeline needs it.
"""

from __future__ import annotations

from html import escape as _html_escape
from typing import TYPE_CHECKING

from ._report import record_suffix

if TYPE_CHECKING:
    from ._report import Report

__all__ = ["render_svg"]


def _escape(text: str) -> str:
    """Text for an SVG text node (xml.sax.saxutils costs 25 ms of imports)."""
    return _html_escape(text, quote=False)


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


def render_svg(report: Report) -> str:
    """The timeline of ``report`` as an SVG document."""
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
                f"<title>{_escape(name)}: {r.status}{_escape(record_suffix(r))}</title></text>"
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
