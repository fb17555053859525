"""A tracer provider from the OpenTelemetry environment variables, if the SDK is here.

What ``tiered run`` and ``serve()`` use (:func:`trace_if_configured`, when
one of :data:`SWITCHES` is set): the same variables the SDK's own automatic
configuration reads, so a daemon is traced with nothing but its environment
(docs/telemetry.md):

* ``OTEL_TRACES_EXPORTER``: exporter names, comma-separated (``console``,
  ``otlp``, ...; ``none`` for no traces).  Unset means ``otlp``, as the
  specification says; ``otlp`` becomes ``otlp_proto_grpc`` or
  ``otlp_proto_http`` by ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`` or
  ``OTEL_EXPORTER_OTLP_PROTOCOL`` (``grpc`` when unset, as the Python SDK
  does).  An exporter is found by its name among the
  ``opentelemetry_traces_exporter`` entry points, as the SDK finds it, and
  reads its own variables (``OTEL_EXPORTER_OTLP_ENDPOINT``, ...);
* ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES``, read by the SDK's
  ``Resource.create()``; without a service name the runtime's name is used;
* ``OTEL_TRACES_SAMPLER`` (and its argument), ``OTEL_BSP_*`` and the span
  limits, which the SDK's ``TracerProvider`` and ``BatchSpanProcessor``
  read themselves;
* ``OTEL_SDK_DISABLED=true``: nothing is traced.

A tracer provider already set globally (``opentelemetry-instrument``, or the
program itself) is used as it is.  The one made here is set as the global
provider, so the drivers' own spans go to the same place, and the SDK
flushes it when the process exits.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

    from ._run import Run

__all__ = [
    "SWITCHES",
    "exporter_names",
    "provider_from_environment",
    "trace_if_configured",
]

log = logging.getLogger("tiered")

#: the variables that switch tracing on in ``tiered run`` and ``serve()``
SWITCHES = (
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
)

#: what ``otlp`` means for each OTLP protocol (the Python SDK's own table)
_OTLP_BY_PROTOCOL = {"grpc": "otlp_proto_grpc", "http/protobuf": "otlp_proto_http"}

#: the distribution that provides each standard exporter, for the warning
_PACKAGES = {
    "otlp_proto_grpc": "opentelemetry-exporter-otlp-proto-grpc",
    "otlp_proto_http": "opentelemetry-exporter-otlp-proto-http",
    "zipkin": "opentelemetry-exporter-zipkin",
}


def trace_if_configured(run: Run) -> bool:
    """What ``serve()`` calls: trace ``run`` if one of :data:`SWITCHES` is set.

    Importable without OpenTelemetry (this module imports none of it), so
    ``serve()`` can call it whatever is installed: without the API (the
    ``otel`` extra) it warns once and traces nothing, as
    :func:`tiered.otel.trace_from_environment` does without the SDK.

    Returns:
        whether the run is traced.
    """
    switched = [name for name in SWITCHES if os.environ.get(name)]
    if not switched:
        return False
    try:
        from .otel import trace_from_environment
    except ImportError:
        log.warning(
            "tiered: tracing is configured in the environment (%s), but "
            "OpenTelemetry is not installed; the run is not traced (pip install "
            "'tiered[otel]' opentelemetry-sdk, and an exporter such as "
            "opentelemetry-exporter-otlp)",
            ", ".join(switched),
        )
        return False
    return trace_from_environment(run)


def exporter_names() -> list[str] | None:
    """The trace exporters the environment asks for; None when a protocol is unknown."""
    value = os.environ.get("OTEL_TRACES_EXPORTER", "").strip() or "otlp"
    names = [n.strip() for n in value.split(",") if n.strip()]
    if any(n.lower() == "none" for n in names):
        return []
    protocol = (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "grpc"
    ).strip()
    out: list[str] = []
    for name in names:
        if name == "otlp":
            if protocol not in _OTLP_BY_PROTOCOL:
                log.warning(
                    "tiered: the OTLP protocol %r is not one of %s; the run is not traced",
                    protocol,
                    ", ".join(_OTLP_BY_PROTOCOL),
                )
                return None
            name = _OTLP_BY_PROTOCOL[protocol]
        out.append(name)
    return out


def provider_from_environment(service_name: str) -> TracerProvider | None:
    """The provider to trace a run with, or None (a warning says why, if it is a fault)."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        log.info("tiered: OTEL_SDK_DISABLED is true; the run is not traced")
        return None
    try:
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider as SdkProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
    except ImportError:
        log.warning(
            "tiered: tracing is configured in the environment, but the "
            "OpenTelemetry SDK is not installed; the run is not traced "
            "(pip install opentelemetry-sdk, and an exporter such as "
            "opentelemetry-exporter-otlp)"
        )
        return None
    from opentelemetry import trace as otel

    current = otel.get_tracer_provider()
    if not isinstance(current, otel.ProxyTracerProvider):
        return current  # set up already: opentelemetry-instrument, or the program
    names = exporter_names()
    if not names:
        if names is not None:
            log.info("tiered: OTEL_TRACES_EXPORTER is none; the run is not traced")
        return None
    from importlib.metadata import entry_points  # only when tracing is set up

    exporters: list[SpanExporter] = []
    for name in names:
        found = entry_points(group="opentelemetry_traces_exporter", name=name)
        if not found:
            package = _PACKAGES.get(name, "the package that provides it")
            log.warning(
                "tiered: OTEL_TRACES_EXPORTER asks for the trace exporter %r, "
                "which is not installed (pip install %s); the run is not traced",
                name,
                package,
            )
            return None
        try:
            exporter = next(iter(found)).load()()
        except Exception as exc:  # a broken exporter never stops the daemon
            log.warning(
                "tiered: the trace exporter %r could not be made (%s: %s); "
                "the run is not traced",
                name,
                type(exc).__name__,
                exc,
            )
            return None
        if not isinstance(exporter, SpanExporter):
            log.warning(
                "tiered: the entry point %r is not a span exporter; the run is not traced",
                name,
            )
            return None
        exporters.append(exporter)
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = Resource.create({SERVICE_NAME: service_name})
    provider = SdkProvider(resource=resource)
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    otel.set_tracer_provider(provider)
    return provider
