"""Application factory: `create_app(settings)` builds a FastAPI app whose lifespan loads the model.

Nothing happens at import time, so tests build apps with their own `Settings`, and uvicorn workers
build theirs with `uvicorn.run("service.app:create_app", factory=True)` from the environment.
If the model cannot be loaded, startup fails, and uvicorn exits non-zero after logging the
loader's message.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

import textclf
from service.errors import install_error_handlers
from service.inference import MicroBatcher, ModelHolder
from service.metrics import Metrics, MetricsMiddleware
from service.routes import api, ops
from service.settings import Settings, get_settings
from textclf.predictor import Predictor

logger = logging.getLogger("textclf.service")


def load_predictor(settings: Settings) -> Predictor:
    """The model named by the settings; raises `textclf.ArtifactError` saying what is wrong."""
    return textclf.load(settings.model_path, device=settings.device)


def create_app(settings: Settings | None = None, *, predictor: Predictor | None = None) -> FastAPI:
    """A ready-to-serve app. Pass `predictor` to serve a model already loaded (the CLI does, after
    checking it loads); otherwise the lifespan loads `settings.model_path`."""
    settings = settings if settings is not None else get_settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            loaded = predictor if predictor is not None else load_predictor(settings)
        except Exception as exc:
            logger.error("cannot load the model from %s: %s", settings.model_path, exc)
            raise
        holder = ModelHolder(loaded)
        batcher = MicroBatcher(
            holder, max_batch_texts=settings.max_batch_texts, on_batch=metrics.observe_batch
        )
        metrics.set_model(loaded.ref)
        app.state.model, app.state.batcher = holder, batcher
        logger.info("serving %s version %s", loaded.ref.name, loaded.ref.version)
        try:
            yield
        finally:
            del app.state.model, app.state.batcher
            batcher.close()

    app = FastAPI(
        title="textclf",
        version=textclf.__version__,
        summary="Text classification: TF-IDF + PyTorch MLP.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    install_error_handlers(app)
    app.include_router(api)
    app.include_router(ops)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-API-Key"],
        )
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # outermost: times everything
    return app
