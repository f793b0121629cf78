"""A client that streams a large body over a raw socket and notices when the server stops reading.

httpx would keep writing until the whole body is sent or the socket breaks, and then
may never show the early answer; here the answer is read as soon as it arrives, and
the client counts what it managed to send.
"""

from __future__ import annotations

import json
import select
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

PIECE = 64 * 1024


@dataclass(frozen=True)
class Upload:
    status: int
    body: dict[str, Any]
    sent: int
    """Body bytes the client got out before the server answered or closed the connection."""


def upload(base_url: str, path: str, size: int, headers: dict[str, str], *, chunked: bool) -> Upload:
    """POST ``size`` bytes of ``x`` to ``path``, declared in Content-Length or sent chunked."""
    url = urlsplit(base_url)
    framing = {"Transfer-Encoding": "chunked"} if chunked else {"Content-Length": str(size)}
    head = "".join(f"{name}: {value}\r\n" for name, value in {**headers, **framing}.items())
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {url.hostname}\r\n{head}\r\n".encode())
        sent = 0
        piece = b"%x\r\n%s\r\n" % (PIECE, b"x" * PIECE) if chunked else b"x" * PIECE
        while sent < size and not select.select([sock], [], [], 0)[0]:
            try:
                sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += PIECE
        return _response(sock, sent)


def _response(sock: socket.socket, sent: int) -> Upload:
    raw = b""
    while b"\r\n\r\n" not in raw or len(raw) < _expected(raw):
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            break
        if not data:
            break
        raw += data
    head, _, body = raw.partition(b"\r\n\r\n")
    return Upload(int(head.split()[1]), json.loads(body), sent)


def _expected(raw: bytes) -> int:
    head, _, _ = raw.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(head) + 4 + int(value)
    return len(raw) + 1
