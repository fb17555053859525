"""The text renderings of a :class:`~tiered.Report`: summary, blame, chain, events.

For people, and for ``serve(report="...txt")``: every driver appears, also
those of tiers that never began; a tier whose barrier never passed says
"not up"; what a driver waited for is shown beside what its own hooks took;
the failures and restarts after start-up get a section of their own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._report import failure_cause, groups, place_wait, record_suffix, tier_label, waits

if TYPE_CHECKING:
    from ._report import ChainLink, DriverRecord, Report

__all__ = ["format_blame", "format_critical_chain", "format_events", "to_text"]


def format_blame(report: Report, limit: int | None = None) -> str:
    lines = []
    for r in report.blame()[:limit]:
        waited = waits(r, report.schedule, report.max_concurrent_starts)
        extra = f"  {waited}" if waited else ""
        if r.restarts:
            extra += f"  restarted {r.restarts}x (its latest start)"
        lines.append(
            f"{r.startup:9.3f}s  {r.name} (tier {r.tier}){extra}"
            f"{record_suffix(r, report)}"
        )
    return "\n".join(lines)


def format_critical_chain(report: Report) -> str:
    chain = report.critical_chain()
    by_name = {r.name: r for r in report.drivers}
    if report.schedule == "dependencies":
        if not chain:
            return ""
        last = by_name[chain[-1].name]
        cause = failure_cause(report)
        if cause is not None and cause.name == last.name:
            end = chain[-1].end
            lines = [f"{last.name} (tier {last.tier}) failed @{end:.3f}s"]
        else:
            lines = [f"{last.name} (tier {last.tier}) up @{(last.up_at or 0.0):.3f}s"]
        lines += [_link_line(link, by_name[link.name], report) for link in chain]
        return "\n".join(lines)
    lines = []
    for tier in report.tiers:
        links = [link for link in chain if link.tier == tier.index]
        restarted = [n for n in tier.drivers if n in by_name and by_name[n].restarts]
        if not links and not restarted:
            continue
        if tier.end is not None:
            lines.append(f"tier {tier.index} up @{tier.end:.3f}s")
        else:
            lines.append(f"tier {tier.index} not up{_why_not_up(report, tier.index)}")
        lines += [_link_line(link, by_name[link.name], report) for link in links]
        if restarted and tier.end is not None:
            lines.append(
                f"  └─ (restarted since: {', '.join(restarted)}; the times of "
                "a first start are not kept)"
            )
    return "\n".join(lines)


def _link_line(link: ChainLink, record: DriverRecord, report: Report) -> str:
    where = f"@{link.start:.3f}s"
    waited = record.waited
    if link.phase == "initialize" and waited is not None and waited > 0.0005:
        where += f", waited {waited:.3f}s {place_wait(report.max_concurrent_starts)}"
    return f"  └─ {link.name} {link.phase} +{link.duration:.3f}s ({where})"


def _why_not_up(report: Report, index: int) -> str:
    cause = failure_cause(report)
    if cause is None or cause.tier != index:
        return ""
    return f": {cause.name} failed in {cause.failed_in}"


def format_events(report: Report) -> str:
    lines: list[tuple[float, str]] = []
    failures: dict[str, str] = {}
    for e in report.events:
        detail = e.detail or ""
        who = f"{e.driver} (tier {e.tier})" if e.driver is not None else ""
        if e.kind == "failure" and e.value == "contained":
            text = (
                f"{who} contained: it and the optional drivers that require it "
                "stop; the run goes on"
            )
        elif e.kind == "failure":
            failures[e.driver or ""] = detail
            text = detail or f"{who} failed in {e.value}"
        elif e.kind == "restart":
            # the restart's detail ends with the failure just listed: once is enough
            known = failures.get(e.driver or "")
            if known and detail.endswith(": " + known):
                detail = detail[: -len(known) - 2]
            text = f"{who}: {detail}" if detail else f"{who}: restart in {e.value}s"
        else:
            text = detail or f"{who}: {e.kind}"
        lines.append((e.time, _event_line(e.time, e.kind, text)))
    # and when each restarted driver was up again (its latest start)
    for r in report.drivers:
        if r.restarts and r.up_at is not None:
            text = f"{r.name} (tier {r.tier}) is up again (restart {r.restarts})"
            lines.append((r.up_at, _event_line(r.up_at, "up", text)))
    lines.sort(key=lambda line: line[0])  # stable: events keep their order
    dropped = report.events_dropped
    head = [f"  ({dropped:,} earlier event(s) not kept)"] if dropped else []
    return "\n".join([*head, *(line for _, line in lines)])


def _event_line(time: float, kind: str, text: str) -> str:
    at = f"@{time:.3f}s"
    return f"  {at:<10} {kind:<8} {text}"


def _head(report: Report) -> list[str]:
    name = report.name
    if report.ready_at is not None:
        head = f"runtime {name!r} was up in {report.ready_at:.3f}s"
    else:
        cause = failure_cause(report)
        head = f"runtime {name!r} did not come up"
        if cause is not None:
            head += f": {cause.name} (tier {cause.tier}) failed in {cause.failed_in}"
    lines = [head]
    if report.schedule == "dependencies":
        lines.append("schedule: dependencies (no tier barriers; tiers group drivers)")
    return lines


def _driver_line(report: Report, r: DriverRecord) -> str:
    parts = [
        f"{p} {d:.3f}s"
        for p in ("initialize", "autostart", "reload", "stop")
        if (d := r.duration(p)) is not None
    ]
    waited = waits(r, report.schedule, report.max_concurrent_starts)
    if waited:
        parts.append(waited)
    if r.restarts:
        began = r.began_at
        latest = f", latest start @{began:.3f}s" if began is not None else ""
        parts.append(f"restarted {r.restarts}x{latest}")
    phases = "  ".join(parts)
    return f"  {r.name:<20} {r.status:<9} {phases}".rstrip() + record_suffix(r, report)


def to_text(report: Report) -> str:
    lines = [*_head(report), ""]
    for index, tier, records in groups(report):
        lines.append(tier_label(report, index, tier))
        lines += [_driver_line(report, r) for r in records]
    for title, part in (
        ("blame:", format_blame(report)),
        ("critical chain:", format_critical_chain(report)),
        ("after start-up:", format_events(report)),
    ):
        if part:
            lines += ["", title, part]
    return "\n".join(lines)
