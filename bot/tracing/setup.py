"""The tracer provider the ``OTEL_*`` variables describe: resource, sampler, exporter, batching.

The SDK reads most variables itself: ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` (the
resource), ``OTEL_TRACES_SAMPLER`` (the sampler), ``OTEL_BSP_*`` (batching), and the OTLP
exporters their endpoint, headers, timeout and compression. Picking the exporter is ours, from
``OTEL_TRACES_EXPORTER`` (``otlp``, ``console``, ``none``; a comma-separated list) and the OTLP
protocol from ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`` or ``OTEL_EXPORTER_OTLP_PROTOCOL``:
``http/protobuf`` unless set, as the OpenTelemetry specification recommends, so gRPC is only
imported by a process that asks for it.
"""

from __future__ import annotations

import os
import sys

from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import Sampler

from bot.tracing.errors import TracingConfigError
from bot.tracing.spans import ThreadIds

EXPORTERS = ("otlp", "console", "none")
PROTOCOLS = ("http/protobuf", "grpc")
PROTOCOL_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
DEFAULT_SERVICE = "outerloop"


def provider_from_environment(process: str | None) -> TracerProvider:
    """A provider exporting as the environment says.

    It is not made OpenTelemetry's global provider: the Anthropic SDK (2.x) makes a ``chat`` span
    of its own for every API call on the global provider, and a backend that adds up the tokens of
    GenAI spans would count each call twice; the caller's ``chat`` span (``bot.tracing.spans``)
    covers the whole call, retries and rate-limit waits included."""
    resource = Resource.create({"outerloop.process": process or "outerloop"})
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE}))
    provider = new_provider(resource)
    for exporter in exporters():
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def new_provider(resource: Resource | None = None, sampler: Sampler | None = None) -> TracerProvider:
    """A provider that gives each thread's root span the thread's derived ids (``bot.tracing.spans``);
    without ``sampler``, the one ``OTEL_TRACES_SAMPLER`` names (every span, unless set)."""
    return TracerProvider(resource=resource or Resource.create(), sampler=sampler, id_generator=ThreadIds())


def exporters() -> list[SpanExporter]:
    listed = os.environ.get("OTEL_TRACES_EXPORTER", "otlp").lower().split(",")
    names = [name.strip() for name in listed if name.strip()]
    unknown = [name for name in names if name not in EXPORTERS]
    if unknown:
        raise TracingConfigError(
            f"OTEL_TRACES_EXPORTER names {', '.join(unknown)}, which outerloop cannot export to: "
            f"use {', '.join(EXPORTERS)} (several separated by commas)"
        )
    chosen: list[SpanExporter] = []
    if "otlp" in names:
        chosen.append(_otlp())
    if "console" in names:
        chosen.append(ConsoleSpanExporter(out=sys.stderr))  # stdout is for what commands print
    return chosen


def _otlp() -> SpanExporter:
    variable = next((name for name in PROTOCOL_VARIABLES if os.environ.get(name)), None)
    protocol = os.environ[variable].strip().lower() if variable else PROTOCOLS[0]
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc

        return Grpc()
    if protocol != "http/protobuf":
        raise TracingConfigError(
            f"{variable}={protocol} is not an OTLP protocol outerloop exports with: "
            f"use {' or '.join(PROTOCOLS)}"
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as Http

    return Http()
