"""A local WebSocket server that plays Slack's Socket Mode endpoint, for tests.

``FakeSlack.socket_url`` points ``apps.connections.open`` here; the app's Socket Mode
client connects, gets Slack's ``hello``, and is then sent envelopes as Slack sends
them (``events_api``, ``interactive``). Every message the client sends back — the
acknowledgements, ``{"envelope_id": ..., "payload"?: ...}`` — is recorded.
"""

from __future__ import annotations

import itertools
import json
import threading
from types import TracebackType
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

JSON = dict[str, Any]


class FakeSocketMode:
    def __init__(self) -> None:
        self.acks: list[JSON] = []
        self._connections: list[ServerConnection] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server: Server = serve(self._session, "127.0.0.1", 0, compression=None)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-socket-mode", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.socket.getsockname()[:2]
        return f"ws://{host}:{port}/link/?ticket=test"

    @property
    def connected(self) -> bool:
        with self._lock:
            return bool(self._connections)

    def send(self, kind: str, payload: JSON, retry_attempt: int = 0) -> str:
        """Send an envelope to the connected app; returns its envelope id."""
        envelope_id = f"envelope-{next(self._ids)}"
        envelope = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind == "interactive",
            "retry_attempt": retry_attempt,
            "retry_reason": "timeout" if retry_attempt else "",
        }
        with self._lock:
            connection = self._connections[-1]
        connection.send(json.dumps(envelope))
        return envelope_id

    def ack_for(self, envelope_id: str) -> JSON | None:
        with self._lock:
            return next((ack for ack in self.acks if ack.get("envelope_id") == envelope_id), None)

    def _session(self, connection: ServerConnection) -> None:
        connection.send(json.dumps({"type": "hello", "num_connections": 1, "debug_info": {"host": "fake"}}))
        with self._lock:
            self._connections.append(connection)
        try:
            for raw in connection:
                with self._lock:
                    self.acks.append(json.loads(raw))
        except ConnectionClosed:
            pass
        finally:
            with self._lock:
                self._connections.remove(connection)

    def __enter__(self) -> FakeSocketMode:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._thread.join()
