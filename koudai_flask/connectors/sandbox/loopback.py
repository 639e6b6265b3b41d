"""Serving a sandbox (or a test's shop) on a real loopback socket in a background thread."""

from __future__ import annotations

import threading
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server


class _QuietRequestHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """No access log: tests and the CLI print what matters themselves."""


class LoopbackServer:
    """Serve a WSGI app on 127.0.0.1 in a background thread; ``port=0`` picks a free port."""

    def __init__(self, app: Any, *, port: int = 0, quiet: bool = True) -> None:
        handler = _QuietRequestHandler if quiet else WSGIRequestHandler
        self._server = make_server("127.0.0.1", port, app, threaded=True, request_handler=handler)
        self.port: int = self._server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"loopback-{self.port}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LoopbackServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
