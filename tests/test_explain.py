"""Explanations: spans cut the right words, weights are the model's exact occlusion effect, and
the strongest terms are the ones that matter (deleting them moves the prediction most)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

import textclf
from textclf.analyzer import (
    WordAnalyzer,
    ascii_occurrences,
    english_stop_words,
    term_spans,
    word_spans,
)
from textclf.config import TUTORIAL_CATEGORIES
from textclf.explain import Explainer
from textclf.features import Encoded, to_torch
from textclf.newsgroups import load_bydate
from textclf.predictor import Predictor

SPACE = (
    "Subject: Shuttle launch schedule\n\nNASA delayed the shuttle launch to orbit; the space "
    "station crew waits for the rocket. The shuttle's payload is a satellite."
)
TRICKY = [
    "Don't STOP: café naïve ÉCOLE o'clock rock'n'roll",
    "İstanbul ΣΟΦΟΣ straße ﬁne x_y __init__ a b cd",
    "repeat Repeat REPEAT repeat, repeat!",
    "tabs\tand\nnewlines,,punct...end 3.14 2nd 🚀rocket日本語",
    "",
]


@pytest.mark.parametrize(
    "analyzer",
    [
        WordAnalyzer((1, 2)),
        WordAnalyzer((1, 3), stop_words=english_stop_words()),
        WordAnalyzer((1, 1), lowercase=False),
        WordAnalyzer((2, 2)),
    ],
)
def test_offsets_agree_with_the_tokenizer_on_tricky_text(analyzer: WordAnalyzer) -> None:
    for text in TRICKY:
        spans = term_spans(analyzer, text)
        assert [term for term, _, _ in spans] == analyzer(text)
        for word, start, end in word_spans(analyzer, text):
            written = text[start:end]
            # The occurrence as written: equal to the word up to case, except where lowercasing
            # lengthens a character ("İ" -> "i" + a combining dot, which is no word character).
            assert written.lower() == word if analyzer.lowercase else written == word
        assert [w for w, _, _ in word_spans(analyzer, text)] == analyzer.words(text)


@pytest.mark.parametrize(
    "analyzer",
    [
        WordAnalyzer((1, 2)),
        WordAnalyzer((1, 3), stop_words=english_stop_words()),
        WordAnalyzer((1, 1), lowercase=False),
        WordAnalyzer((2, 3), stop_words={"the", "of"}),
    ],
)
def test_the_ascii_finder_gives_the_tokenisers_spans(analyzer: WordAnalyzer) -> None:
    """`ascii_occurrences` (explanations' fast path) against the n-grams of the tokenised words,
    stop words between a term's words included."""
    texts = [t for t in TRICKY if t.isascii()] + [
        "The launch of the shuttle; the LAUNCH of THE shuttle, launch-shuttle launchshuttle",
        "a a b ab_ab ab ab, ab.ab _ab ab_ 12 x1 of the of",
    ]
    for text in texts:
        expected: dict[str, list[tuple[int, int]]] = {}
        for term, start, end in term_spans(analyzer, text):
            expected.setdefault(term, []).append((start, end))
        wanted = set(expected) | {"absent", "shuttle absent"}
        found = ascii_occurrences(analyzer, text, wanted)
        assert found == {term: sorted(spans) for term, spans in expected.items()}
    assert ascii_occurrences(analyzer, "café launch", {"launch"}) is None


def test_lengthened_lowercase_maps_back_to_the_characters_written() -> None:
    text = "İİ rocket"
    ((word, start, end),) = word_spans(WordAnalyzer(), text)
    assert (word, text[start:end]) == ("rocket", "rocket")


def _row_without(predictor: Predictor, text: str, term: str) -> tuple[Encoded, Encoded]:
    """The encoded text, and the same row without `term`'s features, each part renormalised:
    built here from the vectorizer's own vocabularies, not by the explainer."""
    features = predictor.artifact.vectorizer
    encoded = features.encode([text])
    body = len(features._fitted_body())
    words = features.n_word_features
    names: list[str] = list(features._fitted_body().terms)
    names += features.subject.terms if features.subject is not None else []
    if features.bigrams is not None and features.bigrams.vocabulary is not None:
        names += features.bigrams.vocabulary.terms
    keep = np.array([names[c] != term for c in encoded.indices])
    indices, data = encoded.indices[keep], encoded.data[keep].astype(np.float64)
    parts = (indices < body, (indices >= body) & (indices < words), indices >= words)
    norms = (1.0, features.config.subject_weight, 1.0)
    for part, norm in zip(parts, norms, strict=True):
        if part.any():
            data[part] *= norm / np.sqrt(np.square(data[part]).sum())
    edited = Encoded(np.array([0, len(indices)]), indices, data.astype(np.float32), words)
    edited = edited._replace(n_features=encoded.n_features)
    return encoded, edited


def _log_p(predictor: Predictor, row: Encoded, label: int) -> float:
    with torch.inference_mode():
        logits = predictor.artifact.model(to_torch(row))
    return float(torch.log_softmax(logits.double(), 1)[0, label])


def _check_exact(predictor: Predictor, text: str, n_terms: int = 10) -> textclf.Prediction:
    prediction = predictor.predict(text, explain=True, explain_terms=n_terms)
    label = predictor.labels.index(prediction.label)
    assert prediction.explanation
    for term in prediction.explanation:
        encoded, edited = _row_without(predictor, text, term.term)
        expected = _log_p(predictor, encoded, label) - _log_p(predictor, edited, label)
        assert term.weight == pytest.approx(expected, rel=1e-3, abs=1e-6), term.term
    return prediction


def test_a_space_posts_strongest_terms_are_space_words_and_spans_cut_them(
    predictor: Predictor,
) -> None:
    prediction = predictor.predict(SPACE, explain=True, explain_terms=5)
    assert prediction.label == "sci.space"
    assert prediction.explanation is not None
    strongest = [t.term for t in prediction.explanation[:3]]
    space_words = {"nasa", "shuttle", "launch", "orbit", "space", "station", "rocket", "satellite"}
    assert all(set(term.split()) & space_words for term in strongest), strongest
    weights = [abs(t.weight) for t in prediction.explanation]
    assert weights == sorted(weights, reverse=True)
    for term in prediction.explanation:
        assert term.spans
        for start, end in term.spans:
            written = SPACE[start:end]
            assert written.lower().split() == term.term.split() or term.term in written.lower()


def test_every_occurrence_is_a_span_case_as_written(predictor: Predictor) -> None:
    prediction = predictor.predict(SPACE, explain=True, explain_terms=100)
    assert prediction.explanation is not None
    shuttle = next(t for t in prediction.explanation if t.term == "shuttle")
    # In the subject line ("Shuttle"), and twice in the body (one of them "shuttle's").
    assert [SPACE[s:e] for s, e in shuttle.spans] == ["Shuttle", "shuttle", "shuttle"]


def test_weights_are_the_exact_log_probability_change(predictor: Predictor) -> None:
    _check_exact(predictor, SPACE)
    _check_exact(predictor, "The pitcher threw a no-hitter in the ninth inning, a great game")


def test_a_subject_only_word_is_a_term_pointing_into_the_subject_line(
    predictor: Predictor,
) -> None:
    text = "Subject: spacecraft telemetry\n\nThe launch went fine and the orbit is stable."
    prediction = _check_exact(predictor, text, n_terms=100)
    assert prediction.explanation is not None
    subject_end = text.index("\n")
    in_subject = [t for t in prediction.explanation if t.spans and t.spans[-1][1] <= subject_end]
    assert in_subject, "no term from the subject line"
    for term in in_subject:
        assert all(text[s:e].lower() == term.term for s, e in term.spans)


def test_word_pairs_are_terms_too(pairs_model_dir: Path) -> None:
    predictor = textclf.load(pairs_model_dir)
    assert predictor.artifact.model.n_bigrams, "the fixture model should keep its word pairs"
    text = "The space station and the space shuttle: a space station in low earth orbit"
    prediction = _check_exact(predictor, text, n_terms=100)
    assert prediction.explanation is not None
    pairs = [t for t in prediction.explanation if " " in t.term]
    assert pairs, "no word pair among the terms"
    station = next((t for t in pairs if t.term == "space station"), None)
    assert station is not None
    assert [text[s:e] for s, e in station.spans] == ["space station"] * 2


def test_explanations_are_off_by_default_and_bounded(predictor: Predictor) -> None:
    plain = predictor.predict(SPACE)
    assert plain.explanation is None and "explanation" not in plain.model_dump_json()
    explained = predictor.predict([SPACE, ""], explain=True, explain_terms=3)
    assert explained[0].explanation is not None and len(explained[0].explanation) == 3
    assert explained[1].explanation == []  # no known term: nothing to explain
    assert (explained[0].label, explained[0].score) == (plain.label, plain.score)
    with pytest.raises(ValueError, match="explain_terms"):
        predictor.predict(SPACE, explain=True, explain_terms=0)


def _delete(text: str, spans: list[tuple[int, int]]) -> str:
    chars = list(text)
    for start, end in spans:
        chars[start:end] = " " * (end - start)
    return "".join(chars)


def test_deleting_the_strongest_terms_lowers_the_label_more_than_random_ones(
    predictor: Predictor, archive: Path
) -> None:
    """The issue's faithfulness test, on test posts of the fixture model's categories."""
    (test,), _ = load_bydate(["test"], archive=archive, categories=TUTORIAL_CATEGORIES)
    rng = random.Random(0)
    texts = rng.sample(test.texts, 150)
    explainer = Explainer(predictor.artifact.vectorizer, predictor.artifact.model)
    probs = predictor.predict_proba(texts)
    labels = probs.argmax(1)
    wins = counted = 0
    for text, label, row, terms in zip(
        texts, labels, probs, explainer.explain(texts, labels.tolist(), 10_000), strict=True
    ):
        positive = [t for t in terms if t.weight > 0 and t.spans]
        spanned = [t for t in terms if t.spans]
        if len(positive) < 3 or len(spanned) < 3:
            continue
        strongest = [s for t in positive[:3] for s in t.spans]
        chosen = [s for t in rng.sample(spanned, 3) for s in t.spans]
        after = predictor.predict_proba([_delete(text, strongest), _delete(text, chosen)])
        drop_strongest, drop_random = row[label] - after[:, label]
        counted += 1
        wins += bool(drop_strongest > drop_random)
    assert counted >= 140
    assert wins / counted >= 0.9, f"{wins} of {counted}"


@pytest.mark.parametrize("model", ["predictor", "pairs"])
def test_the_ascii_span_finder_matches_the_tokeniser_on_every_present_term(
    model: str, predictor: Predictor, pairs_model_dir: Path, archive: Path
) -> None:
    """The fast path (ASCII texts) against the reference path, for every term a post has, on
    test posts with subject lines, with and without word pairs."""
    chosen = predictor if model == "predictor" else textclf.load(pairs_model_dir)
    explainer = Explainer(chosen.artifact.vectorizer, chosen.artifact.model)
    (test,), _ = load_bydate(["test"], archive=archive, categories=TUTORIAL_CATEGORIES)
    texts = [text for text in random.Random(1).sample(test.texts, 120) if text.isascii()]
    texts += [SPACE, "space space", "a", "", "Subject: orbit\n\norbit orbit-orbit"]
    rows = explainer.features.encode(texts)
    checked = 0
    for i, text in enumerate(texts):
        columns = rows.indices[rows.indptr[i] : rows.indptr[i + 1]]
        wanted = {explainer._terms[t] for t in explainer._term_of[columns].tolist()}
        expected = explainer._tokenised(text, wanted)
        assert explainer._spans(text, wanted) == expected
        checked += sum(map(len, expected.values()))
    assert checked > 10_000
