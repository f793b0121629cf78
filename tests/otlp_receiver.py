"""A trace backend on 127.0.0.1: OTLP over HTTP (``POST /v1/traces``, protobuf), keeping every span.

It decodes requests with ``opentelemetry-proto``, the messages the exporters encode with, so a
test sees what any collector would receive from real ``outerloop`` processes.
"""

from __future__ import annotations

import gzip
import threading
from dataclasses import dataclass
from functools import partial
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from tests.local_server import LocalServer, QuietHandler


@dataclass(frozen=True)
class ReceivedSpan:
    trace_id: int
    span_id: int
    parent_id: int | None
    name: str
    attributes: dict[str, object]
    process: str
    """The ``outerloop.process`` resource attribute of the process that exported it."""


def _value(value: AnyValue) -> object:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return tuple(_value(item) for item in value.array_value.values)
    return getattr(value, kind) if kind else None


class OtlpReceiver(LocalServer):
    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self._lock = threading.Lock()
        super().__init__(partial(_Handler, self), "otlp-receiver")

    @property
    def endpoint(self) -> str:
        """For ``OTEL_EXPORTER_OTLP_ENDPOINT``: the exporter adds ``/v1/traces``."""
        return self.origin

    def received(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self.spans)

    def _keep(self, request: ExportTraceServiceRequest) -> None:
        kept = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    kept.append(
                        ReceivedSpan(
                            trace_id=int.from_bytes(span.trace_id, "big"),
                            span_id=int.from_bytes(span.span_id, "big"),
                            parent_id=int.from_bytes(span.parent_span_id, "big")
                            if span.parent_span_id
                            else None,
                            name=span.name,
                            attributes={a.key: _value(a.value) for a in span.attributes},
                            process=str(resource.get("outerloop.process")),
                        )
                    )
        with self._lock:
            self.spans.extend(kept)


class _Handler(QuietHandler):
    def __init__(self, receiver: OtlpReceiver, *args: Any, **kwargs: Any) -> None:
        self.receiver = receiver
        super().__init__(*args, **kwargs)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        if self.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        if self.path != "/v1/traces":
            self.reply(404, b"", "text/plain", {})
            return
        self.receiver._keep(ExportTraceServiceRequest.FromString(body))
        self.reply(200, ExportTraceServiceResponse().SerializeToString(), "application/x-protobuf", {})
