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
import torch
import torch.nn.functional as F

from textclf.analyzer import Span, word_spans
from textclf.features import Encoded, TextFeatures, subject_line, subject_offset
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
        names = [*body.terms, *subject, *pairs]
        # Each column's term, as an index into `_terms`: a term's columns (body, subject line,
        # word pair) share one, so grouping a row's columns by term is one `np.unique`.
        ids: dict[str, int] = {}
        self._term_of = np.fromiter(
            (ids.setdefault(name, len(ids)) for name in names), np.int64, len(names)
        )
        self._terms = list(ids)

    @torch.inference_mode()
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
        device = self.model.input.weight.device
        cols = torch.from_numpy(columns).to(device)
        vals = torch.from_numpy(values.astype(np.float32, copy=False)).to(device)
        groups = torch.from_numpy(group).to(device)
        part = (cols >= self._split).long() + (cols >= self._n_words).long()
        logits = self._first_layer_logits(cols, vals, groups, part, n_groups)
        if self.model.n_bigrams:
            logits = logits + self._pair_logits(cols, vals, groups, part, n_groups)
        log_p = F.log_softmax(logits.double(), dim=1)[:, label]
        return (log_p[0] - log_p[1:]).cpu().numpy()

    def _first_layer_logits(
        self,
        cols: torch.Tensor,
        vals: torch.Tensor,
        groups: torch.Tensor,
        part: torch.Tensor,
        n_groups: int,
    ) -> torch.Tensor:
        """Logits of the row (first) and of the row without each group (after), from the word
        features' contributions to the first layer."""
        words = part < _PAIRS
        cols, vals, groups, part = cols[words], vals[words], groups[words], part[words]
        layer = self.model.input
        contribution = vals[:, None] * layer.weight[cols]  # each feature's share of x W
        scale = _rescale(vals, groups, part, n_groups, n_parts=2)  # (groups + 1, 2)
        per_part = contribution.new_zeros(2, contribution.shape[1]).index_add_(
            0, part, contribution
        )
        removed = contribution.new_zeros(n_groups * 2, contribution.shape[1])
        removed.index_add_(0, groups * 2 + part, contribution)
        left = per_part[None] - torch.cat(
            [removed.new_zeros(1, 2, removed.shape[1]), removed.view(n_groups, 2, -1)]
        )
        first = layer.bias + (scale[:, :, None] * left).sum(1)
        return self._head(first)

    def _head(self, first: torch.Tensor) -> torch.Tensor:
        """The layers after the first, as `MLP._infer` runs them (no dropout)."""
        model, n_wide = self.model, self.model.n_wide
        h = F.relu(first[:, :-n_wide] if n_wide else first)
        for layer in model.hidden:
            h = F.relu(layer(h))
        logits = F.linear(h, model.output.weight, model.output.bias)
        return logits + first[:, -n_wide:] if n_wide else logits

    def _pair_logits(
        self,
        cols: torch.Tensor,
        vals: torch.Tensor,
        groups: torch.Tensor,
        part: torch.Tensor,
        n_groups: int,
    ) -> torch.Tensor:
        """The word-pair naive Bayes term's logits, for the row and without each group."""
        assert self.model.bigrams is not None
        pairs = part == _PAIRS
        cols, vals, groups = cols[pairs], vals[pairs], groups[pairs]
        n_labels = self.model.bigrams.shape[1]
        if len(cols) == 0:
            return vals.new_zeros(n_groups + 1, n_labels)
        contribution = vals[:, None] * self.model.bigrams[cols - self._n_words]
        scale = _rescale(vals, groups, torch.zeros_like(groups), n_groups, n_parts=1)
        removed = contribution.new_zeros(n_groups, n_labels).index_add_(0, groups, contribution)
        left = contribution.sum(0)[None] - torch.cat([removed.new_zeros(1, n_labels), removed])
        return scale[:, :1] * left

    def _spans(self, text: str, wanted: set[str]) -> dict[str, list[tuple[int, int]]]:
        """Where each wanted term occurs: body terms, subject-line words, word pairs."""
        found: dict[str, set[tuple[int, int]]] = {}
        features = self.features
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
    vals: torch.Tensor, groups: torch.Tensor, part: torch.Tensor, n_groups: int, n_parts: int
) -> torch.Tensor:
    """(n_groups + 1, n_parts) factors: 1 for the row itself, then for each group the factor
    that renormalises each part after the group's entries are gone (norm before / norm after;
    0 when nothing of the part is left, as an empty part encodes to zeros).

    Computed with NumPy on the host: a row has a few hundred entries, and at that size each of
    the dozen torch calls this takes costs more in dispatch than in arithmetic."""
    v, g, p = (t.cpu().numpy() for t in (vals, groups, part))
    squares = v.astype(np.float64) ** 2
    total = np.bincount(p, weights=squares, minlength=n_parts)
    count = np.bincount(p, minlength=n_parts)
    key = g * n_parts + p
    size = n_groups * n_parts
    gone = np.bincount(key, weights=squares, minlength=size).reshape(n_groups, n_parts)
    gone_count = np.bincount(key, minlength=size).reshape(n_groups, n_parts)
    left = np.maximum(total[None] - gone, 1e-300)
    scale = np.where(gone_count < count[None], np.sqrt(total[None] / left), 0.0)
    scale = np.where(gone_count == 0, 1.0, scale)
    out = np.vstack([np.ones((1, n_parts)), scale]).astype(np.float32)
    return torch.from_numpy(out).to(device=vals.device, dtype=vals.dtype)
