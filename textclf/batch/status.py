"""Progress of a batch job: a live bar (rows/s, ETA) on a terminal, a status line every few
seconds in a log, where a bar's redraws would be noise."""

from __future__ import annotations

import time
from typing import Any

from textclf.progress import interactive, say

STATUS_EVERY_S = 5.0


class Progress:
    def __init__(self, total: int | None, *, done: int = 0, enabled: bool = True) -> None:
        self.total, self.done, self.enabled = total, done, enabled
        self.start = self.last = time.monotonic()
        self._first = done
        self._bar: Any = None
        if enabled and interactive():
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=done, unit=" rows", unit_scale=True)

    def update(self, rows: int) -> None:
        self.done += rows
        if self._bar is not None:
            self._bar.update(rows)
            return
        now = time.monotonic()
        if self.enabled and now - self.last >= STATUS_EVERY_S:
            self.last = now
            say(True, self.line(now))

    def line(self, now: float) -> str:
        rate = (self.done - self._first) / max(now - self.start, 1e-9)
        text = f"batch: {self.done:,}"
        if self.total:
            text += f"/{self.total:,} rows ({100 * self.done / self.total:.0f}%)"
            if rate > 0:
                text += f", ETA {_duration(max(self.total - self.done, 0) / rate)}"
        else:
            text += " rows"
        return text + f", {rate:,.0f} rows/s"

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
