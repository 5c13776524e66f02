"""`textclf serve --workers 2` acts as one server: reloads (HTTP and SIGHUP) reach every worker,
a folder any worker refuses leaves all on the old model, /metrics counts every worker's requests,
and SIGTERM drains the requests in flight on every worker before exiting 0.

One real 2-worker server (a subprocess on a free port) serves the whole module, in file order; the
last test stops it. Every prediction and scrape opens a fresh connection, so the kernel hands them
to either worker.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[2]
KEY = "workers-test-key"
PREDICT = (("method", "POST"), ("route", "/v1/predict"), ("status", "200"))


@dataclass
class Served:
    url: str
    process: subprocess.Popen[str]
    folder: Path  # the folder the server was started with; tests swap what is there
    versions: dict[str, str]  # "trained", "pairs" -> model version
    # No kept-alive connections: every request opens a new one, so either worker may take it.
    http: httpx.Client = field(
        default_factory=lambda: httpx.Client(limits=httpx.Limits(max_keepalive_connections=0))
    )


def _version(folder: Path) -> str:
    return str(json.loads((folder / "manifest.json").read_text())["version"])


def _swap(folder: Path, source: Path) -> None:
    """Put a copy of `source` at `folder`, as a deploy would: the new folder renamed into place."""
    staged = shutil.copytree(source, folder.with_name(folder.name + ".new"))
    shutil.rmtree(folder)
    staged.rename(folder)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def served(
    trained_model_dir: Path, pairs_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("workers") / "model"
    shutil.copytree(trained_model_dir, folder)
    port = _free_port()
    flags = ["--port", str(port), "--workers", "2", "--scorer", "thread", "--log-level", "warning"]
    process = subprocess.Popen(
        [sys.executable, "-m", "service", str(folder), *flags],
        cwd=REPO,
        env={**os.environ, "TEXTCLF_API_KEY": KEY},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    versions = {"trained": _version(trained_model_dir), "pairs": _version(pairs_model_dir)}
    server = Served(f"http://127.0.0.1:{port}", process, folder, versions)
    try:
        _wait_for(lambda: _worker_versions(server) == [versions["trained"]] * 2, server)
        yield server
    finally:
        if process.poll() is None:  # a test failed before the last one stopped it
            process.terminate()
            try:
                process.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        process.communicate()
        server.http.close()


def test_the_request_counter_adds_up_every_workers_requests(served: Served) -> None:
    before = _scrape(served).get(PREDICT, 0.0)
    n = 30
    for _ in range(n):
        assert _predict_version(served) == served.versions["trained"]

    # Six scrapes, each on a new connection: whichever worker answers, the total is the same.
    counts = [_scrape(served).get(PREDICT) for _ in range(6)]
    assert counts == [before + n] * 6
    assert len(_worker_versions(served)) == 2  # the scrape shows both workers' gauges


def test_a_reload_over_http_reaches_every_worker(
    served: Served, pairs_model_dir: Path
) -> None:
    _swap(served.folder, pairs_model_dir)
    response = _reload(served)

    assert response.status_code == 200, response.text
    assert response.json()["current"]["version"] == served.versions["pairs"]
    assert response.json()["previous"]["version"] == served.versions["trained"]
    assert {_predict_version(served) for _ in range(40)} == {served.versions["pairs"]}
    assert _worker_versions(served) == [served.versions["pairs"]] * 2


def test_a_folder_that_fails_to_load_leaves_every_worker_on_the_old_model(
    served: Served, trained_model_dir: Path, tmp_path: Path
) -> None:
    broken = shutil.copytree(trained_model_dir, tmp_path / "broken")
    (broken / "vectorizer.json").write_text("{}")
    _swap(served.folder, broken)
    response = _reload(served)

    assert response.status_code == 409
    message = response.json()["error"]["message"]
    assert "every worker keeps the old model" in message
    assert "vectorizer.json" in message
    assert {_predict_version(served) for _ in range(40)} == {served.versions["pairs"]}


def test_sighup_to_the_serve_process_reloads_every_worker(
    served: Served, trained_model_dir: Path
) -> None:
    _swap(served.folder, trained_model_dir)
    served.process.send_signal(signal.SIGHUP)

    _wait_for(lambda: _worker_versions(served) == [served.versions["trained"]] * 2, served)
    assert {_predict_version(served) for _ in range(40)} == {served.versions["trained"]}


def test_a_worker_that_dies_is_replaced_and_drops_out_of_the_gauges(served: Served) -> None:
    before = _worker_pids(served)
    os.kill(int(before[0]), signal.SIGKILL)

    # Its replacement loads the folder as it is now; the dead worker's gauge is gone.
    _wait_for(lambda: len(set(_worker_pids(served)) - set(before)) == 1, served)
    assert len(_worker_pids(served)) == 2
    assert _worker_versions(served) == [served.versions["trained"]] * 2
    assert {_predict_version(served) for _ in range(10)} == {served.versions["trained"]}


def test_sigterm_answers_every_request_in_flight_then_exits_0(served: Served) -> None:
    metrics_dir = _metrics_dir(served)
    assert metrics_dir.is_dir()
    body = json.dumps({"texts": ["the rocket reached orbit"]}).encode()
    # Each request's headers are in and its handler waits for the body: uvicorn says
    # "100 Continue" when the handler starts reading it, so these are in flight for certain.
    waiting = [_start_request(served.url, body) for _ in range(6)]
    served.process.send_signal(signal.SIGTERM)
    for connection in waiting:
        connection.sendall(body)

    statuses = [_read_status(connection) for connection in waiting]
    assert statuses == [200] * len(waiting)
    assert served.process.wait(timeout=60) == 0
    assert not metrics_dir.exists()  # each run's multiprocess metrics are removed at exit


# -- helpers ---------------------------------------------------------------------------------


def _predict_version(served: Served) -> str:
    response = served.http.post(
        f"{served.url}/v1/predict",
        json={"texts": ["the rocket reached orbit"]},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["model"]["version"])


def _reload(served: Served) -> httpx.Response:
    return served.http.post(
        f"{served.url}/v1/admin/reload", headers={"Authorization": f"Bearer {KEY}"}, timeout=120
    )


def _scrape(served: Served) -> dict[tuple[tuple[str, str], ...], float]:
    """The request counter's samples, by sorted labels, from one scrape on a new connection."""
    text = served.http.get(f"{served.url}/metrics").text
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "textclf_http_requests_total"
    }


def _worker_versions(served: Served) -> list[str]:
    """The version each live worker serves, by pid (`textclf_model_info` per worker)."""
    try:
        text = served.http.get(f"{served.url}/metrics").text
    except httpx.TransportError:
        return []
    serving = sorted(
        (sample.labels["pid"], sample.labels["version"])
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "textclf_model_info" and sample.value == 1
    )
    return [version for _, version in serving]


def _worker_pids(served: Served) -> list[str]:
    text = served.http.get(f"{served.url}/metrics").text
    return sorted(
        sample.labels["pid"]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "textclf_model_info" and sample.value == 1
    )


def _metrics_dir(served: Served) -> Path:
    """The run's PROMETHEUS_MULTIPROC_DIR, from a worker's environment (pid from /metrics)."""
    text = served.http.get(f"{served.url}/metrics").text
    pid = next(
        sample.labels["pid"]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "textclf_model_info"
    )
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    (value,) = [v for v in environ if v.startswith(b"PROMETHEUS_MULTIPROC_DIR=")]
    return Path(value.split(b"=", 1)[1].decode())


def _wait_for(condition: object, served: Served, timeout: float = 120) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        if served.process.poll() is not None:
            raise AssertionError(f"the server exited: {served.process.communicate()[1]}")
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not hold in time")
        time.sleep(0.1)


def _start_request(url: str, body: bytes) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)), timeout=60)
    head = (
        f"POST /v1/predict HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Expect: 100-continue\r\n\r\n"
    )
    connection.sendall(head.encode())
    interim = connection.recv(1024)
    assert interim.startswith(b"HTTP/1.1 100"), interim
    return connection


def _read_status(connection: socket.socket) -> int:
    with connection:
        data = b""
        while b"\r\n" not in data:
            chunk = connection.recv(1024)
            if not chunk:
                break
            data += chunk
    return int(data.split(b" ", 2)[1])
