"""Two inference lanes, so that one huge request cannot hold up everybody else's small ones.

A single `MicroBatcher` runs one predictor call at a time: a request of 256 texts of 30,000
characters keeps its thread busy for about half a second, and every small request that arrives
meanwhile waits for it (measured: ten one-text requests sent while it ran all finished after it).
`Lanes` sends requests with more than `bulk_chars` characters in total to a second micro-batcher
with its own thread. Both threads share the model holder (the predictor keeps no mutable state);
the bulk lane's tokenizing holds the GIL for at most the interpreter's switch interval at a time,
so small requests keep being answered while a bulk one runs. Bulk requests queue behind each other,
as before. A whole request always runs in one predictor call, on one model, in one lane.

With the child-process scorer the lanes are two `LoopBatcher`s, each with its own channel to the
child, where each channel has its own thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from service.inference import LoopBatcher, MicroBatcher, ModelHolder, Result
from service.scorer import ProcessPredictor

# About 7 ms of tokenizing and inference on one core (~15 M characters/s measured): below that, a
# request costs the others no more than the batching already does.
BULK_CHARS = 100_000


class Lanes:
    """The service's batcher: `predict` and `aclose`, like `MicroBatcher`, over two lanes."""

    def __init__(
        self,
        holder: ModelHolder,
        *,
        max_batch_texts: int = 1024,
        max_wait_s: float = 0.0,
        on_batch: Callable[[int], None] | None = None,
        bulk_chars: int = BULK_CHARS,
    ) -> None:
        self._bulk_chars = bulk_chars
        self.small: MicroBatcher | LoopBatcher
        self.bulk: MicroBatcher | LoopBatcher
        if isinstance(holder.predictor, ProcessPredictor):
            # One channel to the child each: a bulk batch never queues in front of small ones.
            self.small = LoopBatcher(
                holder, channel=0, max_batch_texts=max_batch_texts, on_batch=on_batch
            )
            self.bulk = LoopBatcher(
                holder, channel=1, max_batch_texts=max_batch_texts, on_batch=on_batch
            )
            return
        self.small = MicroBatcher(
            holder, max_batch_texts=max_batch_texts, max_wait_s=max_wait_s, on_batch=on_batch
        )
        # The bulk lane never waits to fill a batch: its requests are worth running at once.
        self.bulk = MicroBatcher(holder, max_batch_texts=max_batch_texts, on_batch=on_batch)

    async def predict(self, texts: list[str], top_k: int) -> Result:
        """Predictions for `texts` in order, from the lane their total size picks."""
        lane = self.bulk if sum(map(len, texts)) > self._bulk_chars else self.small
        return await lane.predict(texts, top_k)

    async def aclose(self) -> None:
        """Refuse new work, finish what both lanes have queued, and stop their threads."""
        await asyncio.gather(self.small.aclose(), self.bulk.aclose())
