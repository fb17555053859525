"""Reading a :class:`~tiered.testing.Recorder`'s log: the checks behind its assertions.

Each check says what is wrong as a message, ``None`` when all is well; the
recorder's ``assert_*`` methods raise it with the whole log.  A driver that
is restarted has several *lives* in one log, each beginning with an
``initialize`` begin; the checks about restarts read the log life by life.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._recorder import Event

__all__ = [
    "first",
    "lives",
    "restarted",
    "reverse_order",
    "running_without",
    "stops_per_life",
    "story",
    "times",
    "up_index",
    "up_spans",
]

#: the kinds that end a phase
OUTCOMES: frozenset[str] = frozenset({"end", "fail", "skip", "cancel"})


def times(n: int) -> str:
    """``once``, ``twice``, ``3 times``: for messages."""
    return {0: "0 times", 1: "once", 2: "twice"}.get(n, f"{n} times")


def _is(e: Event, driver: str, phase: str, kind: str) -> bool:
    return e.driver == driver and e.phase == phase and e.kind == kind


def lives(events: Sequence[Event], driver: str) -> list[tuple[int, int]]:
    """Each life of ``driver``: (its initialize begin, the next one or the end)."""
    begins = [i for i, e in enumerate(events) if _is(e, driver, "initialize", "begin")]
    return list(zip(begins, [*begins[1:], len(events)][: len(begins)], strict=True))


def life_end(events: Sequence[Event], driver: str, begin: int, end: int) -> int:
    """Where one life ended: its stop's end, else the start phase that failed, else ``end``."""
    last = end
    for i in range(begin, end):
        e = events[i]
        if e.driver != driver or e.kind not in OUTCOMES:
            continue
        if e.phase == "stop":
            return i
        if e.phase in ("initialize", "autostart") and e.kind != "end":
            last = i  # its start failed; a stop may still follow
    return last


def up_spans(events: Sequence[Event], driver: str) -> list[tuple[int, int]]:
    """When ``driver`` was up, life by life: (came up at, began to stop at or the end).

    Up once its ``initialize`` ended, and its ``autostart`` too if one began.
    """
    spans = []
    for begin, end in lives(events, driver):
        init: int | None = None
        auto: int | None = None  # -1: begun, not ended well (yet)
        down = end
        for i in range(begin, end):
            e = events[i]
            if e.driver != driver:
                continue
            if e.phase == "initialize" and e.kind == "end":
                init = i
            elif e.phase == "autostart":
                auto = i if e.kind == "end" else -1
            elif e.phase == "stop" and e.kind == "begin":
                down = i
                break
        up = init if auto is None else (auto if auto >= 0 else None)
        if up is not None:
            spans.append((up, down))
    return spans


def restarted(events: Sequence[Event], driver: str, expected: int | None) -> str | None:
    """Whether ``driver`` began ``expected`` lives after its first (None: one or more)."""
    n = len(lives(events, driver))
    if expected is None and n < 2:
        return f"expected {driver!r} to be restarted, but it " + (
            "never began to initialize" if not n else "began to initialize once"
        )
    if expected is not None and max(n - 1, 0) != expected:
        return (
            f"expected {driver!r} to be restarted {times(expected)}, but it was "
            f"restarted {times(max(n - 1, 0))} (it began to initialize {times(n)})"
        )
    return None


def reverse_order(events: Sequence[Event], names: Sequence[str]) -> str | None:
    """Whether the stops of ``names`` ran tier by tier in reverse."""
    spans: dict[str, tuple[int, int, int | None]] = {}
    for d in names:
        begin = first(events, d, "stop", "begin")
        if begin is None:
            return f"expected {d!r} to stop in reverse tier order, but it never stopped"
        tier = next(e.tier for e in events if e.driver == d)
        end = next(
            (
                i
                for i in range(begin + 1, len(events))
                if events[i].driver == d
                and events[i].phase == "stop"
                and events[i].kind in OUTCOMES
            ),
            None,
        )
        spans[d] = (tier, begin, end)
    for low, (tier_low, begin_low, _) in spans.items():
        for high, (tier_high, _, end_high) in spans.items():
            if tier_high > tier_low and (end_high is None or end_high > begin_low):
                when = (
                    "was still stopping"
                    if end_high is None
                    else f"had not finished stopping (it did at #{end_high})"
                )
                return (
                    f"expected tier {tier_high} to stop before tier {tier_low}, but "
                    f"{low!r} (tier {tier_low}) began to stop at #{begin_low} while "
                    f"{high!r} (tier {tier_high}) {when}"
                )
    return None


def first(events: Sequence[Event], driver: str, phase: str, kind: str) -> int | None:
    """Where ``driver``'s first ``phase`` ``kind`` event is, or None."""
    return next((i for i, e in enumerate(events) if _is(e, driver, phase, kind)), None)


def _first_after(
    events: Sequence[Event], driver: str, phase: str, after: int
) -> int | None:
    """Where the phase that began at ``after`` ended, however it ended."""
    for i in range(after + 1, len(events)):
        e = events[i]
        if e.driver == driver and e.phase == phase and e.kind in OUTCOMES:
            return i
    return None


def up_index(events: Sequence[Event], driver: str) -> int | None:
    """Where ``driver`` first came up (its autostart ended, or its initialize)."""
    init = first(events, driver, "initialize", "end")
    if init is None:
        return None
    if first(events, driver, "autostart", "begin") is None:
        return init
    return first(events, driver, "autostart", "end")


def story(events: Sequence[Event], driver: str) -> str:
    """Why ``driver`` is not up, in a few words, pointing into the log."""
    if not any(e.driver == driver for e in events):
        return f"{driver!r} recorded nothing"
    for phase in ("initialize", "autostart"):
        begin = first(events, driver, phase, "begin")
        if begin is None:
            if phase == "initialize":
                return f"{driver!r} never began to initialize"
            continue
        end = _first_after(events, driver, phase, begin)
        if end is None:
            return f"the {phase} of {driver!r} began at #{begin} and has not ended"
        event = events[end]
        if event.kind != "end":
            why = f" ({event.detail})" if event.detail else ""
            return f"the {phase} of {driver!r} ended in {event.kind} at #{end}{why}"
    return f"{driver!r} came up"  # pragma: no cover - only asked when it did not


def stops_per_life(events: Sequence[Event], driver: str) -> str | None:
    """What is wrong with the stops of ``driver``'s lives, or None."""
    for n, (begin, end) in enumerate(lives(events, driver), start=1):
        inited = any(
            _is(events[i], driver, "initialize", "end") for i in range(begin, end)
        )
        stops = [
            i for i in range(begin, end) if _is(events[i], driver, "stop", "begin")
        ]
        at = ", ".join(f"#{i}" for i in stops)
        if inited and len(stops) != 1:
            return (
                f"expected life {n} of {driver!r} (from #{begin}) to stop exactly "
                f"once, but it stopped {times(len(stops))}"
                + (f" (at {at})" if stops else "")
            )
        if not inited and stops:
            return (
                f"expected life {n} of {driver!r} (from #{begin}), whose initialize "
                f"did not end, not to stop, but it began to stop at {at}"
            )
    return None


def running_without(
    events: Sequence[Event], dependent: str, requirement: str
) -> str | None:
    """A life of ``dependent`` outside every up-span of ``requirement``, as a message."""
    ups = up_spans(events, requirement)
    for n, (begin, end) in enumerate(lives(events, dependent), start=1):
        last = life_end(events, dependent, begin, end)
        if any(up < begin and last < down for up, down in ups):
            continue
        shown = ", ".join(f"#{up} to {_at(down, events)}" for up, down in ups)
        return (
            f"expected {dependent!r} never to run without {requirement!r}, but "
            f"life {n} of {dependent!r} (#{begin} to {_at(last, events)}) was not "
            f"within a time {requirement!r} was up (up: {shown or 'never'})"
        )
    return None


def _at(i: int, events: Sequence[Event]) -> str:
    return f"#{i}" if i < len(events) else "the end"
