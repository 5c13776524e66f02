"""The Open Inference Protocol (V2) through NVIDIA's own client, `tritonclient.http`, used
unchanged, and through raw JSON in the specification's shape, against the session's real servers:
the same labels as `/v1/predict`, probabilities in the metadata's label order, the same limits,
API key and metrics, and `{"error": ...}` bodies with the right status."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from service.testing import LiveServer
from textclf.open_inference import column_labels

from .conftest import API_KEY, LIMITS

TEXTS = [
    "The shuttle launch was delayed by weather at the space center",
    "Rendering 3D graphics with OpenGL and image file formats",
    "The pitcher threw a no-hitter and the team won the series",
]


def _client(server: LiveServer) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(server.url.removeprefix("http://"))


def _model(http: httpx.Client) -> dict[str, str]:
    return http.get("/v1/model").json()


@pytest.mark.parametrize("binary", [True, False], ids=["binary input", "JSON input"])
def test_tritonclient_gets_v1s_labels_and_ordered_probabilities(
    server: LiveServer, http: httpx.Client, binary: bool
) -> None:
    info = _model(http)
    client = _client(server)
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(info["name"])
    assert client.is_model_ready(info["name"], model_version=info["version"])
    metadata = client.get_model_metadata(info["name"])
    assert metadata["versions"] == [info["version"]]
    assert metadata["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    probabilities = metadata["outputs"][1]
    assert probabilities["datatype"] == "FP32"
    assert probabilities["shape"] == [-1, len(info["labels"])]
    assert column_labels(probabilities["parameters"]) == info["labels"]

    text = triton.InferInput("text", [len(TEXTS)], "BYTES")
    text.set_data_from_numpy(np.array(TEXTS, dtype=object), binary_data=binary)
    outputs = [triton.InferRequestedOutput("label"), triton.InferRequestedOutput("probabilities")]
    result = client.infer(info["name"], [text], outputs=outputs, request_id="r-1")

    v1 = http.post("/v1/predict", json={"texts": TEXTS, "top_k": 99}).json()["predictions"]
    # JSON outputs: BYTES elements come back as str (binary ones would be bytes).
    labels = list(result.as_numpy("label"))
    assert labels == [p["label"] for p in v1]
    probs = result.as_numpy("probabilities")
    assert probs.shape == (len(TEXTS), len(info["labels"]))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    for row, prediction in zip(probs, v1, strict=True):
        expected = {s["label"]: s["score"] for s in prediction["top_k"]}
        np.testing.assert_allclose(row, [expected[x] for x in info["labels"]], rtol=1e-5)
    response = result.get_response()
    assert response["id"] == "r-1"
    assert response["model_version"] == info["version"]


def test_a_raw_request_in_the_specifications_shape(http: httpx.Client) -> None:
    info = _model(http)
    texts = [TEXTS[0], TEXTS[2]]
    body = {
        "id": "42",
        # Nested arrays are allowed too: the elements are read in row-major order.
        "inputs": [
            {"name": "text", "shape": [2], "datatype": "BYTES", "data": [[texts[0]], [texts[1]]]}
        ],
        "outputs": [{"name": "label"}],
    }
    url = f"/v2/models/{info['name']}/versions/{info['version']}/infer"

    answer = http.post(url, json=body)

    assert answer.status_code == 200, answer.text
    v1 = http.post("/v1/predict", json={"texts": texts}).json()["predictions"]
    assert answer.json() == {
        "model_name": info["name"],
        "model_version": info["version"],
        "id": "42",
        "outputs": [
            {"name": "label", "shape": [2], "datatype": "BYTES", "data": [p["label"] for p in v1]}
        ],
    }


def _infer_body(**tensor: object) -> dict[str, object]:
    text = {"name": "text", "shape": [1], "datatype": "BYTES", "data": ["x"], **tensor}
    return {"inputs": [text]}


@pytest.mark.parametrize(
    ("path", "body", "status", "needle"),
    [
        ("/v2/models/nope/infer", _infer_body(), 404, "no model named 'nope'"),
        ("/v2/models/nope", None, 404, "no model named"),
        ("/v2/models/{name}/versions/v0/infer", _infer_body(), 404, "no version 'v0'"),
        ("/v2/models/{name}/versions/v0/ready", None, 404, "no version 'v0'"),
        ("/v2/models/{name}/infer", _infer_body(name="texts"), 400, "got inputs 'texts'"),
        ("/v2/models/{name}/infer", _infer_body(datatype="FP32"), 400, "datatype BYTES"),
        ("/v2/models/{name}/infer", _infer_body(shape=[1, 1]), 400, "shape [n]"),
        ("/v2/models/{name}/infer", _infer_body(shape=[2]), 400, "shape [2] but 1 texts"),
        ("/v2/models/{name}/infer", _infer_body(data=[3]), 400, "must be strings"),
        (
            "/v2/models/{name}/infer",
            _infer_body(shape=[LIMITS["max_texts"] + 1], data=["x"] * (LIMITS["max_texts"] + 1)),
            400,
            f"at most {LIMITS['max_texts']} texts",
        ),
        (
            "/v2/models/{name}/infer",
            _infer_body(data=["x" * (LIMITS["max_text_chars"] + 1)]),
            400,
            f"the limit is {LIMITS['max_text_chars']}",
        ),
        ("/v2/models/{name}/infer", _infer_body(data=[" \n "]), 400, "text 0 is empty"),
        (
            "/v2/models/{name}/infer",
            {**_infer_body(), "outputs": [{"name": "logits"}]},
            400,
            "no output named 'logits'",
        ),
        ("/v2/models/{name}/infer", {"inputs": "text"}, 400, "inputs"),
        ("/v2/repository/index", None, 404, "no such endpoint"),
    ],
)
def test_errors_are_v2_shaped_with_the_right_status(
    http: httpx.Client, path: str, body: object, status: int, needle: str
) -> None:
    url = path.format(name=_model(http)["name"])
    response = http.get(url) if body is None else http.post(url, json=body)

    assert response.status_code == status, response.text
    assert list(response.json()) == ["error"]
    assert needle in response.json()["error"]


def test_tritonclient_raises_the_servers_message(server: LiveServer) -> None:
    with pytest.raises(InferenceServerException, match="no model named 'nope'") as caught:
        _client(server).get_model_metadata("nope")
    assert caught.value.status() == "404"


def test_a_form_post_and_an_oversized_body_are_refused(http: httpx.Client) -> None:
    url = f"/v2/models/{_model(http)['name']}/infer"
    form = http.post(url, content=json.dumps(_infer_body()), headers={"content-type": "text/plain"})
    huge = http.post(url, content=b"x" * (LIMITS["max_body_bytes"] + 1))

    assert form.status_code == 415 and "send JSON" in form.json()["error"]
    assert huge.status_code == 413 and "limit" in huge.json()["error"]


def test_the_api_key_guards_models_but_not_health(keyed_http: httpx.Client) -> None:
    assert keyed_http.get("/v2/health/live").json() == {"live": True}
    assert keyed_http.get("/v2/health/ready").json() == {"ready": True}
    name = keyed_http.get("/v2/models/x").json()
    missing = keyed_http.post("/v2/models/x/infer", json=_infer_body())
    keyed = {"Authorization": f"Bearer {API_KEY}"}
    model = keyed_http.get("/v1/model", headers=keyed).json()["name"]
    allowed = keyed_http.post(f"/v2/models/{model}/infer", json=_infer_body(), headers=keyed)

    assert missing.status_code == 401 and "API key" in missing.json()["error"]
    assert "API key" in name["error"]
    assert allowed.status_code == 200, allowed.text


def test_metrics_count_v2_requests_by_route(http: httpx.Client) -> None:
    name = _model(http)["name"]
    series = "textclf_http_requests_total{"
    wanted = ('route="/v2/models/{name}/infer"', 'method="POST"', 'status="200"')

    def count() -> float:
        for line in http.get("/metrics").text.splitlines():
            if line.startswith(series) and all(label in line for label in wanted):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = count()
    assert http.post(f"/v2/models/{name}/infer", json=_infer_body()).status_code == 200
    assert count() == before + 1


def test_v2_routes_are_in_the_openapi_document(http: httpx.Client) -> None:
    document = http.get("/openapi.json").json()
    infer = document["paths"]["/v2/models/{name}/infer"]["post"]

    assert infer["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/InferenceRequest"
    )
    assert "InferenceResponse" in json.dumps(infer["responses"]["200"])
    assert {"/v2/health/live", "/v2/health/ready", "/v2/models/{name}/versions/{version}"} <= set(
        document["paths"]
    )
