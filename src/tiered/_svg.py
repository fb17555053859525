"""The SVG timeline of a report, like ``systemd-analyze plot``.

Apart from ``_report`` because only a user who draws a timeline needs it.
What it must survive: being printed or turned into a PNG, where hover
``<title>``\\ s are lost, so every error and reason is also written on the
page (truncated); and runs that failed, skipped, waited or restarted, which
are drawn differently from runs that went well (tests/test_svg.py).
"""

from __future__ import annotations

from html import escape as _html_escape
from typing import TYPE_CHECKING

from ._report import groups, place_wait, record_note, tier_label
from ._svgaxis import LEFT, WIDTH, Axis

if TYPE_CHECKING:
    from ._journal import RunEvent
    from ._report import DriverRecord, Report, TierRecord

__all__ = ["render_svg"]


def _escape(text: str) -> str:
    """Text for an SVG text node (xml.sax.saxutils costs 25 ms of imports)."""
    return _html_escape(text, quote=False)


_COLORS = {
    "initialize": "#4e79a7",
    "autostart": "#59a14f",
    "reload": "#b07aa1",
    "stop": "#9c755f",
}
#: how a phase that did not go well is filled instead of its colour
_FILLS = {
    "failed": "#d62728",
    "timeout": "url(#p-timeout)",
    "cancelled": "url(#p-cancelled)",
    "skipped": "#bdbdbd",
}
_ROW = 22
_NOTE = 13  # the line under a row that says what went wrong
_TOP = 60  # where the first row begins: title, scale and the gap's scale above
_AXIS = 53  # the axis line, on which break marks cut the time the run was up
_RIGHT = LEFT + WIDTH
_CHAR = 5.6  # the width of a character of a note, in pixels, about

_DEFS = (
    "<defs>"
    '<pattern id="p-timeout" width="6" height="6" patternUnits="userSpaceOnUse" '
    'patternTransform="rotate(45)"><rect width="6" height="6" fill="#f4b6b6"/>'
    '<rect width="3" height="6" fill="#d62728"/></pattern>'
    '<pattern id="p-cancelled" width="6" height="6" patternUnits="userSpaceOnUse" '
    'patternTransform="rotate(45)"><rect width="6" height="6" fill="#e6e6e6"/>'
    '<rect width="2" height="6" fill="#999"/></pattern>'
    '<pattern id="p-wait" width="4" height="4" patternUnits="userSpaceOnUse" '
    'patternTransform="rotate(45)"><rect width="4" height="4" fill="#fff"/>'
    '<rect width="1.5" height="4" fill="#bbb"/></pattern>'
    "</defs>"
)
_STYLE = (
    "<style>"
    ".title{font-weight:bold;font-size:13px}.tier{font-weight:bold}"
    ".tier.failed{fill:#c00}.tier.pending{fill:#888}"
    ".tick{fill:#555;font-size:10px;text-anchor:middle}"
    ".tick.gap{fill:#8a6d00;font-style:italic}.up-for{fill:#555;font-size:10px;"
    "text-anchor:middle}.legend{fill:#333;font-size:11px}.grid{stroke:#e4e4e4}"
    ".axis{stroke:#999}.band{fill:none;stroke:#ccc}.barrier{stroke:#333;stroke-dasharray:4 3}"
    ".cut{fill:#f3f3f3}.break{stroke:#555;stroke-width:1.5}"
    ".name.failed{fill:#c00}.name.skipped,.name.cancelled,.name.pending{fill:#888}"
    ".restarts{fill:#b35900;font-size:10px}"
    ".note{font-size:10px;fill:#555;paint-order:stroke;stroke:#fff;stroke-width:3px}"
    ".note.failed,.note.crashed{fill:#c00}"
    ".wait-requirements{stroke:#999;stroke-dasharray:2 3}.wait{stroke:#bbb}"
    ".crash{stroke:#c00;stroke-width:2.5}"
    ".restart{stroke:#f28e2b;stroke-width:1.5;fill:none;stroke-dasharray:3 2}"
    ".restart-label{fill:#b35900;font-size:10px}"
    ".gave-up{fill:#c00}.gave-up-label{fill:#c00;font-size:10px;font-weight:bold}"
    "</style>"
)


def render_svg(report: Report) -> str:
    """The timeline of ``report`` as an SVG document."""
    axis = Axis(report)
    rows: list[str] = []
    y: float = _TOP
    for index, tier, records in groups(report):
        y = _group(rows, report, axis, y, index, tier, records)
    bottom = y
    legend, height = _legend(report, bottom + 30)
    width = _RIGHT + 20
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">'
        + _DEFS
        + _STYLE
        + f'<rect width="{width}" height="{height}" fill="#fff"/>'
        + f'<text x="8" y="18" class="title">{_escape(_title(report))}</text>'
        + _cut(axis, bottom, report)
        + _grid(axis, bottom)
        + f'<line x1="{LEFT}" y1="{_AXIS}" x2="{_RIGHT}" y2="{_AXIS}" class="axis"/>'
        + "".join(rows)
        + _breaks(axis, bottom)
        + legend
        + "</svg>\n"
    )


def _title(report: Report) -> str:
    if report.ready_at is not None:
        up = f"up in {report.ready_at:.3f}s"
    else:
        from ._report import failure_cause

        cause = failure_cause(report)
        up = "did not come up"
        if cause is not None:
            up += f": {cause.name} (tier {cause.tier}) failed in {cause.failed_in}"
    mode = ", schedule: dependencies" if report.schedule == "dependencies" else ""
    return f"{report.name}: start-up timeline, {up}{mode}"


def _group(
    out: list[str],
    report: Report,
    axis: Axis,
    y: float,
    index: int,
    tier: TierRecord | None,
    records: list[DriverRecord],
) -> float:
    """One tier: its label, its rows, its band and (tiers mode) its barrier."""
    kind = "tier"
    if report.schedule == "tiers" and tier is None:
        kind += " pending"
    elif report.schedule == "tiers" and tier is not None and tier.end is None:
        kind += " failed"
    label = _escape(tier_label(report, index, tier))
    out.append(f'<text x="8" y="{y + 15}" class="{kind}">{label}</text>')
    top = y
    y += _ROW
    for record in records:
        y = _row(out, report, axis, y, record)
    out.append(
        f'<rect x="4" y="{top}" width="{_RIGHT - 4}" height="{y - top}" class="band"/>'
    )
    if report.schedule == "tiers" and tier is not None and tier.end is not None:
        bx = axis(tier.end)
        out.append(
            f'<line x1="{bx:.2f}" y1="{top}" x2="{bx:.2f}" y2="{y}" class="barrier">'
            f"<title>tier {tier.index} barrier at {tier.end:.3f}s</title></line>"
        )
    return y + 6


def _row(
    out: list[str], report: Report, axis: Axis, y: float, r: DriverRecord
) -> float:
    """One driver: name, waits, bars, markers, and a note of what went wrong."""
    note = _note_text(report, r)
    title = f"{r.name}: {r.status}" + (f" ({note})" if note else "")
    badge = f'<tspan class="restarts"> \u21bb{r.restarts}</tspan>' if r.restarts else ""
    out.append(
        f'<text x="20" y="{y + 15}" class="name {r.status}">{_escape(r.name)}{badge}'
        f"<title>{_escape(title)}</title></text>"
    )
    _waits(out, report, axis, y, r)
    first_x = _bars(out, report, axis, y, r)
    events = [e for e in report.events if e.driver == r.name]
    restarts = [e for e in events if e.kind == "restart"]
    for e in events:
        # the latest restart ends where the latest start began: the delay
        # came after the subtree had stopped
        began = r.began_at if restarts and e is restarts[-1] else None
        _marker(out, axis, y, e, began if began and began > e.time else None)
    if note and not r.phases:  # nothing drawn: the note fits on the row
        _note(out, y + 6, float(LEFT) + 4, note, r)
    elif note:
        _note(out, y + _ROW - 1, first_x, note, r)
        return y + _ROW + _NOTE
    return y + _ROW


def _note_text(report: Report, r: DriverRecord) -> str | None:
    """What the row says in words under its bars (what a PNG keeps)."""
    note = record_note(r, report)
    if note and r.status in ("skipped",) and not note.startswith("skipped"):
        note = f"skipped: {note}"
    # failures after start-up, each with its time (the crosses on the row)
    crashes = [
        f"failed @{e.time:.3f}s in {e.value}: {_error_of(e)}"
        for e in report.events
        if e.kind == "failure" and e.driver == r.name and e.value != "contained"
    ]
    if crashes:
        if r.failed_in == "background":
            note = None  # the last of the crashes says it
        note = "; ".join([*crashes, *([note] if note else [])])
    if r.restarts:
        began = r.began_at
        latest = f" (@{began:.3f}s)" if began is not None else ""
        what = f"restarted {r.restarts}x: the bars are its latest start's{latest}"
        note = f"{note}; {what}" if note else what
    return note


def _error_of(e: RunEvent) -> str:
    """The error of a failure event: its detail without the driver and phase."""
    detail = e.detail or ""
    head, sep, rest = detail.partition(f", phase {e.value}: ")
    return rest if sep and head.startswith("driver ") else detail


def _waits(
    out: list[str], report: Report, axis: Axis, y: float, r: DriverRecord
) -> None:
    """Waiting drawn apart from working: a dotted line, a hatched thin bar."""
    eligible, began, mid = r.eligible_at, r.began_at, y + _ROW / 2
    if eligible is None or began is None:
        return
    if report.schedule == "dependencies" and r.restarts == 0 and eligible > 0.0005:
        x1 = axis(eligible)
        out.append(
            f'<line x1="{axis(0.0):.2f}" y1="{mid}" x2="{x1:.2f}" y2="{mid}" '
            f'class="wait-requirements"><title>{_escape(r.name)} waited for its '
            f"requirements until {eligible:.3f}s</title></line>"
        )
    waited = r.waited
    if waited is not None and waited > 0.0005:
        x0, x1 = axis(eligible), axis(began)
        out.append(
            f'<rect x="{x0:.2f}" y="{mid - 4}" width="{max(x1 - x0, 1.0):.2f}" '
            f'height="8" fill="url(#p-wait)" class="wait"><title>{_escape(r.name)} '
            f"waited {waited:.3f}s {place_wait(report.max_concurrent_starts)}"
            "</title></rect>"
        )


def _bars(
    out: list[str], report: Report, axis: Axis, y: float, r: DriverRecord
) -> float:
    """A bar per phase, failed and cancelled ones drawn so; the first bar's x."""
    first = float(_RIGHT)
    for phase, (t0, t1) in r.phases.items():
        still = t1 is None
        end = axis.end if t1 is None else t1
        how = _how(r, phase)
        fill = _FILLS[how] if how else _COLORS.get(phase, "#999")
        x0, x1 = axis(t0), axis(end)
        first = min(first, x0)
        what = f"{t0:.3f}s to {end:.3f}s ({end - t0:.3f}s)"
        if still:
            what = f"since {t0:.3f}s, still running"
        label = f"{r.name} {phase}{f' ({how})' if how else ''}: {what}"
        classes = f"bar {phase}" + (f" {how}" if how else "")
        # still running: drawn to the last time known, faded
        faded = ' fill-opacity="0.5"' if still else ""
        if still:
            classes += " open"
        out.append(
            f'<rect x="{x0:.2f}" y="{y + 4}" width="{max(x1 - x0, 1.0):.2f}" '
            f'height="{_ROW - 8}" fill="{fill}" class="{classes}"{faded}>'
            f"<title>{_escape(label)}</title></rect>"
        )
    return first


def _how(r: DriverRecord, phase: str) -> str | None:
    """Whether ``phase`` of ``r`` went wrong: failed, timeout, cancelled, skipped."""
    if phase == r.failed_in:
        return "timeout" if r.timed_out else "failed"
    last = "autostart" if "autostart" in r.phases else "initialize"
    if phase != last:
        return None
    if r.status == "skipped" and r.reason is not None:
        return "skipped"
    cancelled = r.reason is not None and r.reason.startswith("cancelled")
    # cancelled in its initialize, or (status stopped) in its autostart
    if cancelled and (r.status == "cancelled" or phase == "autostart"):
        return "cancelled"
    return None


def _marker(
    out: list[str], axis: Axis, y: float, e: RunEvent, until: float | None
) -> None:
    """A failure (a cross), a restart (dashed, to ``until``) or a give-up."""
    x, mid = axis(e.time), y + _ROW / 2
    tip = _escape(f"{e.time:.3f}s {e.kind}: {e.detail or e.value}")
    if e.kind == "failure" and e.value == "contained":
        return  # the failure just before it has its cross; the note says the rest
    if e.kind == "failure":
        out.append(
            f'<path d="M{x - 5:.2f} {mid - 5}L{x + 5:.2f} {mid + 5}M{x + 5:.2f} '
            f'{mid - 5}L{x - 5:.2f} {mid + 5}" class="crash"><title>{tip}</title></path>'
        )
    elif e.kind == "restart" and isinstance(e.value, int | float):
        x1 = axis(until if until is not None else e.time + float(e.value))
        out.append(
            f'<path d="M{x:.2f} {mid}Q{(x + x1) / 2:.2f} {y - 2} {x1:.2f} {mid}" '
            f'class="restart"><title>{tip}</title></path>'
            f'<text x="{(x + x1) / 2:.2f}" y="{y + 7}" class="restart-label" '
            f'text-anchor="middle">\u21bb {float(e.value):g}s</text>'
        )
    elif e.kind == "gave-up":
        out.append(
            f'<rect x="{x - 1.5:.2f}" y="{y + 1}" width="3" height="{_ROW - 2}" '
            f'class="gave-up"><title>{tip}</title></rect>'
            f'<text x="{x + 4:.2f}" y="{y + 9}" class="gave-up-label">gave up</text>'
        )


def _note(out: list[str], y: float, first_x: float, text: str, r: DriverRecord) -> None:
    """The note, visible (not only in a tooltip), cut to the width left."""
    fits = int((_RIGHT - LEFT) / _CHAR)
    if len(text) > fits:
        text = text[: fits - 1] + "\u2026"
    x = max(float(LEFT), min(first_x, _RIGHT - len(text) * _CHAR))
    # a driver that crashed and came back is not failed, but its crash is news
    crashed = " crashed" if text.startswith("failed @") else ""
    out.append(
        f'<text x="{x:.2f}" y="{y + 9}" class="note {r.status}{crashed}">'
        f"{_escape(text)}</text>"
    )


def _grid(axis: Axis, bottom: float) -> str:
    """Tick lines and labels: the main scale, and the gap's own beneath it."""
    parts: list[str] = []
    last = {"main": -1e9, "gap": -1e9}
    for t, kind in axis.ticks:
        tx = axis(t)
        if tx - last[kind] < 45:  # keep labels apart
            continue
        last[kind] = tx
        ty = 34 if kind == "main" else 46
        cls = "tick" if kind == "main" else "tick gap"
        parts.append(
            f'<line x1="{tx:.2f}" y1="{ty + 3}" x2="{tx:.2f}" y2="{bottom}" class="grid"/>'
            f'<text x="{tx:.2f}" y="{ty}" class="{cls}">{t:.3f}s</text>'
        )
    return "".join(parts)


def _cut(axis: Axis, bottom: float, report: Report) -> str:
    """The shaded stretch where the time the run was up is cut, and its label."""
    if axis.gap is None:
        return ""
    gx0, gx1 = axis.gap
    ready = report.ready_at or 0.0
    until = report.stopping_at if report.stopping_at is not None else axis.end
    return (
        f'<rect x="{gx0:.2f}" y="{_TOP - 4}" width="{gx1 - gx0:.2f}" '
        f'height="{bottom - _TOP + 4}" class="cut"/>'
        f'<text x="{(gx0 + gx1) / 2:.2f}" y="{bottom + 14}" class="up-for">'
        f"up for {until - ready:.1f}s</text>"
    )


def _breaks(axis: Axis, bottom: float) -> str:
    """Two slanted lines across the scale wherever time is cut out."""
    parts = []
    for x in axis.breaks:
        for y in (_AXIS, bottom):
            parts.append(
                f'<rect x="{x - 4:.2f}" y="{y - 5}" width="8" height="10" fill="#fff"/>'
                f'<path d="M{x - 5:.2f} {y + 5}L{x - 1:.2f} {y - 5}M{x + 1:.2f} '
                f'{y + 5}L{x + 5:.2f} {y - 5}" class="break"/>'
            )
    return "".join(parts)


def _legend(report: Report, y: float) -> tuple[str, int]:
    """What each colour and mark means; the SVG's height below it."""
    items = [(p, f'fill="{c}"') for p, c in _COLORS.items()]
    items += [(how, f'fill="{fill}"') for how, fill in _FILLS.items()]
    items.append(
        (
            "waiting (max_concurrent_starts)"
            if report.max_concurrent_starts is not None
            else "waiting (busy loop)",
            'fill="url(#p-wait)" stroke="#bbb"',
        )
    )
    if report.schedule == "dependencies":
        items.append(("waiting for requirements", ""))
    kinds = {e.kind for e in report.events}
    marks = [("crash", "failure"), ("restart", "restart"), ("gave up", "gave-up")]
    items += [(label, "") for label, kind in marks if kind in kinds]
    parts, x = [], float(LEFT)
    for label, paint in items:
        step = 24 + len(label) * 6.2
        if x + step > _RIGHT:
            x, y = float(LEFT), y + 18
        parts.append(_swatch(x, y, label, paint))
        x += step
    return "".join(parts), int(y + 24)


def _swatch(x: float, y: float, label: str, paint: str) -> str:
    if label == "waiting for requirements":
        mark = (
            f'<line x1="{x}" y1="{y + 6}" x2="{x + 12}" y2="{y + 6}" '
            'class="wait-requirements"/>'
        )
    elif label == "crash":
        mark = f'<path d="M{x + 1} {y + 1}L{x + 11} {y + 11}M{x + 11} {y + 1}L{x + 1} {y + 11}" class="crash"/>'
    elif label == "restart":
        mark = f'<path d="M{x} {y + 10}Q{x + 6} {y - 2} {x + 12} {y + 10}" class="restart"/>'
    elif label == "gave up":
        mark = f'<rect x="{x + 4.5}" y="{y}" width="3" height="12" class="gave-up"/>'
    else:
        mark = f'<rect x="{x}" y="{y}" width="12" height="12" {paint}/>'
    return (
        f'<g class="legend-item">{mark}<text x="{x + 16}" y="{y + 10}" '
        f'class="legend">{_escape(label)}</text></g>'
    )
