"""`textclf batch` as users run it: a real process with two scoring workers, real signals."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.batch.expected import assert_rows_match, predicted_rows

ROWS = 30_000
KILLED_ROWS = 6_000  # the signal tests: long enough to stop halfway, short enough to rerun
DEADLINE_S = 120


def _posts_file(path: Path, posts: list[str], rows: int) -> Path:
    with path.open("w") as handle:
        for i in range(rows):
            handle.write(json.dumps({"text": posts[i % len(posts)]}) + "\n")
    return path


@pytest.fixture(scope="module")
def big_input(posts: list[str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _posts_file(tmp_path_factory.mktemp("batch") / "posts.jsonl", posts, ROWS)


@pytest.fixture(scope="module")
def mid_input(posts: list[str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _posts_file(tmp_path_factory.mktemp("batch") / "mid.jsonl", posts, KILLED_ROWS)


def _command(model: Path, source: Path, output: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "training", "batch", str(model), str(source), "-o", str(output),
            "--workers", "2", "--chunk-size", "500", "--top-k", "2", *extra]  # fmt: skip


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def _uninterrupted(model: Path, source: Path) -> Path:
    output = source.with_name(source.stem + "-reference.jsonl")
    done = subprocess.run(_command(model, source, output), capture_output=True,
                          text=True, env=_env(), timeout=DEADLINE_S)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert " rows scored, 0 skipped" in done.stdout
    return output


@pytest.fixture(scope="module")
def reference(trained_model_dir: Path, big_input: Path) -> Path:
    return _uninterrupted(trained_model_dir, big_input)


@pytest.fixture(scope="module")
def mid_reference(trained_model_dir: Path, mid_input: Path) -> Path:
    """What every interrupted-and-resumed run must equal byte for byte."""
    return _uninterrupted(trained_model_dir, mid_input)


def test_30000_rows_in_order_equal_to_predict(
    reference: Path, predictor: Any, posts: list[str]
) -> None:
    rows = [json.loads(line) for line in reference.read_text().splitlines()]
    expected = predictor.predict(posts, top_k=2)  # the input repeats these posts in order
    ids = list(range(ROWS))
    assert_rows_match(rows, predicted_rows([expected[i % len(posts)] for i in ids], ids))


def _checkpoint_items(output: Path) -> int:
    try:
        return int(
            json.loads(output.with_name(output.name + ".checkpoint.json").read_text())["items"]
        )
    except (OSError, ValueError, KeyError):
        return 0


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_killed_then_resumed_is_byte_identical(
    signum: int, trained_model_dir: Path, mid_input: Path, mid_reference: Path, tmp_path: Path
) -> None:
    output = tmp_path / "out.jsonl"
    command = _command(trained_model_dir, mid_input, output, "--quiet")
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    target = random.Random(signum).randrange(250, KILLED_ROWS // 2)
    deadline = time.monotonic() + DEADLINE_S
    while _checkpoint_items(output) < target and proc.poll() is None:
        assert time.monotonic() < deadline, "no progress in the checkpoint"
        time.sleep(0.05)  # polling for a condition, not waiting for correctness
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode != 0 and proc.returncode is not None
    assert not output.exists()  # the final name appears only when complete
    if signum != signal.SIGKILL:
        assert proc.returncode == 130 and b"--resume" in stderr and b"Traceback" not in stderr
    resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True, env=_env(),
                             timeout=DEADLINE_S)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert output.read_bytes() == mid_reference.read_bytes()
    this_run = re.search(r"rows scored \(([\d,]+) this run\)", resumed.stdout)
    assert this_run is not None, resumed.stdout  # the checkpoint held >= `target` rows
    assert int(this_run[1].replace(",", "")) <= KILLED_ROWS - target
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def test_scoring_in_process_writes_the_workers_bytes(
    trained_model_dir: Path, mid_input: Path, mid_reference: Path, tmp_path: Path
) -> None:
    """--workers 0 (one BLAS thread, set by the command) and --workers 2 sum alike: a job may be
    resumed with either."""
    output = tmp_path / "out.jsonl"
    done = subprocess.run(
        _command(trained_model_dir, mid_input, output, "--quiet", "--workers", "0"),
        capture_output=True, text=True, env=_env(), timeout=DEADLINE_S,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert output.read_bytes() == mid_reference.read_bytes()


def test_a_bad_line_is_one_error_line_and_exit_1(trained_model_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "fine"}\n{"text": "fine"}\n{"text": oops}\n')
    done = subprocess.run(
        _command(trained_model_dir, source, tmp_path / "out.jsonl", "--quiet", "--workers", "1"),
        capture_output=True, text=True, env=_env(), timeout=DEADLINE_S,
    )  # fmt: skip
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"textclf: error: {source}, line 3: invalid JSON"
    )
