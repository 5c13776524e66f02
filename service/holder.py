"""The live model of a worker: loaded from settings, held in one place, swapped by a reload."""

from __future__ import annotations

from service.scoring import Kind, Scorer, ThreadScorer
from service.settings import Settings


def load_scorer(settings: Settings, *, kind: Kind | None = None) -> Scorer:
    """The model at `settings.model_path`, in a child process or in this one (`kind`, by
    default `settings.scorer`); raises `textclf.ArtifactError` saying what is wrong. Await its
    `start()` on the event loop that will use it."""
    if (kind or settings.scorer) == "process":
        from service.process_scorer import ProcessScorer

        return ProcessScorer(
            settings.model_path, device=settings.device, threads=settings.torch_threads
        )
    import textclf  # torch: only a worker that scores in-process imports it

    predictor = textclf.load(
        settings.model_path, device=settings.device, threads=settings.torch_threads
    )
    return ThreadScorer(predictor)


class ModelHolder:
    """The one reference to the live scorer, kept on `app.state` (never a module global)."""

    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer

    def swap(self, scorer: Scorer) -> Scorer:
        """Serve `scorer` from the next batch on; returns the old one (in-flight batches keep
        using it)."""
        old, self.scorer = self.scorer, scorer
        return old
