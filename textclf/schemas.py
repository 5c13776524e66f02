"""Wire types shared by the in-process predictor, the HTTP service and the client.

One set of classes means `textclf.load(dir).predict(...)` and `Client(...).predict(...)` return
equal objects, and the OpenAPI document describes exactly what the client parses. This module must
not import torch: `import textclf.client` stays light.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LabelScore(_Wire):
    label: str
    score: float = Field(ge=0.0, le=1.0, description="Probability of this label.")


class Prediction(_Wire):
    label: str = Field(description="The most likely label.")
    score: float = Field(ge=0.0, le=1.0, description="Probability of `label`.")
    top_k: list[LabelScore] = Field(description="The k most likely labels, best first.")


class ModelRef(_Wire):
    name: str
    version: str = Field(
        description="Content hash of the artifact: changes whenever the model does."
    )


class PredictRequest(_Wire):
    texts: list[str] = Field(min_length=1, description="Texts to classify, at least one.")
    # strict: `true` or "3" is a client bug to report, not a 1 or a 3 to guess.
    top_k: int = Field(
        default=1,
        ge=1,
        strict=True,
        description="How many labels to return per text, best first; above the model's number "
        "of labels, all of them.",
    )

    @field_validator("top_k", mode="before")
    @classmethod
    def _integral_number(cls, value: object) -> object:
        # JSON Schema's "integer" includes 3.0 (a number with no fraction), so it is accepted
        # as 3; 3.5, "3" and true still fail the strict check.
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value


def limited_predict_request(*, max_texts: int, max_text_chars: int) -> type[PredictRequest]:
    """`PredictRequest` as a server with these limits accepts it: the same fields, with the
    limits in the model itself, so they are both what validation enforces and what the OpenAPI
    document states (`maxItems`, `maxLength`)."""
    text = Annotated[str, Field(max_length=max_text_chars)]
    model: type[PredictRequest] = create_model(
        PredictRequest.__name__,  # the same component name, whatever the limits
        __base__=PredictRequest,
        __doc__=f"At most {max_texts} texts of at most {max_text_chars} characters each.",
        texts=(
            list[text],
            Field(
                min_length=1,
                max_length=max_texts,
                description=f"Texts to classify: 1 to {max_texts}, each at most "
                f"{max_text_chars} characters.",
            ),
        ),
    )
    return model


class PredictResponse(_Wire):
    model: ModelRef
    predictions: list[Prediction] = Field(description="One per input text, in request order.")


class ReloadResponse(_Wire):
    previous: ModelRef = Field(description="The model served before the reload.")
    current: ModelRef = Field(description="The model served from now on.")


class ModelInfo(_Wire):
    name: str
    version: str
    format_version: int
    labels: list[str]
    created_at: datetime
    metrics: dict[str, Any] = Field(description="Validation and test metrics recorded at training.")
    training_config: dict[str, Any]
    data: dict[str, Any] = Field(default_factory=dict, description="What the model was trained on.")


class Health(_Wire):
    status: str


class ErrorDetail(_Wire):
    type: str = Field(description="Machine-readable error kind, e.g. `validation_error`.")
    message: str = Field(description="What went wrong and how to fix it.")
    errors: list[dict[str, Any]] = Field(default_factory=list, description="Per-field problems.")


class ErrorResponse(_Wire):
    error: ErrorDetail

