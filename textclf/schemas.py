"""Wire types shared by the in-process predictor, the HTTP service and the client.

One set of classes means `textclf.load(dir).predict(...)` and `Client(...).predict(...)` return
equal objects, and the OpenAPI document describes exactly what the client parses. This module must
not import torch: `import textclf.client` stays light.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

MAX_EXPLAIN_TERMS = 100  # terms per explanation: PredictRequest.explain_terms's upper bound


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LabelScore(_Wire):
    label: str
    score: float = Field(ge=0.0, le=1.0, description="Probability of this label.")


class Term(_Wire):
    """One term of an explanation: a feature the model reads, its effect and where it occurs."""

    term: str = Field(
        description="A word, a word n-gram, a subject-line word or a word pair, as the model "
        "keys it (lowercased)."
    )
    weight: float = Field(
        description="log p(label | text) - log p(label | text without this term), for the "
        "predicted label: positive pushes toward it, negative away. Exact for this model: the "
        "term's features (body, subject line, word pair) are removed and each part's TF-IDF "
        "renormalised, as the vectorizer would weigh the text without them."
    )
    spans: list[tuple[int, int]] = Field(
        description="Every occurrence as [start, end) character offsets into the text as sent: "
        "`text[start:end]` is the occurrence, case as written; a multi-word term spans from its "
        "first word's start to its last word's end."
    )


class Prediction(_Wire):
    label: str = Field(description="The most likely label.")
    score: float = Field(ge=0.0, le=1.0, description="Probability of `label`.")
    top_k: list[LabelScore] = Field(description="The k most likely labels, best first.")
    # Left out of the JSON when absent, so answers without explanations stay as they were.
    explanation: list[Term] | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="Only when asked for (`explain`): the terms that decided `label`, strongest "
        "(largest |weight|) first.",
    )


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

    @field_validator("top_k", "explain_terms", mode="before")
    @classmethod
    def _integral_number(cls, value: object) -> object:
        # JSON Schema's "integer" includes 3.0 (a number with no fraction), so it is accepted
        # as 3; 3.5, "3" and true still fail the strict check.
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value

    explain: bool = Field(
        default=False,
        strict=True,
        description="Also return each prediction's `explanation`: its strongest terms, their "
        "exact effect on the predicted label's log-probability, and where they occur.",
    )
    explain_terms: int = Field(
        default=10,
        ge=1,
        le=MAX_EXPLAIN_TERMS,
        strict=True,
        description=f"How many terms per explanation, 1 to {MAX_EXPLAIN_TERMS} (fewer when the "
        "text has fewer); read only with `explain`.",
    )


# Some character other than ASCII white space (as `str.strip(BLANK)` leaves something).
NOT_BLANK = r"[^ \t\n\r\f\v]"
BLANK = " \t\n\r\f\v"


def limited_predict_request(*, max_texts: int, max_text_chars: int) -> type[PredictRequest]:
    """`PredictRequest` as a server with these limits accepts it: the same fields, with the
    limits in the model itself, so they are both what validation enforces and what the OpenAPI
    document states (`maxItems`, `maxLength`)."""
    # A text with nothing but white space has no features to read: its "prediction" would be
    # the model's prior, and it is a client's bug (an empty form field, a blank line) rather
    # than a question. `pattern` is a search in both pydantic and JSON Schema; ASCII white
    # space spelt out, as regex engines disagree on Unicode's.
    text = Annotated[str, Field(pattern=NOT_BLANK, max_length=max_text_chars)]
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
                f"{max_text_chars} characters and not only white space.",
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

