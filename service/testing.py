"""`LiveServer`: run an app under a real uvicorn server on a background thread.

For tests (here and in code that uses the client) that want real HTTP, real sockets and the real
lifespan, as httpx's own test-suite does, without a subprocess:

    with LiveServer(create_app(Settings(model_path=dir))) as server:
        textclf.Client(server.url).predict("...")
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType
from typing import Any, Self

import uvicorn
from starlette.types import ASGIApp


class LiveServer:
    """A uvicorn server on `host:port` (port 0 picks a free one) in a daemon thread."""

    def __init__(
        self, app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0, **config: Any
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        # log_config=None leaves the process's logging alone (pytest's caplog keeps working).
        self._config = {"log_config": None, "log_level": "warning", **config}
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, *, timeout: float = 60.0) -> Self:
        """Bind, run the lifespan, and return once the server accepts connections.

        Raises RuntimeError if startup fails (for example the model does not load)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(self.app, **self._config))
        thread = threading.Thread(
            target=self._run, args=(server, sock), name=f"uvicorn-{self.port}", daemon=True
        )
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                thread.join(timeout=5)
                sock.close()
                raise RuntimeError(f"the server on {self.url} did not start (see the log for why)")
            time.sleep(0.01)
        return self

    @staticmethod
    def _run(server: uvicorn.Server, sock: socket.socket) -> None:
        # uvicorn reports a failed startup with sys.exit(3); in a thread that is just an ending.
        with contextlib.suppress(SystemExit):
            server.run(sockets=[sock])

    def stop(self) -> None:
        """Graceful shutdown: in-flight requests finish, then the lifespan shuts down."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
