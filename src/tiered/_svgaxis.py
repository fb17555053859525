"""The time axis of the SVG timeline: seconds to pixels, in pieces.

Start-up gets most of the width and shutdown a fair share; the time the run
spent up is cut down to a narrow *gap* (a break mark shows the cut), or,
when something happened meanwhile (a reload, a failure, a restart), to a
wider gap with a scale of its own around what happened.  Without the cut a
daemon that ran for a day would draw its start-up and its shutdown as two
specks at both ends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._report import Report

__all__ = ["LEFT", "WIDTH", "Axis"]

LEFT = 220  # where the timeline begins: the names are to its left
WIDTH = 760  # the timeline's width
_GAP = 60  # the cut when nothing happened while the run was up
_BUSY_GAP = 200  # the cut when something did: wide enough for a scale
_ELIDED = 16  # what an elided stretch of time takes inside the gap


class Axis:
    """Seconds since the run began to x, piece by piece.

    Attributes:
        pieces: ``(t0, t1, x0, x1)``, each mapped linearly, in time order.
        breaks: x of each place where time is cut out.
        gap: the x span of the time the run was up, if it is cut.
        window: the times the gap shows at scale, if something happened.
        ticks: ``(time, kind)``: ``"main"`` for the start-up and shutdown
            scale, ``"gap"`` for the gap's own.
    """

    def __init__(self, report: Report) -> None:
        times = _times(report)
        end = max([0.0, *times])
        ready, stopping = report.ready_at, report.stopping_at
        self.end = end
        self.pieces: list[tuple[float, float, float, float]] = []
        self.breaks: list[float] = []
        self.gap: tuple[float, float] | None = None
        self.window: tuple[float, float] | None = None
        self.ticks: list[tuple[float, str]] = []
        if ready is None or (stopping is None and end <= ready):
            # start-up only (it failed, or the run is still starting or just up)
            last = max(end, ready or 0.0)
            self._piece(0.0, last, LEFT, LEFT + WIDTH)
            self.ticks = [(last * i / 6, "main") for i in range(7)]
            return
        up_end = stopping if stopping is not None else end
        # what happened while up: phases inside it, events up to its end (a
        # give-up comes at the very time the shutdown begins)
        inside = [t for t in times if ready < t < up_end]
        inside += [t for t in _event_times(report) if ready < t <= up_end]
        down = end - stopping if stopping is not None else 0.0
        gap_px = _BUSY_GAP if inside else _GAP
        down_px = 0.0
        if down > 0:
            share = min(max(down / ((ready + down) or 1.0), 0.2), 0.5)
            down_px = (WIDTH - gap_px) * share
        up_px = WIDTH - gap_px - down_px
        self._piece(0.0, ready, LEFT, LEFT + up_px)
        self.ticks = [(ready * i / 6, "main") for i in range(7)]
        gx0 = LEFT + up_px
        self.gap = (gx0, gx0 + gap_px)
        if inside:
            self._window(ready, up_end, min(inside), max(inside))
        else:
            self._piece(ready, up_end, gx0, gx0 + gap_px)
            self.breaks.append(gx0 + gap_px / 2)
        if down_px:
            assert stopping is not None
            self._piece(stopping, end, gx0 + gap_px, gx0 + gap_px + down_px)
            self.ticks += [(stopping, "main"), (end, "main")]

    def _piece(self, t0: float, t1: float, x0: float, x1: float) -> None:
        self.pieces.append((t0, t1, x0, x1))

    def _window(self, ready: float, up_end: float, c0: float, c1: float) -> None:
        """The gap shows ``c0``..``c1`` at scale; the rest of the up time is cut."""
        assert self.gap is not None
        gx0, gx1 = self.gap
        span = c1 - c0
        pad = max(span * 0.08, (up_end - ready) * 0.002, 1e-6)
        w0, w1 = max(ready, c0 - pad), min(up_end, c1 + pad)
        # cut only a stretch long enough to mislead if drawn at the scale
        cut_left = w0 - ready > max(span, pad) * 0.5
        cut_right = up_end - w1 > max(span, pad) * 0.5
        if not cut_left:
            w0 = ready
        if not cut_right:
            w1 = up_end
        x0 = gx0 + (_ELIDED if cut_left else 0)
        x1 = gx1 - (_ELIDED if cut_right else 0)
        if cut_left:
            self._piece(ready, w0, gx0, x0)
            self.breaks.append(gx0 + _ELIDED / 2)
        self._piece(w0, w1, x0, x1)
        if cut_right:
            self._piece(w1, up_end, x1, gx1)
            self.breaks.append(gx1 - _ELIDED / 2)
        self.window = (c0, c1)
        self.ticks += [(c0, "gap"), (c1, "gap")]

    def __call__(self, t: float) -> float:
        for t0, t1, x0, x1 in self.pieces:
            if t <= t1:
                if t <= t0 or t1 <= t0:
                    return x0
                return x0 + (t - t0) / (t1 - t0) * (x1 - x0)
        return self.pieces[-1][3] if self.pieces else float(LEFT)


def _times(report: Report) -> list[float]:
    """Every time the timeline draws: phases, events, the ends of restart delays."""
    times = [
        t
        for r in report.drivers
        for start, end in r.phases.values()
        for t in (start, end)
        if t is not None
    ]
    if report.stopped_at is not None:
        times.append(report.stopped_at)
    return times + _event_times(report)


def _event_times(report: Report) -> list[float]:
    """When each failure, restart and give-up happened, and each restart's delay ended."""
    times = []
    for e in report.events:
        times.append(e.time)
        if e.kind == "restart" and isinstance(e.value, int | float):
            times.append(e.time + float(e.value))
    return times
