"""Wire types of the Open Inference Protocol (KServe "predict-api v2", REST), as textclf speaks it.

The service answers `/v2/...` with these, and any V2 client (NVIDIA's `tritonclient.http`, KServe's
own) parses them. textclf's model is one fixed signature: one input tensor `text` (`BYTES`, shape
`[n]`), two outputs, `label` (`BYTES`, `[n]`) and `probabilities` (`FP32`, `[n, n_labels]`), whose
columns follow the order named by its `labels` parameter (a JSON array in a string: the protocol's
parameter values are scalars). Requests ignore fields they do not know, as protocol extensions
expect; responses carry only what the specification defines. This module must not import torch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

PLATFORM = "textclf"  # the model metadata's `platform`: the framework that runs the model
INPUT = "text"
LABEL = "label"
PROBABILITIES = "probabilities"
OUTPUTS = (LABEL, PROBABILITIES)
LABELS_PARAMETER = "labels"  # on `probabilities`: its columns' labels, as a JSON array

Datatype = Literal[
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
    "FP16", "FP32", "FP64", "BF16", "BYTES",
]  # fmt: skip
Parameters = dict[str, bool | int | float | str]


class _Request(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class _Response(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RequestInput(_Request):
    name: str = Field(description=f"Always `{INPUT}`.")
    shape: list[int] = Field(description="`[n]` for n texts.")
    datatype: Datatype = Field(description="Always `BYTES` (UTF-8 text).")
    parameters: Parameters | None = None
    # Optional: with the binary tensor extension (`Inference-Header-Content-Length`) the texts
    # follow the JSON header instead, and `parameters.binary_data_size` says how many bytes.
    data: list[Any] | None = Field(
        default=None, description="The n texts, as a flat or nested array of strings."
    )


class RequestOutput(_Request):
    name: str = Field(description=f"`{LABEL}` or `{PROBABILITIES}`.")
    parameters: Parameters | None = None


class InferenceRequest(_Request):
    """`POST /v2/models/{name}/infer`: one `text` input; `outputs` (default: both) picks the
    outputs to return."""

    id: str | None = Field(default=None, description="Echoed in the response.")
    parameters: Parameters | None = None
    inputs: list[RequestInput] = Field(min_length=1, description=f"One input, `{INPUT}`.")
    outputs: list[RequestOutput] | None = None


class ResponseOutput(_Response):
    name: str
    shape: list[int]
    datatype: Datatype
    parameters: Parameters | None = None
    data: list[Any] = Field(description="The tensor's elements, flattened in row-major order.")


class InferenceResponse(_Response):
    model_name: str
    model_version: str = Field(description="The version (content hash) that answered.")
    id: str | None = None
    parameters: Parameters | None = None
    outputs: list[ResponseOutput]


class MetadataTensor(_Response):
    name: str
    datatype: Datatype
    shape: list[int] = Field(description="-1 for a dimension of any size.")
    parameters: Parameters | None = None


class ModelMetadata(_Response):
    name: str
    versions: list[str] = Field(description="The version served now: one at a time.")
    platform: str
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]


class ServerMetadata(_Response):
    name: str
    version: str
    extensions: list[str]


class ServerLive(_Response):
    live: bool


class ServerReady(_Response):
    ready: bool


class ModelReady(_Response):
    name: str
    ready: bool


class InferenceError(_Response):
    """Every `/v2` error, as the specification has it: one message saying what to fix."""

    error: str


def labels_parameter(labels: Sequence[str]) -> Parameters:
    """The `probabilities` tensor's parameters: its columns' labels, in order."""
    return {LABELS_PARAMETER: json.dumps(list(labels))}


def column_labels(parameters: Parameters | None) -> list[str]:
    """The labels of the `probabilities` columns, from its tensor's `parameters`."""
    value = (parameters or {}).get(LABELS_PARAMETER)
    if not isinstance(value, str):
        raise ValueError(f"no `{LABELS_PARAMETER}` parameter on the probabilities tensor")
    labels = json.loads(value)
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise ValueError(f"the `{LABELS_PARAMETER}` parameter is not a JSON array of strings")
    return labels


def model_metadata(name: str, version: str, labels: Sequence[str]) -> ModelMetadata:
    """textclf's one signature, for a model with these labels."""
    return ModelMetadata(
        name=name,
        versions=[version],
        platform=PLATFORM,
        inputs=[MetadataTensor(name=INPUT, datatype="BYTES", shape=[-1])],
        outputs=[
            MetadataTensor(name=LABEL, datatype="BYTES", shape=[-1]),
            MetadataTensor(
                name=PROBABILITIES,
                datatype="FP32",
                shape=[-1, len(labels)],
                parameters=labels_parameter(labels),
            ),
        ],
    )
