"""Frozen, typed configuration for every stage.

Flags and environment variables are read at the edges (CLI, service settings) into these objects;
library code takes them as explicit arguments. Each config round-trips through a plain dict so the
artifact can record exactly how a model was made.

DataConfig, FeatureConfig and TrainConfig are also the one description of the user's options:
each field's metadata (`doc`) holds its help text and, where the annotation cannot say it, its
closed set of values. `textclf train`'s flags and `TextClassifier`'s parameters are derived from
these fields, so an option is added here once and cannot drift between the CLI, the estimator and
the artifact.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from textclf.errors import ConfigError

TWENTY_NEWSGROUPS = "20newsgroups"
REMOVABLE_PARTS = ("headers", "footers", "quotes")
TUTORIAL_CATEGORIES = ("comp.graphics", "sci.space", "rec.sport.baseball")
ARCHIVE_ENV = "TEXTCLF_20NG_ARCHIVE"

Device = Literal["auto", "cpu", "cuda", "mps"]


def doc(
    help: str,
    *,
    none: str | None = None,
    choices: tuple[str, ...] | None = None,
    metavar: str | tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """Field metadata that makes a config field a user option: the CLI and the estimator read it.

    `none` is what None means, for an optional field a user may set back to None ("none" on the
    command line); `choices` is the closed set of values when the annotation cannot say it.
    """
    metadata: dict[str, Any] = {"help": help}
    for key, value in (("none", none), ("choices", choices), ("metavar", metavar)):
        if value is not None:
            metadata[key] = value
    return metadata


@dataclass(frozen=True)
class DataConfig:
    """Where the texts come from and how they are split.

    `data=None` means 20 Newsgroups (bydate split); otherwise a CSV/TSV/JSONL file or a folder with
    one sub-folder per label.
    """

    data: Path | None = field(
        default=None,
        metadata=doc(
            "your own labelled data: CSV, TSV, JSON Lines, or a folder of label sub-folders "
            "(default: 20 Newsgroups, bydate split)"
        ),
    )
    test_data: Path | None = field(
        default=None, metadata=doc("separate test file (default: a stratified hold-out of --data)")
    )
    text_column: str = field(default="text", metadata=doc("text column/field of --data"))
    label_column: str = field(default="label", metadata=doc("label column/field of --data"))
    categories: tuple[str, ...] | None = field(
        default=None,
        metadata=doc(
            "20 Newsgroups categories, comma-separated, e.g. sci.space,comp.graphics "
            "(default: all)",
            metavar="CATEGORY[,...]",
        ),
    )
    remove: tuple[str, ...] = field(
        default=(),
        metadata=doc(
            "strip parts of 20 Newsgroups posts", choices=REMOVABLE_PARTS, metavar="PART[,...]"
        ),
    )
    archive: Path | None = field(
        default=None,
        metadata=doc(
            f"local 20news-bydate.tar.gz or its extracted folder (default: env {ARCHIVE_ENV})"
        ),
    )
    test_size: float = field(
        default=0.2, metadata=doc("share of --data held out for testing when no --test-data")
    )
    val_size: float = field(
        default=0.1, metadata=doc("share of the training texts held out for validation")
    )
    seed: int = field(default=0, metadata=doc("seed of the train/validation/test splits"))

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

    ngram_range: tuple[int, int] = field(
        default=(1, 1), metadata=doc("shortest and longest word n-gram", metavar=("MIN", "MAX"))
    )
    min_df: int | float = field(
        default=2,
        metadata=doc("drop terms in fewer training texts (a count if >= 1, else a fraction)"),
    )
    max_df: float = field(
        default=0.5, metadata=doc("drop terms in a larger fraction of the training texts")
    )
    max_features: int | None = field(
        default=None,
        metadata=doc("keep only this many of the most frequent terms", none="all (so does 0)"),
    )
    sublinear_tf: bool = field(
        default=True, metadata=doc("1 + log(term count) instead of the raw count")
    )
    lowercase: bool = field(
        default=True, metadata=doc("lowercase texts before splitting them into words")
    )
    stop_words: str | None = field(
        default=None,
        metadata=doc("drop a list of common words", none="keep every word", choices=("english",)),
    )
    subject_weight: float = field(
        default=0.5, metadata=doc("weight of the separate TF-IDF of the Subject: line (0 = off)")
    )
    subject_ngram_range: tuple[int, int] = field(
        default=(1, 2),
        metadata=doc("shortest and longest n-gram of the Subject: line", metavar=("MIN", "MAX")),
    )
    # Word pairs seen in at least this many training texts feed a second naive Bayes term
    # (`textclf/bigrams.py`); validation weighs it and drops it where it does not pay (0 = none).
    bigram_min_df: int = field(
        default=2,
        metadata=doc(
            "word pairs in at least this many training texts feed a second naive Bayes term, kept "
            "only if it saves bigram-min-gain of the validation log-loss (0 = off)"
        ),
    )

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
        if self.max_features is not None and self.max_features < 0:
            raise ConfigError(f"max_features must be >= 0, got {self.max_features}")
        if self.max_features == 0:  # the CLI has always read 0 as "all"; TfidfVectorizer wants None
            object.__setattr__(self, "max_features", None)


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

    hidden: tuple[int, ...] = field(
        default=(128,), metadata=doc("hidden layer widths, comma-separated", metavar="WIDTH[,...]")
    )
    dropout: float = field(default=0.7, metadata=doc("dropout after each hidden layer"))
    epochs: int = field(
        default=20, metadata=doc("maximum epochs (early stopping usually ends sooner)")
    )
    batch_size: int = field(default=256, metadata=doc("texts per optimiser step"))
    lr: float = field(default=3e-3, metadata=doc("learning rate (AdamW)"))
    first_layer_lr: float | None = field(
        default=None, metadata=doc("learning rate of the sparse first layer", none="the same as lr")
    )
    weight_decay: float = field(
        default=0.3, metadata=doc("decoupled weight decay (AdamW; lazy on the first layer)")
    )
    label_smoothing: float = field(
        default=0.0, metadata=doc("label smoothing of the cross-entropy loss")
    )
    patience: int = field(
        default=4, metadata=doc("epochs without validation improvement before stopping")
    )
    naive_bayes_alpha: float = field(
        default=0.1,
        metadata=doc(
            "smoothing of the naive Bayes term added to the logits, weighted on validation "
            "(0 = no such term)"
        ),
    )
    # The bigram naive Bayes term (FeatureConfig.bigram_min_df) stays only if it lowers
    # validation log-loss by at least this fraction: it costs serving time and artifact size.
    bigram_min_gain: float = field(
        default=0.01,
        metadata=doc("share of the validation log-loss the word-pair term must save to be kept"),
    )
    refit: bool = field(
        default=True,
        metadata=doc(
            "retrain on training + validation for the epoch count validation chose (off: ship the "
            "model trained on the training split alone)"
        ),
    )
    device: Device = field(
        default="auto", metadata=doc("where to train (auto: CUDA, then MPS, else CPU)")
    )
    # One seed for everything random: `textclf train --seed` and the estimator's `random_state`
    # set this and DataConfig.seed alike.
    seed: int = field(default=0, metadata=doc("seed of the initial weights, shuffling and dropout"))
    # torch intra-op threads. The model is narrow (128 wide) and its sparse ops gain little from
    # more threads, while OpenMP's spin-waiting makes 2 threads on a 2-core machine collapse when
    # anything else runs: fit took 98 s with 2 threads vs 22 s with 1 (one other busy process).
    # None leaves torch's own default.
    threads: int | None = field(
        default=1,
        metadata=doc(
            "torch CPU threads (1: fastest for this narrow model and robust on a busy machine)",
            none="torch's default",
        ),
    )

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


def without_none(hint: Any) -> tuple[Any, bool]:
    """`X | None` -> (X, True); anything else -> (it, False). Both command lines build flags
    from annotations (these configs' and the service's `Settings`)."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else hint), True
    return hint, False
