"""Serving a sandbox (or a test's shop) on a real loopback socket in a background thread."""

from __future__ import annotations

import functools
import threading
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server

# How often the serving loop looks whether it was told to stop. ``stop()`` waits for that
# look, and the loop's wait starts again after every request: at socketserver's default
# (0.5 s) nearly every stop of a server that just answered took the whole half second.
POLL_INTERVAL = 0.05


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
            target=functools.partial(self._server.serve_forever, poll_interval=POLL_INTERVAL),
            name=f"loopback-{self.port}",
            daemon=True,
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
