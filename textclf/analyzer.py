"""Word analysis exactly as scikit-learn's `TfidfVectorizer(analyzer="word")` does it.

One analyzer serves both training (it is handed to scikit-learn's vectorizer as its `analyzer`) and
serving, so a model sees the same tokens in both, and serving never imports scikit-learn (~0.7 s
of a cold start). The tests check it against scikit-learn's own `build_analyzer()` on the whole
20 Newsgroups training set and on odd Unicode.

Most text is pure ASCII. For it, `bytes.translate` lowercases and blanks every non-word byte and
`bytes.split` cuts the tokens, in C, about 10x faster than the token regex; anything else takes
scikit-learn's regex path.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Collection

# scikit-learn's default `token_pattern`: runs of two or more word characters.
TOKEN_PATTERN = re.compile(r"(?u)\b\w\w+\b")
_WORD_BYTES = frozenset(b"0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _byte_table(lowercase: bool) -> bytes:
    """Maps ASCII word bytes to themselves (or their lower case) and everything else to a space:
    in ASCII, the regex's `\\w` is exactly [0-9A-Za-z_]."""
    table = bytearray(b" " * 256)
    for byte in _WORD_BYTES:
        upper = ord("A") <= byte <= ord("Z")
        table[byte] = byte + 32 if lowercase and upper else byte
    return bytes(table)


class WordAnalyzer:
    """Text -> terms: lowercase, tokenise, drop stop words, form n-grams (scikit-learn's order)."""

    def __init__(
        self,
        ngram_range: tuple[int, int] = (1, 1),
        *,
        lowercase: bool = True,
        stop_words: Collection[str] | None = None,
    ) -> None:
        self.ngram_range = ngram_range
        self.lowercase = lowercase
        self.stop_words = frozenset(stop_words) if stop_words is not None else None
        self._table = _byte_table(lowercase)

    @property
    def unigrams_only(self) -> bool:
        """True when every term is a single token: then `raw_ascii_tokens` can stand in for the
        terms wherever only vocabulary terms count (see there)."""
        return self.ngram_range == (1, 1)

    def __call__(self, text: str) -> list[str]:
        return self._ngrams(self.words(text))

    def tokens(self, text: str) -> list[str]:
        """scikit-learn's preprocessor + tokenizer: (lowercase and) the token pattern's matches."""
        if text.isascii():
            return [
                t for t in text.encode("ascii").translate(self._table).decode().split() if t[1:]
            ]
        return TOKEN_PATTERN.findall(text.lower() if self.lowercase else text)

    def words(self, text: str) -> list[str]:
        """The tokens n-grams are formed from: `tokens` without stop words."""
        tokens = self.tokens(text)
        if self.stop_words is None:
            return tokens
        return [t for t in tokens if t not in self.stop_words]

    def raw_ascii_tokens(self, text: str) -> list[bytes] | None:
        """For ASCII text, its tokens as bytes *including* one-character ones (None otherwise).

        Every fitted term has two or more characters and no stop word survives fitting, so
        looking these up in a unigram vocabulary counts exactly what `__call__` would; skipping
        the filters and the decoding is what makes serving fast."""
        if not text.isascii():
            return None
        return text.encode("ascii").translate(self._table).split()

    def _ngrams(self, tokens: list[str]) -> list[str]:
        """scikit-learn's `_word_ngrams`, step for step, from `words` (stop words already out)."""
        low, high = self.ngram_range
        if high == 1:
            return tokens
        terms = list(tokens) if low == 1 else []
        if low <= 2 <= high:  # the common case, without a slice and a join per bigram
            terms.extend([a + " " + b for a, b in itertools.pairwise(tokens)])
        for n in range(max(low, 3), min(high, len(tokens)) + 1):
            terms.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
        return terms


# A term with where it occurs: (term, start, end), `text[start:end]` being the occurrence.
Span = tuple[str, int, int]


def term_spans(analyzer: WordAnalyzer, text: str) -> list[Span]:
    """`analyzer(text)`'s terms, in the same order, each with its character offsets in `text`
    as written (an n-gram spans its first word's start to its last word's end).

    For explanations (`textclf.explain`), which must point at the words in the text as sent.
    The tokens come from the token pattern on the lowercased text, as in `WordAnalyzer.tokens`
    (equal to its ASCII byte path); lowercasing can lengthen a character ("İ" -> "i̇"), so
    offsets are mapped back to the original characters."""
    return ngram_spans(analyzer, _word_spans(analyzer, text))


def ngram_spans(analyzer: WordAnalyzer, spans: list[Span]) -> list[Span]:
    """`analyzer`'s n-grams of words already found (`word_spans`), with their offsets."""
    low, high = analyzer.ngram_range
    out: list[Span] = list(spans) if low == 1 else []
    for n in range(max(low, 2), min(high, len(spans)) + 1):
        for i in range(len(spans) - n + 1):
            gram = spans[i : i + n]
            out.append((" ".join(w for w, _, _ in gram), gram[0][1], gram[-1][2]))
    return out


def word_spans(analyzer: WordAnalyzer, text: str) -> list[Span]:
    """`analyzer.words(text)` with each word's character offsets in `text`."""
    return _word_spans(analyzer, text)


def _word_spans(analyzer: WordAnalyzer, text: str) -> list[Span]:
    lowered = text.lower() if analyzer.lowercase else text
    origin: list[int] | None = None
    if len(lowered) != len(text):  # lowercasing only ever lengthens a character
        origin = [i for i, c in enumerate(text) for _ in range(len(c.lower()))]
    stop = analyzer.stop_words or frozenset()
    out: list[Span] = []
    for match in TOKEN_PATTERN.finditer(lowered):
        word = match.group()
        if word in stop:
            continue
        start, end = match.span()
        if origin is not None:
            start, end = origin[start], origin[end - 1] + 1
        out.append((word, start, end))
    return out


def english_stop_words() -> frozenset[str]:
    """scikit-learn's English list (imported only by models configured with it)."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)
