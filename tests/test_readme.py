"""The README's curl and Python examples run as written against a real server.

A newcomer copies these first; if they drift from the API, this fails. Only the address and the
model folder are substituted (a free port and the session's small 3-label model).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.app import create_app
from service.settings import Settings
from service.testing import LiveServer

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.DOTALL)


@pytest.fixture(scope="module")
def server(trained_model_dir: Path) -> Iterator[LiveServer]:
    with LiveServer(create_app(Settings(model_path=trained_model_dir))) as live:
        yield live


def test_curl_example_answers_with_sci_space_and_three_labels(server: LiveServer) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    block = next(b for b in _blocks("bash") if "curl" in b and "/v1/predict" in b)
    command = block.replace("\\\n", " ").strip().replace("localhost:8000", server.url)
    assert command.startswith("curl ")
    answer = json.loads(
        subprocess.run(
            command, shell=True, check=True, capture_output=True, text=True, timeout=30
        ).stdout
    )
    assert answer["predictions"][0]["label"] == "sci.space"
    assert len(answer["predictions"][0]["top_k"]) == 3


def test_python_client_example_runs(
    server: LiveServer, trained_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    block = next(b for b in _blocks("python") if "textclf.Client(" in b)
    code = block.replace("http://127.0.0.1:8000", server.url).replace(
        '"models/20ng"', repr(str(trained_model_dir))
    )
    exec(compile(code, str(README), "exec"), {})
    printed = capsys.readouterr().out
    assert printed.startswith("sci.space ")
    assert "label='sci.space'" in printed.splitlines()[1]  # the in-process half, same answer
