"""Helpers of tests/test_otel.py and tests/test_otel_environment.py.

Spans come from the SDK's in-memory exporter; :class:`Spans` reads them by
name and parentage, and the small functions read their times (in seconds)
and attributes.  The drivers sleep with ``anyio.sleep``, so the same runtime
runs on every backend, and on trio's virtual clock its times are exact.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
from opentelemetry import trace as otel
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.util._once import Once

import tiered

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
        InMemorySpanExporter,
    )
    from opentelemetry.trace import SpanContext

__all__ = [
    "SkipsInAutostart",
    "Sleeper",
    "Spans",
    "attrs",
    "duration",
    "exceptions",
    "ids",
    "offset",
    "provider",
    "reset_globals",
    "three_tiers",
]


def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    """A tracer provider that sends every span to ``exporter`` as it ends."""
    made = TracerProvider()
    made.add_span_processor(SimpleSpanProcessor(exporter))
    return made


def reset_globals() -> None:
    """Unset the global tracer provider (OpenTelemetry lets a process set it once)."""
    otel._TRACER_PROVIDER_SET_ONCE = Once()
    otel._TRACER_PROVIDER = None


class Spans:
    """The finished spans, by name, with their parentage."""

    def __init__(self, exporter: InMemorySpanExporter) -> None:
        self.all: tuple[ReadableSpan, ...] = exporter.get_finished_spans()

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.all if s.name == name]

    def one(self, name: str) -> ReadableSpan:
        [span] = self.named(name)
        return span

    def children(self, parent: ReadableSpan) -> list[ReadableSpan]:
        parent_id = ids(parent).span_id
        kids = [s for s in self.all if s.parent and s.parent.span_id == parent_id]
        return sorted(kids, key=lambda s: (s.start_time or 0, s.end_time or 0, s.name))

    def names_under(self, parent: ReadableSpan) -> list[str]:
        return [s.name for s in self.children(parent)]


def ids(span: ReadableSpan) -> SpanContext:
    """The span's own context (the SDK's spans always have one)."""
    context = span.get_span_context()
    assert context is not None
    return context


def seconds(ns: int | None) -> float:
    assert ns is not None
    return ns / 1e9


def duration(span: ReadableSpan) -> float:
    return seconds(span.end_time) - seconds(span.start_time)


def offset(span: ReadableSpan, root: ReadableSpan) -> float:
    """When ``span`` began, in seconds after ``root`` (the run's time 0)."""
    assert span.start_time is not None
    assert root.start_time is not None
    return (span.start_time - root.start_time) / 1e9


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def exceptions(span: ReadableSpan) -> list[dict[str, Any]]:
    return [dict(e.attributes or {}) for e in span.events if e.name == "exception"]


class Sleeper(tiered.Driver):
    """Sleeps as told in each hook, on whatever clock runs."""

    def __init__(
        self,
        name: str,
        tier: int,
        *,
        init: float = 0.0,
        auto: float = 0.0,
        stop: float = 0.0,
        requires: tuple[str, ...] = (),
    ) -> None:
        super().__init__()
        self.name, self.tier, self.requires = name, tier, requires
        self.times = (init, auto, stop)

    async def initialize(self, ctx: tiered.Context) -> None:
        await anyio.sleep(self.times[0])

    async def autostart(self, ctx: tiered.Context) -> None:
        await anyio.sleep(self.times[1])

    async def stop(self, ctx: tiered.Context) -> None:
        await anyio.sleep(self.times[2])


class SkipsInAutostart(Sleeper):
    """Initializes, then skips itself in autostart: it stops at once."""

    optional = True

    async def autostart(self, ctx: tiered.Context) -> None:
        raise tiered.Skip("nothing to autostart")


def three_tiers(name: str = "virtd", **options: Any) -> tiered.Runtime:
    runtime = tiered.Runtime(name, **options)
    runtime.add(Sleeper("secrets", 0, init=0.002, auto=0.001, stop=0.001))
    runtime.add(Sleeper("network", 0, init=0.001))
    runtime.add(Sleeper("storage", 1, init=0.003, requires=("secrets",)))
    runtime.add(Sleeper("qemu", 2, auto=0.002, requires=("storage", "network")))
    return runtime
