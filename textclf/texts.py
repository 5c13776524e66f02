"""The one check every scoring entry point makes on its input (no torch, no NumPy)."""

from __future__ import annotations

from collections.abc import Sequence


def as_text_list(texts: Sequence[str], *, name: str = "texts") -> list[str]:
    """The texts as a list, or a TypeError naming the first item that is not a string.

    A lone string is refused: iterating it would classify each character.
    """
    if isinstance(texts, str):
        raise TypeError(
            f"{name} must be a sequence of texts, not a single string "
            "(predict() also accepts one string)"
        )
    items = list(texts)
    for i, text in enumerate(items):
        if not isinstance(text, str):
            raise TypeError(f"{name}[{i}] is {type(text).__name__}, expected str")
    return items
