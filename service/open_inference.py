"""The Open Inference Protocol (KServe "predict-api v2", REST) beside `/v1`: the same model, the
same batcher, limits, API key and metrics, in the protocol's shapes (`textclf.open_inference`).

`{name}` is the artifact's name and `{version}` its version (content hash); a server holds one
model at a time, so any other name or version is a 404. Inference asks the batcher for every
label's score (`top_k` = number of labels) and lays them out in the metadata's label order, so a
V2 request is batched with `/v1` requests. Inputs come as JSON, or with the binary tensor data
extension (`Inference-Header-Content-Length`, tritonclient's default for inputs); outputs are
always JSON, which V2 clients read whether or not they asked for binary outputs. Errors are
`{"error": "..."}` (`service.errors` picks the shape by path); an API key, when set, guards
`/v2/models/...`, while `/v2`, `/v2/health/live` and `/v2/health/ready` stay open, as `/healthz`
and `/readyz` do (`service.auth`).
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import Iterator
from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from pydantic import ValidationError

import textclf
from service.batcher import Result
from service.deps import BatcherDep, ModelDep, SettingsDep, _read_body
from service.errors import (
    BadRequest,
    NotFound,
    NotReady,
    RequestTimeout,
    UnsupportedMediaType,
    summarize,
    validation_problems,
)
from service.holder import ModelHolder
from service.routes import readyz
from service.scoring import Scorer
from service.settings import Settings
from textclf.open_inference import (
    INPUT,
    LABEL,
    OUTPUTS,
    PROBABILITIES,
    InferenceError,
    InferenceRequest,
    InferenceResponse,
    ModelMetadata,
    ModelReady,
    RequestInput,
    ResponseOutput,
    ServerLive,
    ServerMetadata,
    ServerReady,
    labels_parameter,
    model_metadata,
)
from textclf.schemas import BLANK

_JSON = "application/json"
_HEADER_LENGTH = "inference-header-content-length"
# The content types a browser may send cross-site without asking (CORS "simple" requests).
_FORM_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"}
_SIGNATURE = f"one input, `{INPUT}` (datatype BYTES, shape [n]: n texts)"
_TAGS: list[str | Enum] = ["open inference protocol (v2)"]

router = APIRouter()

# Names and versions are one path segment of at most this many characters; a longer one is a
# 400 (as every invalid /v2 request), so the document states a limit the server enforces.
MAX_SEGMENT = 256
Name = Annotated[str, Path(max_length=MAX_SEGMENT, description="The artifact's name.")]
Version = Annotated[
    str, Path(max_length=MAX_SEGMENT, description="The artifact's version (content hash).")
]


def _errors(descriptions: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": InferenceError, "description": d} for code, d in descriptions.items()}


_MODEL_ERRORS = {
    400: f"A name or version longer than {MAX_SEGMENT} characters.",
    401: "Missing or wrong API key (only when the server has one).",
    404: "No model of that name (the artifact's) or version (its content hash) here.",
    503: "Model not loaded yet or shutting down; retry.",
}
_INFER_ERRORS = _errors(
    {
        400: "Invalid request: the message says what to fix (input name, datatype, shape, data, "
        f"outputs, the texts limits, a name or version over {MAX_SEGMENT} characters).",
        408: "The request body arrived too slowly.",
        413: "Request body too large.",
        415: "A form content type (send JSON).",
        **_MODEL_ERRORS,
    }
)


@router.get("/v2", tags=_TAGS, response_model=ServerMetadata, summary="Server metadata")
async def server_metadata() -> ServerMetadata:
    # Triton's name for the extension `_binary_texts` reads.
    extensions = ["binary_tensor_data"]
    return ServerMetadata(name="textclf", version=textclf.__version__, extensions=extensions)


@router.get("/v2/health/live", tags=_TAGS, response_model=ServerLive, summary="Server live")
async def server_live() -> ServerLive:
    """The process is up (as `/healthz`)."""
    return ServerLive(live=True)


@router.get(
    "/v2/health/ready",
    tags=_TAGS,
    response_model=ServerReady,
    responses=_errors({503: "Not ready."}),
    summary="Server ready",
)
async def server_ready(batcher: BatcherDep, settings: SettingsDep) -> ServerReady:
    """The model answers a probe prediction (as `/readyz`)."""
    await readyz(batcher, settings)
    return ServerReady(ready=True)


def _served(holder: ModelHolder, name: str, version: str | None) -> Scorer:
    """The scorer serving `name` (and `version`, when given), or a 404 naming what is served."""
    scorer = holder.scorer
    ref = scorer.ref
    if name != ref.name:
        raise NotFound(f"no model named {name!r}; this server serves {ref.name!r}")
    if version is not None and version != ref.version:
        raise NotFound(
            f"model {name!r} has no version {version!r} here; it serves version {ref.version!r}"
        )
    return scorer


def _metadata(scorer: Scorer) -> ModelMetadata:
    return model_metadata(scorer.ref.name, scorer.ref.version, scorer.labels)


async def _ready(scorer: Scorer, batcher: BatcherDep, settings: SettingsDep) -> ModelReady:
    await readyz(batcher, settings)
    return ModelReady(name=scorer.ref.name, ready=True)


_METADATA = {
    "tags": _TAGS,
    "response_model": ModelMetadata,
    "response_model_exclude_none": True,  # the specification's tensors have no null fields
    "responses": _errors(_MODEL_ERRORS),
    "summary": "Model metadata",
}
_READY = {
    "tags": _TAGS,
    "response_model": ModelReady,
    "responses": _errors(_MODEL_ERRORS),
    "summary": "Model ready",
}


@router.get("/v2/models/{name}", **_METADATA)  # type: ignore[arg-type]
async def model_metadata_(name: Name, model: ModelDep) -> ModelMetadata:
    """The model's input and outputs; `probabilities`' `labels` parameter names its columns."""
    return _metadata(_served(model, name, None))


@router.get("/v2/models/{name}/versions/{version}", **_METADATA)  # type: ignore[arg-type]
async def model_version_metadata(name: Name, version: Version, model: ModelDep) -> ModelMetadata:
    return _metadata(_served(model, name, version))


@router.get("/v2/models/{name}/ready", **_READY)  # type: ignore[arg-type]
async def model_ready(
    name: Name, model: ModelDep, batcher: BatcherDep, settings: SettingsDep
) -> ModelReady:
    return await _ready(_served(model, name, None), batcher, settings)


@router.get("/v2/models/{name}/versions/{version}/ready", **_READY)  # type: ignore[arg-type]
async def model_version_ready(
    name: Name, version: Version, model: ModelDep, batcher: BatcherDep, settings: SettingsDep
) -> ModelReady:
    return await _ready(_served(model, name, version), batcher, settings)


_INFER: dict[str, Any] = {
    "methods": ["POST"],
    "tags": _TAGS,
    "response_model": InferenceResponse,
    "responses": _INFER_ERRORS,
    "summary": "Infer",
    "openapi_extra": {
        "requestBody": {
            "required": True,
            "content": {
                _JSON: {"schema": {"$ref": f"#/components/schemas/{InferenceRequest.__name__}"}}
            },
        }
    },
}


async def infer(name: Name, request: Request, model: ModelDep) -> Response:
    """Each text's label and every label's probability (columns in the metadata's order)."""
    return await _infer(request, model, _served(model, name, None))


async def infer_version(
    name: Name, version: Version, request: Request, model: ModelDep
) -> Response:
    return await _infer(request, model, _served(model, name, version))


router.add_api_route("/v2/models/{name}/infer", infer, **_INFER)
router.add_api_route("/v2/models/{name}/versions/{version}/infer", infer_version, **_INFER)


async def _infer(request: Request, holder: ModelHolder, served: Scorer) -> Response:
    state = request.app.state
    settings: Settings = state.settings
    question, binary = _parse(await _body(request, settings), request.headers.get(_HEADER_LENGTH))
    tensor = _checked_input(question)
    texts = _texts(tensor, binary, settings)
    wanted = _wanted_outputs(question)
    batcher = getattr(state, "batcher", None)
    if batcher is None:
        raise NotReady("the model is not loaded yet; retry shortly")
    result: Result = await batcher.predict(texts, len(served.labels))
    state.metrics.observe_labels(result.labels)
    outputs = []
    if LABEL in wanted:
        outputs.append(
            ResponseOutput(name=LABEL, shape=[len(texts)], datatype="BYTES", data=result.labels)
        )
    if PROBABILITIES in wanted:
        labels = _labels_of(result, holder, served)
        outputs.append(
            ResponseOutput(
                name=PROBABILITIES,
                shape=[len(texts), len(labels)],
                datatype="FP32",
                parameters=labels_parameter(labels),
                data=_probabilities(result.predictions_json, labels),
            )
        )
    answer = InferenceResponse(
        model_name=result.model.name,
        model_version=result.model.version,
        id=question.id,
        outputs=outputs,
    )
    return Response(answer.model_dump_json(exclude_none=True), media_type=_JSON)


async def _body(request: Request, settings: Settings) -> bytes:
    """The body, within `/v1`'s size and time limits; form content types are refused, so that
    no web page can make a visitor's browser post to this API."""
    content_type = request.headers.get("content-type") or ""
    if content_type.partition(";")[0].strip().lower() in _FORM_TYPES:
        raise UnsupportedMediaType(
            f"Content-Type {content_type} is not accepted; send JSON (application/json)"
        )
    try:
        async with asyncio.timeout(settings.body_timeout_s):
            return await _read_body(request, settings.max_body_bytes)
    except TimeoutError:
        raise RequestTimeout(
            f"the request body did not arrive within {settings.body_timeout_s:g}s; "
            "send it at once, or send less"
        ) from None


def _parse(body: bytes, header_length: str | None) -> tuple[InferenceRequest, bytes]:
    """The JSON request, and the binary data after it (binary tensor data extension)."""
    split = len(body)
    if header_length is not None:
        if not header_length.isdigit() or int(header_length) > len(body):
            raise BadRequest(
                f"Inference-Header-Content-Length is {header_length!r}: it must be the JSON "
                f"header's size in bytes, at most the body's ({len(body)})"
            )
        split = int(header_length)
    try:
        question = InferenceRequest.model_validate_json(body[:split])
    except ValidationError as exc:
        problems = validation_problems(exc.errors(include_url=False))
        raise BadRequest(
            f"{summarize(problems)}; send {{\"inputs\": [{{\"name\": \"{INPUT}\", \"shape\": "
            '[1], "datatype": "BYTES", "data": ["some text"]}]}'
        ) from None
    return question, body[split:]


def _checked_input(question: InferenceRequest) -> RequestInput:
    inputs = question.inputs
    if len(inputs) != 1 or inputs[0].name != INPUT:
        names = ", ".join(repr(tensor.name) for tensor in inputs)
        raise BadRequest(f"the model takes {_SIGNATURE}; got inputs {names}")
    tensor = inputs[0]
    if tensor.datatype != "BYTES":
        raise BadRequest(f"input {INPUT!r} must have datatype BYTES, got {tensor.datatype}")
    if len(tensor.shape) != 1 or tensor.shape[0] < 1:
        raise BadRequest(f"input {INPUT!r} must have shape [n] with n >= 1, got {tensor.shape}")
    return tensor


def _texts(tensor: RequestInput, binary: bytes, settings: Settings) -> list[str]:
    """The input's texts, checked against the shape and `/v1`'s limits."""
    (n,) = tensor.shape
    if n > settings.max_texts:
        raise BadRequest(
            f"at most {settings.max_texts} texts per request, got {n}; "
            "split them over several requests"
        )
    if tensor.data is not None and binary:
        raise BadRequest(f"input {INPUT!r} has `data`, and binary data follows the JSON header")
    texts = _binary_texts(tensor, binary) if tensor.data is None else _json_texts(tensor.data)
    if len(texts) != n:
        raise BadRequest(f"input {INPUT!r} has shape [{n}] but {len(texts)} texts")
    for i, text in enumerate(texts):
        if not text.strip(BLANK):
            raise BadRequest(
                f"text {i} is empty or only white space; send some words (or leave it out)"
            )
        if len(text) > settings.max_text_chars:
            raise BadRequest(
                f"text {i} is {len(text)} characters long, the limit is "
                f"{settings.max_text_chars}; shorten it"
            )
    return texts


def _json_texts(data: list[Any]) -> list[str]:
    texts = list(_flattened(data))
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise BadRequest(
                f"input {INPUT!r} is BYTES: its data must be strings, element {i} is {text!r}"
            )
    return texts


def _flattened(data: list[Any]) -> Iterator[Any]:
    """Row-major elements of a nested array (the protocol allows both forms)."""
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            yield item
        else:
            stack.pop()


def _binary_texts(tensor: RequestInput, binary: bytes) -> list[str]:
    """BYTES elements as the binary extension sends them: each a 4-byte little-endian length,
    then that many bytes (UTF-8 here)."""
    size = (tensor.parameters or {}).get("binary_data_size")
    if not isinstance(size, int) or isinstance(size, bool) or size != len(binary):
        raise BadRequest(
            f"input {INPUT!r} has no data: send `data`, or its bytes after the JSON header "
            f"with `binary_data_size` ({len(binary)} bytes follow the header)"
        )
    texts: list[str] = []
    offset = 0
    while offset < len(binary):
        if offset + 4 > len(binary):
            raise BadRequest(f"input {INPUT!r}'s binary data ends inside an element's length")
        (length,) = struct.unpack_from("<I", binary, offset)
        start, offset = offset + 4, offset + 4 + length
        if offset > len(binary):
            raise BadRequest(f"input {INPUT!r}'s binary data ends inside element {len(texts)}")
        try:
            texts.append(binary[start:offset].decode("utf-8"))
        except UnicodeDecodeError:
            raise BadRequest(f"text {len(texts)} is not valid UTF-8") from None
    return texts


def _wanted_outputs(question: InferenceRequest) -> set[str]:
    if question.outputs is None:
        return set(OUTPUTS)
    wanted = {output.name for output in question.outputs}
    unknown = sorted(wanted - set(OUTPUTS))
    if unknown:
        raise BadRequest(
            f"no output named {', '.join(map(repr, unknown))}; the model has "
            f"{LABEL!r} and {PROBABILITIES!r}"
        )
    return wanted


def _labels_of(result: Result, holder: ModelHolder, served: Scorer) -> tuple[str, ...]:
    """The label order of the model that answered (a reload may have swapped it meanwhile)."""
    for scorer in (served, holder.scorer):
        if scorer.ref == result.model:
            return scorer.labels
    # Swapped twice while this request ran: every label is in each row; name them in order.
    return tuple(sorted(item["label"] for item in json.loads(result.predictions_json)[0]["top_k"]))


def _probabilities(predictions_json: bytes, labels: tuple[str, ...]) -> list[float]:
    """Every label's score per text, row-major, columns in `labels` order (the batcher gives
    each text all labels' scores, best first)."""
    column = {label: i for i, label in enumerate(labels)}
    flat: list[float] = []
    for prediction in json.loads(predictions_json):
        row = [0.0] * len(labels)
        for item in prediction["top_k"]:
            row[column[item["label"]]] = item["score"]
        flat.extend(row)
    return flat
