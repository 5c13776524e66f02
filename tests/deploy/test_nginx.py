"""Two real `textclf serve` processes behind a real nginx (the shipped configuration, on
loopback): a steady load through nginx while one replica gets SIGTERM and is started again loses
no request; a rolling reload leaves both replicas on the new version; and nginx closes
connections whose headers never finish (the slow-client protection textclf itself leaves to it).

One set-up for the module: nginx and both replicas start once. The request counts of the restart
test are printed at the end of it.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.deploy.nginx import Nginx, configured, require_nginx
from tests.service.faults import ServeProcess, free_port, replace_folder

CLIENTS = 4  # closed-loop client threads through nginx
RETRIES = 5  # per request: the client's own retries on a connection error or a 502/503
HEADER_TIMEOUT_S = 1


@dataclass
class Stack:
    model: Path  # the folder both replicas serve
    replicas: tuple[ServeProcess, ServeProcess]
    nginx: Nginx


@pytest.fixture(scope="module")
def stack(trained_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_nginx()
    root = tmp_path_factory.mktemp("deploy")
    model = Path(shutil.copytree(trained_model_dir, root / "model"))
    # `--scorer thread`: a reload loads in the worker, without starting a child process (~1 s
    # instead of ~8 s on 2 busy cores); the process scorer's reloads are tested in tests/service.
    args, env = ("--scorer", "thread"), {"TEXTCLF_LOG_LEVEL": "warning"}
    replicas = (ServeProcess(model, *args, env=env), ServeProcess(model, *args, env=env))
    for replica in replicas:
        replica.start(ready=False)
    try:
        for replica in replicas:
            replica.wait_ready()
        port = free_port()
        upstreams = [f"127.0.0.1:{r.port}" for r in replicas]
        conf = configured(
            root / "nginx", upstreams=upstreams, port=port, header_timeout=f"{HEADER_TIMEOUT_S}s"
        )
        with Nginx(root / "nginx", conf, port) as nginx:
            yield Stack(model, replicas, nginx)
    finally:
        for replica in replicas:
            replica.stop()


class Load:
    """Closed-loop clients posting predictions through nginx until stopped; a request is lost
    when it still has no 200 after its retries."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.stop = threading.Event()
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.progress = threading.Condition(self.lock)
        self.threads = [threading.Thread(target=self._client, args=(i,)) for i in range(CLIENTS)]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)

    def wait_for(self, answered: int, timeout: float = 60) -> None:
        """Until `answered` requests have succeeded in all (a progress check, not a timer)."""
        with self.progress:
            assert self.progress.wait_for(lambda: self.counts["ok"] >= answered, timeout), (
                f"the load stalled: {dict(self.counts)}"
            )

    def _client(self, index: int) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            n = 0
            while not self.stop.is_set():
                n += 1
                outcome = self._request(http, f"client {index} request {n} about space shuttles")
                with self.progress:
                    self.counts[outcome] += 1
                    self.counts["sent"] += 1
                    self.progress.notify_all()

    def _request(self, http: httpx.Client, text: str) -> str:
        for _attempt in range(1 + RETRIES):
            try:
                response = http.post("/v1/predict", json={"texts": [text]})
            except httpx.TransportError:
                self._count("retried: connection error")
                continue
            if response.status_code in (502, 503):
                self._count(f"retried: {response.status_code}")
                continue
            ok = response.status_code == 200 and len(response.json()["predictions"]) == 1
            return "ok" if ok else f"failed: {response.status_code}"
        return "lost"

    def _count(self, what: str) -> None:
        with self.lock:
            self.counts[what] += 1


def test_a_replica_restart_under_load_loses_no_request(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    first = stack.replicas[0]
    with Load(stack.nginx.url) as load:
        load.wait_for(200)
        first.send(signal.SIGTERM)
        assert first.wait() == 0, first.output
        at_stop = load.counts["ok"]
        load.wait_for(at_stop + 200)  # the other replica alone serves these
        first.start()  # ready again (its /readyz answers)
        load.wait_for(load.counts["ok"] + 200)
    counts = dict(load.counts)
    # What nginx absorbed: each upstream failure it logged was retried on the other replica.
    log = (stack.nginx.prefix / "error.log").read_text()
    absorbed = sum("upstream" in line for line in log.splitlines())
    with capsys.disabled():
        print(f"\nnginx restart test: {counts}; upstream errors nginx retried: {absorbed}")

    assert counts.get("lost", 0) == 0, counts
    assert counts["ok"] == counts["sent"], counts
    assert httpx.get(f"{first.url}/readyz").status_code == 200


def test_a_rolling_reload_leaves_both_replicas_on_the_new_version(
    stack: Stack, pairs_model_dir: Path
) -> None:
    old = _version(stack.replicas[0].url)
    replace_folder(stack.model, pairs_model_dir)  # a different model: a new version
    for replica in stack.replicas:  # one at a time: the other keeps serving meanwhile
        replica.send(signal.SIGHUP)
        _wait_for_new_version(replica.url, old)

    direct = {_version(replica.url) for replica in stack.replicas}
    through_nginx = {_version(stack.nginx.url) for _ in range(10)}
    assert len(direct) == 1 and old not in direct
    assert through_nginx == direct


def _version(url: str) -> str:
    version: str = httpx.get(f"{url}/v1/model", timeout=30).json()["version"]
    return version


def _wait_for_new_version(url: str, old: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while _version(url) == old:
        assert time.monotonic() < deadline, f"{url} still serves {old} after SIGHUP"
        time.sleep(0.05)  # polling interval; the condition is the version, not the time


def test_nginx_closes_connections_whose_headers_never_finish(stack: Stack) -> None:
    sockets = [
        socket.create_connection(("127.0.0.1", stack.nginx.port), timeout=10 * HEADER_TIMEOUT_S)
        for _ in range(20)
    ]
    try:
        for sock in sockets:
            sock.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: textclf\r\nContent-Type: appl")
        for sock in sockets:  # each recv returns when nginx closes it: b"" (or a reset)
            with contextlib.suppress(ConnectionResetError):
                assert sock.recv(1024) == b""
    finally:
        for sock in sockets:
            sock.close()
    assert httpx.post(f"{stack.nginx.url}/v1/predict", json={"texts": ["x"]}).status_code == 200
