"""A TCP proxy on loopback that can cut a process off from Redis and let it back.

``blackhole`` stops forwarding in both directions but keeps every connection open, as a
network partition does: bytes sent meanwhile wait in the proxy (TCP would retransmit
them) and arrive after ``heal``, or never, if ``heal(reset=True)`` resets the connections.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tests.services import free_port

CHUNK = 65536


class Proxy:
    """Forwards ``127.0.0.1:port`` to ``127.0.0.1:upstream``; a thread pair per connection."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.port = free_port()
        self._flowing = threading.Event()
        self._flowing.set()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True, name=f"proxy-{self.port}").start()

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def blackhole(self) -> None:
        """Stop forwarding; connections stay open and new ones are accepted but get nothing."""
        self._flowing.clear()

    def heal(self, reset: bool = False) -> None:
        """Forward again; with ``reset``, first reset every connection (RST), dropping what waits."""
        if reset:
            with self._lock:
                doomed, self._sockets = self._sockets, []
            for sock in doomed:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    sock.close()
        self._flowing.set()

    @contextmanager
    def down(self, seconds: float, reset: bool = False) -> Iterator[None]:
        """Blackhole for ``seconds``, then heal; the body runs while traffic is cut."""
        self.blackhole()
        until = time.monotonic() + seconds
        try:
            yield
        finally:
            time.sleep(max(0.0, until - time.monotonic()))
            self.heal(reset)

    def close(self) -> None:
        self._listener.close()
        self.heal(reset=True)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.upstream))
            except OSError:  # the server is down: the client sees its connection close
                client.close()
                continue
            with self._lock:
                self._sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(CHUNK):
                self._flowing.wait()
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
