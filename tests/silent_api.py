"""An API that answers apply's preflight (the balance) and never answers a send.

A send to it has left the machine and has no answer: what a lost answer looks like, for tests
that kill apply while it waits.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Silent(ThreadingHTTPServer):
    daemon_threads = True
    closing = threading.Event()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Silent

    def do_GET(self) -> None:
        data = json.dumps({"amount": 1e9, "unit": "euros"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        self.server.closing.wait(60)  # no answer until the test ends

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@contextmanager
def silent_api() -> Iterator[str]:
    server = _Silent(("127.0.0.1", 0), _Handler)
    server.closing = threading.Event()
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/public"
    finally:
        server.closing.set()
        server.shutdown()
        server.server_close()
        thread.join()
