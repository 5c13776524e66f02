"""Run the shipped nginx configuration for real on loopback: a copy in a temporary prefix, with
the upstream servers, the port and (optionally) the header timeout filled in by the test."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "deploy" / "nginx" / "nginx.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
_SERVER = re.compile(r"^(\s*)server textclf:8000([^;]*);$", re.MULTILINE)


def require_nginx() -> str:
    """nginx's path; skips with the reason when it is missing (`make system-packages`)."""
    if not Path(NGINX).exists():
        pytest.skip("nginx is not installed: run .ci/system-packages (Debian's nginx package)")
    return NGINX


def configured(
    prefix: Path, *, upstreams: Sequence[str], port: int, header_timeout: str | None = None
) -> Path:
    """The shipped configuration under `prefix`, its upstream servers and port replaced."""
    text = CONF.read_text("utf-8")
    text, replaced = _SERVER.subn(
        lambda m: "\n".join(f"{m[1]}server {u}{m[2]};" for u in upstreams), text
    )
    assert replaced == 1, "deploy/nginx/nginx.conf no longer has `server textclf:8000 ...;`"
    text = text.replace("listen 8080;", f"listen 127.0.0.1:{port};")
    if header_timeout is not None:
        timeout = f"client_header_timeout {header_timeout};"
        text = text.replace("client_header_timeout 10s;", timeout)
    (prefix / "tmp").mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(text, "utf-8")
    return conf


def command(prefix: Path, conf: Path, *extra: str) -> list[str]:
    globals_ = f"daemon off; pid {prefix / 'nginx.pid'}; error_log {prefix / 'error.log'} warn;"
    return [require_nginx(), "-p", f"{prefix}/", "-c", str(conf), "-g", globals_, *extra]


class Nginx:
    """nginx in the foreground on `127.0.0.1:port`, stopped (SIGQUIT, graceful) on exit."""

    def __init__(self, prefix: Path, conf: Path, port: int) -> None:
        self.prefix, self.conf, self.port = prefix, conf, port
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        self.process = subprocess.Popen(
            command(self.prefix, self.conf), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"nginx exited: {self.process.stderr.read().decode()}")  # type: ignore[union-attr]
            try:
                httpx.get(f"{self.url}/healthz", timeout=2)
                return self
            except httpx.TransportError:
                time.sleep(0.05)
        raise AssertionError("nginx did not start listening")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(timeout=30)
