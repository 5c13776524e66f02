"""The child-process scorer: same answers as in-process, loud on broken artifacts, and it
recovers when its child dies or is replaced by a reload."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.app import create_app
from service.batcher import Batcher
from service.holder import ModelHolder
from service.process_scorer import ProcessScorer
from service.settings import Settings
from service.testing import LiveServer
from textclf.errors import ArtifactError
from textclf.predictor import Predictor

from .faults import broken_copy

KEY = "scorer-test-key"
TEXTS = [
    "The shuttle launch was delayed by weather",
    "The pitcher threw a no-hitter in the ninth inning",
    "a",  # no word of two letters: nothing for the model to read
    "naïve café 🚀 ロケット",
    'Subject: Re: orbit\n\nnul\x00byte and a \\ backslash "quoted"',
]


@pytest.fixture
def scored(trained_model_dir: Path) -> Iterator[LiveServer]:
    """A server of its own (these tests kill and replace its child), with reload enabled."""
    settings = Settings(model_path=trained_model_dir, api_key=KEY, scorer="process")
    with LiveServer(create_app(settings)) as live:
        yield live


def _child(server: LiveServer) -> ProcessScorer:
    scorer = server.app.state.model.scorer  # type: ignore[attr-defined]
    assert isinstance(scorer, ProcessScorer)
    return scorer


def _predict(server: LiveServer, texts: list[str], top_k: int = 1) -> httpx.Response:
    body = json.dumps({"texts": texts, "top_k": top_k})
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    return httpx.post(f"{server.url}/v1/predict", content=body, headers=headers, timeout=30)


def _alive(pid: int) -> bool:
    """Running (a zombie, dead but not yet reaped by its parent, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):  # reaped before or while reading its stat
        return False


def _wait_for(condition: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_answers_equal_the_in_process_predictor(scored: LiveServer, predictor: Predictor) -> None:
    response = _predict(scored, TEXTS, top_k=3)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == predictor.ref.model_dump()
    expected = predictor.predict(TEXTS, top_k=3)
    for got, want in zip(body["predictions"], expected, strict=True):
        assert got["label"] == want.label
        assert [t["label"] for t in got["top_k"]] == [t.label for t in want.top_k]
        assert got["score"] == pytest.approx(want.score, abs=1e-6)


def test_a_model_with_word_pairs_answers_as_in_process(pairs_model_dir: Path) -> None:
    """The word-pair term survives the trip: artifact -> child process -> HTTP."""
    import textclf

    expected = textclf.load(pairs_model_dir).predict(TEXTS, top_k=3)
    settings = Settings(model_path=pairs_model_dir, api_key=KEY, scorer="process")
    with LiveServer(create_app(settings)) as live:
        response = _predict(live, TEXTS, top_k=3)
    assert response.status_code == 200, response.text
    for got, want in zip(response.json()["predictions"], expected, strict=True):
        assert [t["label"] for t in got["top_k"]] == [t.label for t in want.top_k]
        assert got["score"] == pytest.approx(want.score, abs=1e-6)


def test_the_worker_process_does_not_import_torch() -> None:
    code = "import sys, service.app; print('torch' in sys.modules, 'sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("fault", ["truncated safetensors", "newer format version"])
def test_a_broken_artifact_raises_the_loaders_error(
    trained_model_dir: Path, tmp_path: Path, fault: str
) -> None:
    broken, _ = broken_copy(trained_model_dir, tmp_path, fault)
    with pytest.raises(ArtifactError) as in_process:
        import textclf

        textclf.load(broken)
    with pytest.raises(ArtifactError) as in_child:
        ProcessScorer(broken)
    assert str(in_child.value) == str(in_process.value)


def test_a_killed_child_fails_its_batch_with_503_then_a_new_one_serves(
    scored: LiveServer,
) -> None:
    first = _child(scored).pid
    assert first is not None and _predict(scored, TEXTS[:1]).status_code == 200
    os.kill(first, signal.SIGKILL)
    time.sleep(0.5)  # let it die (it stays a zombie until the server notices and reaps it)
    failed = _predict(scored, TEXTS[:1])
    assert failed.status_code == 503
    assert "retry" in failed.json()["error"]["message"]
    _wait_for(lambda: _predict(scored, TEXTS[:1]).status_code == 200)
    assert _child(scored).pid not in (None, first)


def test_the_child_ignores_ctrl_c_meant_for_the_server(scored: LiveServer) -> None:
    """Ctrl-C signals the whole process group; only the server decides when the child stops."""
    pid = _child(scored).pid
    assert pid is not None
    os.kill(pid, signal.SIGINT)
    time.sleep(0.5)
    assert _alive(pid)
    assert _predict(scored, TEXTS[:2]).status_code == 200


def test_reload_starts_a_new_child_and_stops_the_old_one(scored: LiveServer) -> None:
    old = _child(scored).pid
    assert old is not None
    response = httpx.post(
        f"{scored.url}/v1/admin/reload", headers={"Authorization": f"Bearer {KEY}"}, timeout=60
    )
    assert response.status_code == 200, response.text
    assert _child(scored).pid not in (None, old)
    _wait_for(lambda: not _alive(old), timeout=15)
    assert _predict(scored, TEXTS).status_code == 200


def test_stopping_the_server_stops_the_child(trained_model_dir: Path) -> None:
    settings = Settings(model_path=trained_model_dir, scorer="process")
    server = LiveServer(create_app(settings)).start()
    pid = _child(server).pid
    assert pid is not None and _alive(pid)
    server.stop()
    _wait_for(lambda: not _alive(pid), timeout=15)


@pytest.mark.anyio
async def test_small_requests_are_answered_while_the_child_scores_a_huge_one(
    trained_model_dir: Path,
) -> None:
    """The bulk lane has its own channel (and thread) in the child: small requests do not queue
    behind a huge one there either."""
    # Not ASCII, so the slower regex tokenizer runs: ~1.5 s of work in the child, far more than
    # ten small requests take.
    huge = {"texts": [f"orbité {i} " * 9_000 for i in range(256)], "top_k": 2}  # ~36 MB
    settings = Settings(model_path=trained_model_dir, max_body_bytes=48 << 20, scorer="process")
    with LiveServer(create_app(settings)) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=120) as http:
            in_flight = asyncio.ensure_future(http.post("/v1/predict", json=huge))
            await asyncio.sleep(0.3)  # on its way to the child
            small = [await http.post("/v1/predict", json={"texts": [TEXTS[0]]}) for _ in range(10)]
            huge_still_running = not in_flight.done()
            answer = await in_flight
    assert [r.status_code for r in small] == [200] * 10
    assert huge_still_running
    assert answer.status_code == 200
    assert len(answer.json()["predictions"]) == 256


@pytest.mark.anyio
async def test_both_lanes_first_calls_at_once_attach_each_channel_once(
    trained_model_dir: Path,
) -> None:
    """Regression: the channels were attached to the event loop lazily, by the first call, so
    two lanes' first calls in one loop turn both attached them ("FileExistsError: [Errno 17]",
    a dropped request on a freshly started server). Now `start` attaches them, once."""
    scorer = ProcessScorer(trained_model_dir, threads=None)
    batcher = Batcher(ModelHolder(scorer), bulk_chars=100)  # the long text takes the bulk lane
    go = asyncio.Event()

    async def first_call(text: str) -> list[str]:
        await go.wait()
        return (await batcher.predict([text], 1)).labels

    try:
        await asyncio.gather(scorer.start(), scorer.start())  # attaching twice is harmless
        calls = [asyncio.ensure_future(first_call(t)) for t in (TEXTS[0], TEXTS[1] * 10)]
        await asyncio.sleep(0)  # both are waiting on the event
        go.set()  # and are released in the same turn of the loop
        async with asyncio.timeout(60):  # the old code could also hang here
            labels = await asyncio.gather(*calls)
            await batcher.aclose()
    finally:
        scorer.close(wait=True)
    assert [len(got) for got in labels] == [1, 1]
