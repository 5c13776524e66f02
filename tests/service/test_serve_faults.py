"""`textclf serve` as a user runs it, under faults: it refuses to start on a broken model (saying
which file and what is wrong), and on SIGTERM it finishes every request in flight, then exits 0."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from tests.service.faults import BREAKAGES, TEXTCLF, ServeProcess, broken_copy, free_port
from training.cli import main

# As a process: each run costs ~2 s of CPU importing torch, so a few breakages, with one worker and
# with two (the parent loads and checks the model before it starts any worker).
PROCESS_CASES = [
    (breakage, workers)
    for breakage in (
        "truncated safetensors",
        "path escaping the folder",
        "pickle instead of safetensors",
    )
    for workers in (1, 2)
]

Outcome = tuple[int, str, tuple[str, ...], Path]


@pytest.fixture(scope="module")
def refusals(
    trained_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[tuple[str, int], Outcome]:
    """`textclf serve BROKEN --workers N` for each case, as many at a time as there are cores."""
    parent = tmp_path_factory.mktemp("broken")
    folders = {b: broken_copy(trained_model_dir, parent, b) for b in {b for b, _ in PROCESS_CASES}}

    def serve(case: tuple[str, int]) -> Outcome:
        root, needles = folders[case[0]]
        command = [TEXTCLF, "serve", root, "--port", str(free_port()), "--workers", str(case[1])]
        run = subprocess.run(
            list(map(str, command)),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=300,
        )
        return run.returncode, run.stdout, needles, root

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return dict(zip(PROCESS_CASES, pool.map(serve, PROCESS_CASES), strict=True))


@pytest.mark.parametrize(
    ("breakage", "workers"),
    PROCESS_CASES,
    ids=[f"{b}, {n} worker{'s' * (n > 1)}" for b, n in PROCESS_CASES],
)
def test_serve_refuses_to_start_on_a_broken_model(
    refusals: dict[tuple[str, int], Outcome], breakage: str, workers: int
) -> None:
    returncode, output, needles, root = refusals[breakage, workers]

    assert returncode == 1, output
    _assert_one_clear_line(output, needles)
    assert "Uvicorn running" not in output, "it must not serve, not even briefly"
    assert not (root.parent / "pwned").exists(), "a pickle was unpickled"


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_every_breakage_stops_serve_with_the_loaders_message(
    trained_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], breakage: str
) -> None:
    """The same command line, in process (no torch import per case), for every breakage."""
    root, needles = broken_copy(trained_model_dir, tmp_path, breakage)
    threads = torch.get_num_threads()

    try:
        returncode = main(["serve", str(root), "--port", str(free_port())])
    finally:
        torch.set_num_threads(threads)  # serve pins its process to one; this one is the suite's

    captured = capsys.readouterr()
    assert returncode == 1
    _assert_one_clear_line(captured.out + captured.err, needles)
    assert not (root.parent / "pwned").exists(), "a pickle was unpickled"


def _assert_one_clear_line(output: str, needles: tuple[str, ...]) -> None:
    (message,) = [line for line in output.splitlines() if line.startswith("textclf")]
    assert message.startswith("textclf serve: error: cannot load the model: ")
    for needle in needles:
        assert needle in message
    assert "Traceback" not in output


# --- SIGTERM: drain, then exit 0 ------------------------------------------------------------------

BIG = {"texts": [f"orbit {i} " * 2_000 for i in range(256)], "top_k": 2}  # 256 texts, ~5 MB
SMALL = {"texts": ["the rocket reached orbit", "a home run in the ninth"], "top_k": 1}


def _raw_post(port: int, body: dict) -> socket.socket:
    """POST /v1/predict on a new connection, sent in full; the answer is read later."""
    data = json.dumps(body).encode()
    head = (
        f"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json"
        f"\r\nContent-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=120)
    sock.sendall(head + data)
    return sock


def _answer(sock: socket.socket) -> tuple[int, dict]:
    chunks = []
    with sock:
        while chunk := sock.recv(1 << 16):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head else 0
    return status, json.loads(body) if body else {}


def _accept_queue(port: int) -> int:
    """Connections waiting in the listening socket's accept queue (the kernel's rx_queue of a
    LISTEN socket): 0 once the server has accepted every connection that was made."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":  # 0A: LISTEN
            return int(fields[4].split(":")[1], 16)
    raise AssertionError(f"nothing listens on port {port}")


def test_sigterm_finishes_every_request_in_flight_then_exits_0(trained_model_dir: Path) -> None:
    bodies = [BIG] * 4 + [SMALL] * 28
    with ServeProcess(trained_model_dir) as server:
        connections = [_raw_post(server.port, body) for body in bodies]
        while _accept_queue(server.port):
            time.sleep(0.01)  # until the server has accepted every connection
        time.sleep(0.2)  # and read their request lines (the big ones take seconds to answer)
        server.send(signal.SIGTERM)
        answers = [_answer(sock) for sock in connections]
        returncode = server.wait()

    assert [status for status, _ in answers] == [200] * len(bodies)
    for body, (_, answer) in zip(bodies, answers, strict=True):
        assert len(answer["predictions"]) == len(body["texts"])
        assert all(len(p["top_k"]) == body["top_k"] for p in answer["predictions"])
    assert "Waiting for connections to close" in server.output, "nothing was in flight"
    assert returncode == 0, server.output
    assert "Traceback" not in server.output
