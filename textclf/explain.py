"""Exact per-term explanations: how much each term of a text moved its predicted label.

A term's weight is its occlusion effect on the model itself, not a sampled surrogate (as LIME's):

    weight(term) = log p(label | text) - log p(label | text without the term)

for the predicted label, where "without the term" removes every feature the model keys by that
string (its body column, its subject-line column, its word-pair column) and renormalises each
part's TF-IDF over what is left, as the vectorizer would weigh a text that lacks those features.
Positive pushes toward the label, negative away from it.

All of a text's terms are scored in one batched pass, without re-encoding anything: the first
layer is linear, so each feature's contribution to it (value x weight row) is computed once, a
term's removal is a subtraction and a per-part rescale, and only the narrow layers after it run
once per term. The pass is checked against the model's own forward pass on the edited feature
rows (tests/test_explain.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import log_softmax

from textclf.analyzer import Span, ascii_occurrences, word_spans
from textclf.features import Encoded, TextFeatures, subject_line, subject_offset
from textclf.host import HostWeights
from textclf.model import MLP
from textclf.schemas import Term

_BODY, _SUBJECT, _PAIRS = 0, 1, 2


class Explainer:
    """Explains a fitted model's predictions; holds no mutable state (safe across threads)."""

    def __init__(self, features: TextFeatures, model: MLP) -> None:
        self.features = features
        self.model = model
        body = features._fitted_body()
        self._split = len(body)  # first subject column
        self._n_words = features.n_word_features  # first word-pair column
        subject = features.subject.terms if features.subject is not None else []
        vocabulary = features.bigrams.vocabulary if features.bigrams is not None else None
        pairs = vocabulary.terms if vocabulary is not None else []
        for part in (body.terms, subject, pairs):
            if len(set(part)) != len(part):
                raise ValueError("a feature part names two columns alike; the artifact is broken")
        names = [*body.terms, *subject, *pairs]
        # Each column's term, as an index into `_terms`: a term's columns (body, subject line,
        # word pair) share one, so grouping a row's columns by term is one `np.unique`.
        ids: dict[str, int] = {}
        self._term_of = np.fromiter(
            (ids.setdefault(name, len(ids)) for name in names), np.int64, len(names)
        )
        self._terms = list(ids)
        # NumPy views of the model's tensors (a GPU model's copied once): a text's pass is a
        # few hundred small operations on ~100 x 148 arrays, where NumPy takes a microsecond or
        # two and torch several in dispatch (on a GPU, each would be a kernel launch).
        self._weights = HostWeights.of(model)

    def explain(
        self,
        texts: Sequence[str],
        label_index: Sequence[int],
        n_terms: int,
        encoded: Encoded | None = None,
    ) -> list[list[Term]]:
        """Each text's `n_terms` strongest terms (largest |weight| first) for its label;
        `encoded`: the texts' rows when the caller has them already."""
        rows = encoded if encoded is not None else self.features.encode(texts)
        bounds = rows.indptr.tolist()
        return [
            self._explain_row(text, rows.indices[lo:hi], rows.data[lo:hi], int(label), n_terms)
            for text, label, lo, hi in zip(texts, label_index, bounds[:-1], bounds[1:], strict=True)
        ]

    def _explain_row(
        self, text: str, columns: np.ndarray, values: np.ndarray, label: int, n_terms: int
    ) -> list[Term]:
        if len(columns) == 0:
            return []
        term_ids, group = np.unique(self._term_of[columns], return_inverse=True)
        weights = self.occlusion(columns, values, group.astype(np.int64), len(term_ids), label)
        order = np.argsort(-np.abs(weights), kind="stable")[:n_terms]
        chosen = [self._terms[t] for t in term_ids[order].tolist()]
        spans = self._spans(text, set(chosen))
        return [
            Term.model_construct(term=name, weight=float(weights[g]), spans=spans.get(name, []))
            for name, g in zip(chosen, order.tolist(), strict=True)
        ]

    def occlusion(
        self, columns: np.ndarray, values: np.ndarray, group: np.ndarray, n_groups: int, label: int
    ) -> np.ndarray:
        """log p(label | row) - log p(label | row without group g's entries, renormalised per
        part), for every group g, in one batch. `columns`/`values` are one encoded row."""
        values = values.astype(np.float32, copy=False)
        part = (columns >= self._split).astype(np.int64) + (columns >= self._n_words)
        logits = self._first_layer_logits(columns, values, group, part, n_groups)
        if self._weights.bigrams is not None:
            logits += self._pair_logits(columns, values, group, part, n_groups)
        log_p = log_softmax(logits.astype(np.float64), axis=1)[:, label]
        return log_p[0] - log_p[1:]

    def _first_layer_logits(
        self,
        cols: np.ndarray,
        vals: np.ndarray,
        groups: np.ndarray,
        part: np.ndarray,
        n_groups: int,
    ) -> np.ndarray:
        """Logits of the row (first) and of the row without each group (after), from the word
        features' contributions to the first layer."""
        words = part < _PAIRS
        if not words.all():
            cols, vals, groups, part = cols[words], vals[words], groups[words], part[words]
        contribution = vals[:, None] * self._weights.input[cols]  # each feature's share of x W
        scale = _rescale(vals, groups, part, n_groups, n_parts=2)  # (groups + 1, 2)
        # Row g + 1: the bias plus each part's sum times its factor, less the group's own
        # entries (times the same factor); a group has at most one entry per part.
        first = self._weights.input_bias + scale[:, :1] * contribution[part == 0].sum(0)
        first += scale[:, 1:] * contribution[part == 1].sum(0)
        own = scale[1 + groups, part][:, None] * contribution
        body = part == 0
        first[1 + groups[body]] -= own[body]
        first[1 + groups[~body]] -= own[~body]
        return self._weights.head(first)

    def _pair_logits(
        self,
        cols: np.ndarray,
        vals: np.ndarray,
        groups: np.ndarray,
        part: np.ndarray,
        n_groups: int,
    ) -> np.ndarray:
        """The word-pair naive Bayes term's logits, for the row and without each group."""
        bigrams = self._weights.bigrams
        assert bigrams is not None
        pairs = part == _PAIRS
        cols, vals, groups = cols[pairs], vals[pairs], groups[pairs]
        n_labels = bigrams.shape[1]
        if len(cols) == 0:
            return np.zeros((n_groups + 1, n_labels), np.float32)
        contribution = vals[:, None] * bigrams[cols - self._n_words]
        scale = _rescale(vals, groups, np.zeros_like(groups), n_groups, n_parts=1)
        left = np.broadcast_to(contribution.sum(0), (n_groups + 1, n_labels)).copy()
        left[1 + groups] -= contribution
        return scale[:, :1] * left

    def _spans(self, text: str, wanted: set[str]) -> dict[str, list[tuple[int, int]]]:
        """Where each wanted term occurs: body terms, subject-line words, word pairs."""
        features = self.features
        fast = ascii_occurrences(features.body_analyzer, text, wanted)
        return self._counted(text, fast) if fast is not None else self._tokenised(text, wanted)

    def _tokenised(self, text: str, wanted: set[str]) -> dict[str, list[tuple[int, int]]]:
        """`_spans` for any text, from the text's words (the ASCII path's reference)."""
        features = self.features
        found: dict[str, set[tuple[int, int]]] = {}
        # One tokenisation: both analyzers share their word rules (case, stop words), and the
        # subject line's words are the text's words that lie inside it.
        words = word_spans(features.body_analyzer, text)
        firsts = {term.split(" ", 1)[0] for term in wanted}  # words hold no space
        occurrences = _wanted_ngrams(features.body_analyzer.ngram_range, words, wanted, firsts)
        offset = subject_offset(text) if features.subject is not None else -1
        if offset >= 0:
            end = offset + len(subject_line(text))
            inside = [w for w in words if offset <= w[1] and w[2] <= end]
            ngram_range = features.subject_analyzer.ngram_range
            occurrences += _wanted_ngrams(ngram_range, inside, wanted, firsts)
        if self.model.n_bigrams:
            occurrences += _wanted_ngrams((2, 2), words, wanted, firsts)
        for term, start, end in occurrences:
            found.setdefault(term, set()).add((start, end))
        return {term: sorted(spans) for term, spans in found.items()}

    def _counted(
        self, text: str, occurrences: dict[str, list[tuple[int, int]]]
    ) -> dict[str, list[tuple[int, int]]]:
        """The occurrences the model counts: an n-gram anywhere when the body (or the word
        pairs) forms n-grams of that length, otherwise only inside the subject line."""
        features = self.features
        low, high = features.body_analyzer.ngram_range
        anywhere = set(range(low, high + 1)) | ({2} if self.model.n_bigrams else set())
        inside, end = range(0), -1
        offset = subject_offset(text) if features.subject is not None else -1
        if offset >= 0:
            low, high = features.subject_analyzer.ngram_range
            inside, end = range(low, high + 1), offset + len(subject_line(text))
        out: dict[str, list[tuple[int, int]]] = {}
        for term, spans in occurrences.items():
            n = term.count(" ") + 1
            if n not in anywhere:
                spans = [s for s in spans if n in inside and offset <= s[0] and s[1] <= end]
            if spans:
                out[term] = spans
        return out


def _wanted_ngrams(
    ngram_range: tuple[int, int], words: list[Span], wanted: set[str], firsts: set[str]
) -> list[Span]:
    """The n-grams of `words` (as `analyzer.ngram_spans` forms them) that are `wanted`, joining
    only those that start with a wanted term's first word: a text has hundreds of n-grams and
    an explanation names about ten."""
    low, high = ngram_range
    out = [w for w in words if w[0] in wanted] if low == 1 else []
    for n in range(max(low, 2), min(high, len(words)) + 1):
        for i in range(len(words) - n + 1):
            if words[i][0] not in firsts:
                continue
            gram = words[i : i + n]
            term = " ".join(w for w, _, _ in gram)
            if term in wanted:
                out.append((term, gram[0][1], gram[-1][2]))
    return out


def _rescale(
    vals: np.ndarray, groups: np.ndarray, part: np.ndarray, n_groups: int, n_parts: int
) -> np.ndarray:
    """(n_groups + 1, n_parts) factors: 1 for the row itself, then for each group the factor
    that renormalises each part after the group's entries are gone (norm before / norm after;
    0 when nothing of the part is left, as an empty part encodes to zeros).

    A group has at most one entry per part (`Explainer.__init__` checks that a term names one
    column per part), so each factor comes from one entry: its part's squared norm with and
    without it."""
    squares = vals.astype(np.float64) ** 2
    total = np.bincount(part, weights=squares, minlength=n_parts)[part]
    alone = np.bincount(part, minlength=n_parts)[part] == 1
    left = np.maximum(total - squares, 1e-300)
    out = np.ones((n_groups + 1, n_parts), np.float32)
    out[1 + groups, part] = np.where(alone, 0.0, np.sqrt(total / left))
    return out
