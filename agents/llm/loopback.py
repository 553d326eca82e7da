"""A local HTTP service on 127.0.0.1, served from a background thread.

hvae serves OpenAI-compatible endpoints locally in two places: the value-rational oracle server
(:mod:`hvae.agents.llm.oracle_server`, ``hvae serve-oracle``) and the scripted stub server of the
test suite (``tests/llm_stub_server.py``). Both need the same lifecycle — bind (``port=0``: any
free port), serve from a daemon thread, stop cleanly, and say where they listen — which lives
here once. A subclass gives its request handler class; the handler reaches the service as
``self.server.owner``::

    class Echo(LoopbackService):
        handler_class = EchoHandler

    with Echo() as service:
        service.base_url    # 'http://127.0.0.1:PORT/v1'

Only the loopback address is ever bound: these services answer anyone who can connect, so they
must not be reachable from another machine.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

HOST = "127.0.0.1"


class LoopbackHTTPServer(ThreadingHTTPServer):
    """The socket server: one thread per request, never blocking shutdown on a sleeping handler."""

    daemon_threads = True
    request_queue_size = 256  # listen backlog: many clients connect at once (the default 5 drops some)
    owner: Any  # the LoopbackService that started it


class LoopbackService:
    """Start/stop/port/base_url of an HTTP service on 127.0.0.1 (see the module docstring)."""

    handler_class: ClassVar[type[BaseHTTPRequestHandler]]
    thread_name: ClassVar[str] = "hvae-loopback"
    poll_interval: ClassVar[float] = 0.1
    reuse_address: ClassVar[bool] = False

    def __init__(self, port: int = 0) -> None:
        self.requested_port = port
        self._server: LoopbackHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Any:
        """Bind and serve in a background thread (raises ``OSError`` when the port is taken)."""
        if self._server is not None:
            raise RuntimeError(f"{type(self).__name__} is already started")
        server_class = type("Server", (LoopbackHTTPServer,), {"allow_reuse_address": self.reuse_address})
        server = server_class((HOST, self.requested_port), self.handler_class)
        server.owner = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": self.poll_interval}, name=self.thread_name, daemon=True
        )
        self._thread.start()
        return self

    def before_shutdown(self) -> None:
        """Hook: wake anything a handler waits on before the server shuts down."""

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self.before_shutdown()
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"
