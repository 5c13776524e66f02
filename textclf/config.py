"""Frozen, typed configuration for every stage.

Flags and environment variables are read at the edges (CLI, service settings) into these objects;
library code takes them as explicit arguments. Each config round-trips through a plain dict so the
artifact can record exactly how a model was made.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from textclf.errors import ConfigError

TWENTY_NEWSGROUPS = "20newsgroups"
REMOVABLE_PARTS = ("headers", "footers", "quotes")
TUTORIAL_CATEGORIES = ("comp.graphics", "sci.space", "rec.sport.baseball")

Device = Literal["auto", "cpu", "cuda", "mps"]


@dataclass(frozen=True)
class DataConfig:
    """Where the texts come from and how they are split.

    `data=None` means 20 Newsgroups (bydate split); otherwise a CSV/TSV/JSONL file or a folder with
    one sub-folder per label.
    """

    data: Path | None = None
    test_data: Path | None = None
    text_column: str = "text"
    label_column: str = "label"
    categories: tuple[str, ...] | None = None
    remove: tuple[str, ...] = ()
    archive: Path | None = None
    test_size: float = 0.2
    val_size: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        bad = sorted(set(self.remove) - set(REMOVABLE_PARTS))
        if bad:
            raise ConfigError(f"cannot remove {bad}: choose from {list(REMOVABLE_PARTS)}")
        for name in ("test_size", "val_size"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ConfigError(f"{name} must be between 0 and 1 (exclusive), got {value}")


@dataclass(frozen=True)
class FeatureConfig:
    """TF-IDF settings; defaults chosen on the validation split (see BENCHMARKS.md).

    `subject_weight` adds a second, separate TF-IDF over a post's `Subject:` header line, scaled by
    that weight (0 turns it off). Mail and news threads outlive any date split, so the subject
    names the topic more reliably than the body's words; texts without the line get no extra
    features, so it is harmless for other data.
    """

    ngram_range: tuple[int, int] = (1, 1)
    min_df: int | float = 2
    max_df: float = 0.5
    max_features: int | None = None
    sublinear_tf: bool = True
    lowercase: bool = True
    stop_words: str | None = None
    subject_weight: float = 0.5
    subject_ngram_range: tuple[int, int] = (1, 2)
    # Word pairs seen in at least this many training texts feed a second naive Bayes term
    # (`textclf/bigrams.py`); validation weighs it and drops it where it does not pay (0 = none).
    bigram_min_df: int = 2

    def __post_init__(self) -> None:
        lo, hi = self.ngram_range
        if not 1 <= lo <= hi:
            raise ConfigError(f"ngram_range must satisfy 1 <= min <= max, got {self.ngram_range}")
        if self.subject_weight < 0:
            raise ConfigError(f"subject_weight must be >= 0, got {self.subject_weight}")
        if self.bigram_min_df < 0:
            raise ConfigError(f"bigram_min_df must be >= 0, got {self.bigram_min_df}")
        if self.stop_words not in (None, "english"):
            raise ConfigError(f"stop_words must be None or 'english', got {self.stop_words!r}")


@dataclass(frozen=True)
class ModelConfig:
    """Constructor arguments of the MLP; stored in the artifact so loading rebuilds it exactly."""

    n_features: int
    n_labels: int
    hidden: tuple[int, ...] = (128,)
    dropout: float = 0.5
    # n_labels more first-layer columns added straight to the logits (naive Bayes, see model.py).
    wide: bool = False
    # The last n_bigrams of the n_features input columns are word pairs, read only by a second
    # naive Bayes term (model.py); the first layer reads the others.
    n_bigrams: int = 0

    def __post_init__(self) -> None:
        if self.n_features < 1 or self.n_labels < 2:
            raise ConfigError("a model needs at least one feature and two labels")
        if not 0 <= self.n_bigrams < self.n_features:
            raise ConfigError(
                f"n_bigrams must be in [0, n_features), got {self.n_bigrams} of {self.n_features}"
            )
        if any(h < 1 for h in self.hidden) or not self.hidden:
            raise ConfigError(f"hidden sizes must be positive, got {self.hidden}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings. `hidden`/`dropout` live here too so one object describes a run.

    Defaults were chosen by validation accuracy alone, on 20 Newsgroups with headers kept and
    with headers/footers/quotes removed (the candidates and their scores are in BENCHMARKS.md);
    the test split played no part.
    """

    hidden: tuple[int, ...] = (128,)
    dropout: float = 0.7
    epochs: int = 20
    batch_size: int = 256
    lr: float = 3e-3
    first_layer_lr: float | None = None
    weight_decay: float = 0.3
    label_smoothing: float = 0.0
    patience: int = 4
    # Smoothing of the naive Bayes term added to the logits (weighted on validation); 0 = none.
    naive_bayes_alpha: float = 0.1
    # The bigram naive Bayes term (FeatureConfig.bigram_min_df) stays only if it lowers
    # validation log-loss by at least this fraction: it costs serving time and artifact size.
    bigram_min_gain: float = 0.01
    # Train once more on training + validation for the epoch count validation chose.
    refit: bool = True
    device: Device = "auto"
    seed: int = 0
    # torch intra-op threads. The model is narrow (128 wide) and its sparse ops gain little from
    # more threads, while OpenMP's spin-waiting makes 2 threads on a 2-core machine collapse when
    # anything else runs: fit took 98 s with 2 threads vs 22 s with 1 (one other busy process).
    # None leaves torch's own default.
    threads: int | None = 1

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 1:
            raise ConfigError("epochs, batch_size and patience must be at least 1")
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise ConfigError(f"hidden sizes must be positive, got {self.hidden}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.lr <= 0:
            raise ConfigError(f"lr must be positive, got {self.lr}")
        if not 0.0 <= self.bigram_min_gain < 1.0:
            raise ConfigError(f"bigram_min_gain must be in [0, 1), got {self.bigram_min_gain}")
        if self.naive_bayes_alpha < 0:
            raise ConfigError(f"naive_bayes_alpha must be >= 0, got {self.naive_bayes_alpha}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a trained model: what `textclf train` turns its flags into."""

    data: DataConfig = field(default_factory=DataConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    name: str = "textclf-model"


def to_dict(config: Any) -> dict[str, Any]:
    """JSON-ready dict of a config dataclass (paths as strings, tuples as lists)."""
    return _jsonable(dataclasses.asdict(config))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def feature_config_from_dict(raw: dict[str, Any]) -> FeatureConfig:
    """Inverse of `to_dict` for the vectorizer settings stored in an artifact."""
    raw = dict(raw)
    for key in ("ngram_range", "subject_ngram_range"):
        if key in raw:
            raw[key] = tuple(raw[key])
    return FeatureConfig(**raw)


def model_config_from_dict(raw: dict[str, Any]) -> ModelConfig:
    raw = dict(raw)
    raw["hidden"] = tuple(raw["hidden"])
    return ModelConfig(**raw)
