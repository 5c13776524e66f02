"""Progress for long work: live bars on a terminal, a few plain lines in a log.

A tqdm bar redraws itself with carriage returns; written to a file (`make run > log`) that is
hundreds of updates on one "line". Off a terminal, `bar` draws nothing and writes one summary
line when the loop ends, and `say` lines (one per epoch) carry the progress.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")


def interactive() -> bool:
    """Whether stderr is a terminal that can redraw a bar in place."""
    return sys.stderr.isatty()


def bar(
    items: Iterable[T],
    *,
    desc: str,
    unit: str,
    total: int | None = None,
    enabled: bool = True,
    leave: bool = True,
) -> Iterator[T]:
    """`items`, with a live bar on a terminal, or one line ("desc: N unit in S s") off one."""
    if not enabled:
        yield from items
        return
    if interactive():
        yield from tqdm(items, desc=desc, unit=f" {unit}", total=total, leave=leave)
        return
    start, count = time.monotonic(), 0
    for count, item in enumerate(items, 1):  # noqa: B007  # count is read after the loop
        yield item
    if leave:
        say(True, f"{desc}: {count:,} {unit} in {time.monotonic() - start:.1f}s")


def say(enabled: bool, message: str) -> None:
    """A line of progress on stderr (above any live bar, which tqdm.write keeps intact)."""
    if enabled:
        tqdm.write(message, file=sys.stderr)
