"""The small daemon of ``small_daemon.py``, traced: its spans printed on the console.

``tiered.otel.trace(run)`` turns the run's start-up and shutdown into
OpenTelemetry spans; the SDK's ``ConsoleSpanExporter`` prints each span as
it ends, as JSON, or with ``--oneline`` one line per span (docs/telemetry.md
explains what the spans are and how a tracing backend shows them)::

    python examples/otel_console.py --backend trio --oneline

It needs ``opentelemetry-sdk`` (``pip install 'tiered[otel]' opentelemetry-sdk``).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

import anyio
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from small_daemon import SERVE_FOR, runtime

import tiered.otel

if TYPE_CHECKING:
    from collections.abc import Sequence


def oneline(span: ReadableSpan) -> str:
    """One line per span: name, when and how long, its ids, its tiered attributes."""
    assert span.start_time is not None
    assert span.end_time is not None
    took = (span.end_time - span.start_time) / 1e6
    context = span.context
    assert context is not None
    parent = f"{span.parent.span_id:016x}" if span.parent else "-" * 16
    attributes = " ".join(
        key.removeprefix("tiered.") + "=" + _text(value)
        for key, value in (span.attributes or {}).items()
        if key not in ("tiered.runtime", "tiered.schedule")
    )
    status = f" {span.status.status_code.name}" if span.status.description else ""
    return (
        f"{span.name:<22} {took:8.3f} ms  trace {context.trace_id:032x}  "
        f"span {context.span_id:016x}  parent {parent}  {attributes}{status}\n"
    )


def _text(value: object) -> str:
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)


async def serve(provider: TracerProvider) -> None:
    """Run the small daemon once, traced: start it, let it run a moment, stop it."""
    run = runtime.run()
    tiered.otel.trace(run, tracer_provider=provider)
    async with run:
        await anyio.sleep(SERVE_FOR)


def main(argv: Sequence[str] | None = None) -> int:
    """Trace one run of the small daemon; return the exit status."""
    parser = argparse.ArgumentParser(description="Trace one run of small-virtd.")
    parser.add_argument(
        "--backend", choices=("asyncio", "uvloop", "trio"), default="asyncio"
    )
    parser.add_argument(
        "--oneline", action="store_true", help="one line per span instead of JSON"
    )
    args = parser.parse_args(argv)
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: runtime.name}))
    exporter = ConsoleSpanExporter(formatter=oneline) if args.oneline else None
    provider.add_span_processor(SimpleSpanProcessor(exporter or ConsoleSpanExporter()))
    backend, options = {
        "asyncio": ("asyncio", {}),
        "uvloop": ("asyncio", {"use_uvloop": True}),
        "trio": ("trio", {}),
    }[args.backend]
    try:
        anyio.run(serve, provider, backend=backend, backend_options=options)
    finally:
        provider.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
