"""Hot reload, over HTTP and by SIGHUP: a new model folder at the served path replaces the model
atomically; requests in flight finish on the old model, later ones use the new one; a broken new
folder is refused with the loader's message while the old model keeps serving."""

from __future__ import annotations

import asyncio
import shutil
import signal
import threading
from pathlib import Path

import httpx
import pytest

import textclf
from service.app import create_app
from service.scoring import ThreadScorer
from service.settings import Settings
from service.testing import LiveServer
from tests.conftest import small_run_config
from tests.service.faults import GatedPredictor, ServeProcess, broken_copy, replace_folder
from textclf.predictor import Predictor
from textclf.schemas import ErrorResponse, ModelRef, PredictResponse, ReloadResponse

KEY = "reload-key-3a9e"
AUTH = {"Authorization": f"Bearer {KEY}"}
TEXTS = {"texts": ["the rocket reached orbit", "a home run in the ninth"]}


@pytest.fixture(scope="module")
def second_model_dir(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another small model: fewer epochs and another seed, so its version differs."""
    from textclf.pipeline import train_artifact

    out = tmp_path_factory.mktemp("models") / "second"
    train_artifact(small_run_config(archive, epochs=2, seed=7), out, progress=False)
    return out


@pytest.fixture
def served(trained_model_dir: Path, tmp_path: Path) -> Path:
    """The folder the server is started with: a copy of the session's model, free to replace."""
    return Path(shutil.copytree(trained_model_dir, tmp_path / "served"))


def _ref(folder: Path) -> ModelRef:
    return textclf.load(folder).ref


def _keyed(model_path: Path) -> Settings:
    return Settings(model_path=model_path, api_key=KEY, torch_threads=None)


# --- over HTTP, in process ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_reload_swaps_the_model_while_requests_in_flight_finish_on_the_old_one(
    served: Path, second_model_dir: Path
) -> None:
    old, new = _ref(served), _ref(second_model_dir)
    assert old.version != new.version
    gated = GatedPredictor(textclf.load(served))
    with LiveServer(create_app(_keyed(served), scorer=ThreadScorer(gated))) as server:  # type: ignore[arg-type]
        async with httpx.AsyncClient(base_url=server.url, headers=AUTH, timeout=60) as http:
            in_flight = asyncio.ensure_future(http.post("/v1/predict", json=TEXTS))
            await asyncio.to_thread(gated.entered.wait, 60)  # its batch is running, held
            replace_folder(served, second_model_dir)
            reload = await http.post("/v1/admin/reload")
            reloaded_while_in_flight = not in_flight.done()
            queued = asyncio.ensure_future(http.post("/v1/predict", json=TEXTS))
            gated.gate.set()
            first, second = await in_flight, await queued
            info = (await http.get("/v1/model")).json()
            metrics = (await http.get("/metrics")).text

    assert reload.status_code == 200, reload.text
    assert ReloadResponse.model_validate_json(reload.content) == ReloadResponse(
        previous=old, current=new
    )
    assert reloaded_while_in_flight, "the reload waited for the request in flight"
    assert (first.status_code, second.status_code) == (200, 200)
    assert PredictResponse.model_validate_json(first.content).model == old
    assert PredictResponse.model_validate_json(second.content).model == new
    assert info["version"] == new.version
    assert f'version="{new.version}"' in metrics
    assert f'version="{old.version}"' not in metrics


@pytest.mark.parametrize(
    "breakage",
    ["truncated safetensors", "edited JSON", "newer format version", "path escaping the folder"],
)
def test_a_broken_new_model_is_refused_and_the_old_one_keeps_serving(
    served: Path, predictor: Predictor, tmp_path: Path, breakage: str
) -> None:
    broken, needles = broken_copy(served, tmp_path, breakage)
    with LiveServer(create_app(_keyed(served), scorer=ThreadScorer(predictor))) as server:
        replace_folder(served, broken)
        with httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as http:
            reload = http.post("/v1/admin/reload")
            after = http.post("/v1/predict", json=TEXTS)
            metrics = http.get("/metrics").text

    assert reload.status_code == 409
    error = ErrorResponse.model_validate_json(reload.content).error
    assert error.type == "reload_failed"
    assert "the old one keeps serving" in error.message
    assert predictor.ref.version in error.message
    for needle in needles:
        assert needle in error.message
    assert str(tmp_path) not in reload.text, "the error body names no server path"
    assert after.status_code == 200
    assert PredictResponse.model_validate_json(after.content).model == predictor.ref
    assert f'version="{predictor.ref.version}"' in metrics


def test_a_missing_folder_is_refused_and_the_old_one_keeps_serving(
    tmp_path: Path, predictor: Predictor
) -> None:
    with LiveServer(
        create_app(_keyed(tmp_path / "gone"), scorer=ThreadScorer(predictor))
    ) as server:
        reload = httpx.post(f"{server.url}/v1/admin/reload", headers=AUTH)
        after = httpx.post(f"{server.url}/v1/predict", json=TEXTS, headers=AUTH)

    assert reload.status_code == 409
    assert "no such model folder" in reload.json()["error"]["message"]
    assert str(tmp_path) not in reload.text
    assert PredictResponse.model_validate_json(after.content).model == predictor.ref


def test_reload_is_off_without_an_api_key(http: httpx.Client) -> None:
    response = http.post("/v1/admin/reload")

    assert response.status_code == 403
    error = ErrorResponse.model_validate_json(response.content).error
    assert error.type == "forbidden"
    assert "set TEXTCLF_API_KEY" in error.message


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}], ids=["none", "wrong"])
def test_reload_needs_the_key(keyed_http: httpx.Client, headers: dict[str, str]) -> None:
    response = keyed_http.post("/v1/admin/reload", headers=headers)

    assert response.status_code == 401
    assert response.json()["error"]["type"] == "unauthorized"


# --- a real `textclf serve` process: HTTP and SIGHUP --------------------------------------------


def _version(server: ServeProcess) -> str:
    return str(httpx.get(f"{server.url}/v1/model", headers=AUTH, timeout=30).json()["version"])


def test_serve_reloads_over_http_and_on_sighup(
    served: Path, second_model_dir: Path, trained_model_dir: Path, tmp_path: Path
) -> None:
    first, second = _ref(trained_model_dir), _ref(second_model_dir)
    broken, _ = broken_copy(trained_model_dir, tmp_path, "truncated safetensors")
    with ServeProcess(served, env={"TEXTCLF_API_KEY": KEY}) as server:
        assert _version(server) == first.version

        replace_folder(served, second_model_dir)
        reload = httpx.post(f"{server.url}/v1/admin/reload", headers=AUTH, timeout=60)
        assert reload.status_code == 200, reload.text
        assert reload.json() == {"previous": first.model_dump(), "current": second.model_dump()}
        assert _version(server) == second.version

        # SIGHUP with a broken folder: refused, logged, the model stays.
        replace_folder(served, broken)
        mark = len(server.lines)
        server.send(signal.SIGHUP)
        refused = server.wait_for_line("reload refused", after=mark)
        assert "model.safetensors" in refused and "truncated" in refused
        assert _version(server) == second.version

        # SIGHUP with a good folder, while requests are in flight: none fails.
        replace_folder(served, trained_model_dir)
        mark = len(server.lines)
        with httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as http:
            pending: list[httpx.Response] = []

            def send() -> None:
                pending.append(http.post("/v1/predict", json=TEXTS))

            senders = [threading.Thread(target=send) for _ in range(16)]
            for i, sender in enumerate(senders):
                sender.start()
                if i == 8:
                    server.send(signal.SIGHUP)
            for sender in senders:
                sender.join()
        server.wait_for_line("reloaded:", after=mark)
        assert _version(server) == first.version

        server.send(signal.SIGTERM)
        assert server.wait() == 0

    assert [r.status_code for r in pending] == [200] * len(senders)
    assert {PredictResponse.model_validate_json(r.content).model for r in pending} <= {
        first,
        second,
    }
