"""The SVG timeline: what a person sees in a browser, a PNG or on paper.

The SVG is parsed with xml.etree and its elements found by class: bars
(``bar <phase>`` and ``failed``, ``timeout``, ``cancelled``, ``skipped``),
waits, barriers, the cut of the time the run was up and its break marks,
markers of failures, restarts and give-ups, and the notes that print each
error where a tooltip would be lost.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

import anyio
import pytest
import trio

import tiered
from support.reports import (
    LONG_ERROR,
    dependencies,
    failing,
    report_of,
    restarting,
    virtd,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from trio.testing import MockClock

NS = "{http://www.w3.org/2000/svg}"


def parse(report: tiered.Report) -> ET.Element:
    """The report's SVG, parsed (which also proves it well-formed)."""
    root = ET.fromstring(report.to_svg())
    assert root.tag == f"{NS}svg"
    return root


def by_class(root: ET.Element, *classes: str) -> list[ET.Element]:
    """The elements whose class has every one of ``classes``, outside the legend.

    The legend's samples share the classes of what they explain; a test
    about the legend reads its labels (class ``legend``).
    """
    found = []
    todo = [root]
    while todo:
        el = todo.pop(0)
        if set(classes) <= set(el.get("class", "").split()):
            found.append(el)
        if "legend-item" not in el.get("class", "").split():
            todo.extend(el)
    return found


def shown(el: ET.Element) -> str:
    """The text an element shows on the page: its own and its tspans', no tooltip."""
    parts = [el.text or ""]
    for child in el:
        if child.tag != f"{NS}title":
            parts.append("".join(child.itertext()))
        parts.append(child.tail or "")
    return "".join(parts)


def texts(root: ET.Element, *classes: str) -> list[str]:
    return [shown(el) for el in by_class(root, *classes)]


def legend(root: ET.Element) -> set[str]:
    """The labels of the legend."""
    return {shown(el) for el in root.iter() if "legend" in el.get("class", "").split()}


def tooltip(el: ET.Element) -> str:
    title = el.find(f"{NS}title")
    assert title is not None
    return title.text or ""


def bar(root: ET.Element, name: str, phase: str) -> ET.Element:
    """The bar of ``name``'s ``phase`` (its tooltip names both)."""
    (found,) = [
        el
        for el in by_class(root, "bar", phase)
        if tooltip(el).startswith(f"{name} {phase}")
    ]
    return found


def x_span(el: ET.Element) -> tuple[float, float]:
    x = float(el.get("x", "0"))
    return x, x + float(el.get("width", "0"))


@pytest.mark.trio
async def test_a_good_run_has_a_bar_per_phase_barriers_and_a_cut(
    autojump_clock: MockClock,
) -> None:
    """Bars per phase, a barrier per tier, the up time cut with break marks, the legend."""
    report = await report_of(virtd())
    root = parse(report)
    phases = sum(
        1 for r in report.drivers for t in r.phases.values() if t[1] is not None
    )
    assert len(by_class(root, "bar")) == phases
    barriers = [float(el.get("x1", "0")) for el in by_class(root, "barrier")]
    assert len(barriers) == 3
    assert barriers == sorted(barriers)
    assert {"tier 0 (2.000s)", "tier 1 (4.000s)", "tier 2 (0.500s)"} <= set(
        texts(root, "tier")
    )
    assert texts(root, "up-for") == ["up for 10.0s"]
    (cut,) = by_class(root, "cut")
    assert x_span(cut)[1] - x_span(cut)[0] == pytest.approx(60)
    # one cut, marked on the axis above the rows and below them
    assert len(by_class(root, "break")) == 2
    labels = legend(root)
    assert {"initialize", "autostart", "reload", "stop"} <= labels
    assert {"failed", "timeout", "skipped", "cancelled"} <= labels
    # no limit here: a late begin is the loop's, not max_concurrent_starts'
    assert "waiting (busy loop)" in labels
    assert texts(root, "title") == ["virtd: start-up timeline, up in 6.500s"]


@pytest.mark.trio
async def test_failed_and_skipped_phases_look_failed_and_skipped(
    autojump_clock: MockClock,
) -> None:
    """A failed initialize is red (not the colour of a good one); a skipped one grey."""
    root = parse(await report_of(virtd()))
    good = bar(root, "secrets", "initialize")
    failed = bar(root, "broken", "initialize")
    skipped = bar(root, "nodedev", "initialize")
    assert "failed" in failed.get("class", "").split()
    assert failed.get("fill") == "#d62728" != good.get("fill")
    assert "skipped" in skipped.get("class", "").split()
    assert skipped.get("fill") not in (good.get("fill"), failed.get("fill"))
    # the error is on the page, not only in a tooltip, and escaped
    assert "failed in initialize: OSError: no such device: /dev/kvm <is> & missing" in (
        texts(root, "note", "failed")
    )
    assert "skipped: no udev on this host" in texts(root, "note", "skipped")


@pytest.mark.anyio
async def test_a_failed_start_up_draws_no_barrier_for_the_failed_tier() -> None:
    """Tier 1 "not up" without a barrier, cancelled bars hatched, pending rows drawn."""
    rt = tiered.Runtime("virtd")

    @rt.driver(tier=0)
    async def base(ctx: tiered.Context) -> AsyncIterator[None]:
        yield

    @rt.driver(tier=1)
    async def storage(ctx: tiered.Context) -> AsyncIterator[None]:
        await anyio.sleep(0.01)
        if ctx.name:  # always: the yield below stays reachable for mypy
            raise OSError("pool offline")
        yield  # pragma: no cover

    @rt.driver(tier=1)
    async def network(ctx: tiered.Context) -> AsyncIterator[None]:
        await anyio.Event().wait()  # until cancelled
        yield  # pragma: no cover

    @rt.driver(tier=2)
    async def qemu(ctx: tiered.Context) -> AsyncIterator[None]:
        yield  # pragma: no cover

    run = rt.run()
    with pytest.raises(tiered.StartupError):
        async with run:
            pass  # pragma: no cover
    root = parse(run.report)
    assert len(by_class(root, "barrier")) == 1  # tier 0's only
    assert texts(root, "tier", "failed") == ["tier 1 (not up)"]
    assert texts(root, "tier", "pending") == ["tier 2 (not begun)"]
    cancelled = bar(root, "network", "initialize")
    assert "cancelled" in cancelled.get("class", "").split()
    assert cancelled.get("fill") == "url(#p-cancelled)"
    assert root.find(f".//{NS}pattern[@id='p-cancelled']") is not None
    (name,) = by_class(root, "name", "pending")
    assert shown(name) == "qemu"
    (note,) = by_class(root, "note", "pending")
    assert shown(note) == "never began"
    # nothing drawn on its row: the note is on the row itself, not under it
    assert note.get("y") == name.get("y")
    assert "cancelled: storage (tier 1) failed" in texts(root, "note", "cancelled")
    assert texts(root, "title") == [
        "virtd: start-up timeline, did not come up: storage (tier 1) failed in initialize"
    ]


@pytest.mark.trio
async def test_a_timed_out_phase_is_hatched_red(autojump_clock: MockClock) -> None:
    """A hook past its start_timeout is drawn with the timeout pattern."""
    rt = tiered.Runtime("virtd", start_timeout=2)

    @rt.driver(tier=0)
    async def storage(ctx: tiered.Context) -> AsyncIterator[None]:
        await trio.sleep(10)
        yield  # pragma: no cover

    root = parse(await report_of(rt))
    timed_out = bar(root, "storage", "initialize")
    assert {"timeout"} <= set(timed_out.get("class", "").split())
    assert timed_out.get("fill") == "url(#p-timeout)"
    assert root.find(f".//{NS}pattern[@id='p-timeout']") is not None
    (note,) = texts(root, "note", "failed")
    assert note.startswith("failed in initialize: DriverTimeout: storage (tier 0)")


@pytest.mark.trio
async def test_a_long_error_is_cut_on_the_page_and_whole_in_the_tooltip(
    autojump_clock: MockClock,
) -> None:
    """The note fits the timeline (ends with …); markup in it is escaped, not markup."""
    report = await report_of(failing(error=LONG_ERROR))
    svg = report.to_svg()
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    root = ET.fromstring(svg)
    (note,) = texts(root, "note", "failed")
    assert note.endswith("\u2026")
    assert note.startswith(
        "failed in initialize: OSError: <script>alert('x')</script> & "
    )
    assert len(note) <= 760 / 5.6
    (name,) = [el for el in by_class(root, "name", "failed") if shown(el) == "storage"]
    assert LONG_ERROR in tooltip(name)


@pytest.mark.trio
async def test_a_reload_in_the_cut_gets_a_scale_of_its_own(
    autojump_clock: MockClock,
) -> None:
    """A reload while up is drawn wide in the cut, with its own time labels."""

    async def reload_once(run: tiered.Run) -> None:
        await trio.sleep(10)
        await run.reload()
        await trio.sleep(10)

    report = await report_of(virtd(reload=0.3), reload_once)
    root = parse(report)
    assert texts(root, "tick", "gap") == ["16.500s", "16.800s"]
    (cut,) = by_class(root, "cut")
    left, right = x_span(cut)
    x0, x1 = x_span(bar(root, "storage", "reload"))
    assert left < x0 < x1 < right
    # 0.3 s of 26 s would be a speck at one scale; here it is most of the cut
    assert x1 - x0 > 0.6 * (right - left)
    # the time before and after it is cut: a break mark on each side, twice
    assert len(by_class(root, "break")) == 4
    assert texts(root, "up-for") == ["up for 20.3s"]


@pytest.mark.trio
async def test_dependency_mode_draws_waits_and_no_barriers(
    autojump_clock: MockClock,
) -> None:
    """No barriers; the wait for requirements dotted, the wait for a place hatched."""
    report = await report_of(dependencies(limit=2), 1.0)
    root = parse(report)
    assert by_class(root, "barrier") == []
    assert texts(root, "tier") == ["tier 0", "tier 1", "tier 2"]
    assert texts(root, "title")[0].endswith("schedule: dependencies")
    waits = {tooltip(el).split()[0]: el for el in by_class(root, "wait-requirements")}
    assert set(waits) == {"storage", "qemu", "lxc"}
    start = bar(root, "storage", "initialize")
    assert float(waits["storage"].get("x2", "0")) <= float(start.get("x", "0"))
    limited = [r for r in report.drivers if (r.waited or 0.0) > 0]
    assert limited, "two places for six drivers: some waited"
    hatched = {tooltip(el).split()[0]: el for el in by_class(root, "wait")}
    assert set(hatched) == {r.name for r in limited}
    for record in limited:
        x0, x1 = x_span(hatched[record.name])
        assert x1 == pytest.approx(x_span(bar(root, record.name, "initialize"))[0])
        assert x0 < x1
    assert "waiting for requirements" in legend(root)


@pytest.mark.trio
async def test_a_restart_is_marked_on_its_row(autojump_clock: MockClock) -> None:
    """A cross at the failure, the delay as a dashed arc, then the latest start's bars."""
    report = await report_of(restarting(), 30.0)
    root = parse(report)
    (crash,) = by_class(root, "crash")
    assert tooltip(crash).startswith("7.000s failure: driver 'storage' (tier 1)")
    (arc,) = by_class(root, "restart")
    assert texts(root, "restart-label") == ["\u21bb 2s"]
    started = bar(root, "storage", "initialize")
    numbers = [float(n) for n in re.findall(r"-?\d+\.?\d*", arc.get("d", ""))]
    crash_x = float(re.findall(r"\d+\.\d+", crash.get("d", ""))[0]) + 5
    # the arc runs from the failure to where the latest start began
    assert numbers[0] == pytest.approx(crash_x)
    assert numbers[-2] == pytest.approx(float(started.get("x", "0")))
    (cut,) = by_class(root, "cut")
    assert x_span(cut)[0] < crash_x < float(started.get("x", "0")) < x_span(cut)[1]
    assert texts(root, "restarts") == [" \u21bb1", " \u21bb1"]  # storage, qemu
    (crashed,) = texts(root, "note", "crashed")
    assert crashed == (
        "failed @7.000s in background: ConnectionError: ceph backend lost; "
        "restarted 1x: the bars are its latest start's (@9.500s)"
    )
    assert texts(root, "note", "stopped")[1] == (
        "restarted 1x: the bars are its latest start's (@10.500s)"  # qemu
    )
    assert {"crash", "restart"} <= legend(root)


@pytest.mark.trio
async def test_a_give_up_is_marked(autojump_clock: MockClock) -> None:
    """The give-up has its own mark and words on the row of the driver given up on."""
    root = parse(await report_of(restarting(give_up=True), 30.0))
    (mark,) = by_class(root, "gave-up")
    assert "gave up restarting storage (tier 1)" in tooltip(mark)
    assert texts(root, "gave-up-label") == ["gave up"]
    assert len(by_class(root, "crash")) == 2
    # the give-up comes as the shutdown begins: the cut's scale reaches it
    assert texts(root, "tick", "gap") == ["7.000s", "15.500s"]
    assert "gave up" in legend(root)


@pytest.mark.anyio
async def test_a_phase_still_running_is_drawn_open() -> None:
    """Read during start-up, a hook under way is a faded bar to the last time known."""
    rt = tiered.Runtime("virtd")
    begun = anyio.Event()

    @rt.driver(tier=0)
    async def slow(ctx: tiered.Context) -> AsyncIterator[None]:
        begun.set()
        await anyio.Event().wait()  # until cancelled
        yield  # pragma: no cover

    run = rt.run()
    with anyio.fail_after(10), anyio.CancelScope() as scope:

        async def watch() -> None:
            await begun.wait()
            root = parse(run.report)
            (open_bar,) = by_class(root, "bar", "initialize", "open")
            assert open_bar.get("fill-opacity") == "0.5"
            assert "still running" in tooltip(open_bar)
            scope.cancel()

        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            async with run:
                pass  # pragma: no cover
    assert scope.cancel_called


def test_a_run_not_entered_yet_draws_every_driver_pending() -> None:
    """Before the run, every row is drawn, pending, under a tier not begun."""
    root = parse(virtd().run().report)
    assert len(texts(root, "name", "pending")) == 6
    assert texts(root, "tier", "pending") == [
        "tier 0 (not begun)",
        "tier 1 (not begun)",
        "tier 2 (not begun)",
    ]
    assert by_class(root, "bar") == []
