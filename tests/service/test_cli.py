"""`textclf serve` / `python -m service`: refuses a broken model with its message, serves a good one
with one worker or several."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.cli import run
from training.cli import build_parser

REPO = Path(__file__).resolve().parents[2]


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "service", *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_is_a_textclf_subcommand(tmp_path: Path) -> None:
    args = build_parser().parse_args(["serve", str(tmp_path), "--port", "9001", "--workers", "2"])

    assert args.func is run
    assert (args.model_path, args.host, args.port, args.workers) == (tmp_path, "127.0.0.1", 9001, 2)


def test_missing_model_exits_non_zero_with_the_loaders_message(tmp_path: Path) -> None:
    process = _serve(str(tmp_path / "nowhere"))
    _, stderr = process.communicate(timeout=120)

    assert process.returncode == 1
    assert "cannot load the model" in stderr
    assert "nowhere" in stderr
    assert "Traceback" not in stderr


def test_corrupt_model_exits_non_zero_naming_the_file(
    trained_model_dir: Path, tmp_path: Path
) -> None:
    broken = shutil.copytree(trained_model_dir, tmp_path / "broken")
    (broken / "vectorizer.json").write_text("{}")
    process = _serve(str(broken), "--workers", "2")
    _, stderr = process.communicate(timeout=120)

    assert process.returncode == 1
    assert "vectorizer.json" in stderr
    assert "Traceback" not in stderr


def test_invalid_setting_from_the_environment_exits_non_zero(trained_model_dir: Path) -> None:
    process = _serve(str(trained_model_dir), env={"TEXTCLF_MAX_TEXTS": "0"})
    _, stderr = process.communicate(timeout=120)

    assert process.returncode == 1
    assert "invalid settings" in stderr
    assert "max_texts" in stderr


def test_workers_must_be_positive(trained_model_dir: Path) -> None:
    process = _serve(str(trained_model_dir), "--workers", "0")
    _, stderr = process.communicate(timeout=120)

    assert process.returncode == 2
    assert "--workers: must be at least 1" in stderr


@pytest.fixture(params=[1, 2], ids=["1 worker", "2 workers"])
def served(request: pytest.FixtureRequest, trained_model_dir: Path) -> Iterator[str]:
    port = _free_port()
    process = _serve(str(trained_model_dir), "--port", str(port), "--workers", str(request.param))
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process)
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
    assert process.returncode == 0


def test_serves_predictions(served: str) -> None:
    response = httpx.post(f"{served}/v1/predict", json={"texts": ["the rocket reached orbit"]})

    assert response.status_code == 200
    assert response.json()["model"]["name"] == "test-model"


def _wait_ready(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited: {process.communicate()[1]}")
        try:
            if httpx.get(f"{url}/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} never became ready")
