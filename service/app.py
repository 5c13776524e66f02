"""Application factory: `create_app(settings)` builds a FastAPI app whose lifespan loads the model.

Nothing happens at import time, so tests build apps with their own `Settings`, and uvicorn workers
build theirs with `uvicorn.run("service.app:create_app", factory=True)` from the environment.
If the model cannot be loaded, startup fails, and uvicorn exits non-zero after logging the
loader's message.
"""

from __future__ import annotations

import gc
import inspect
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

import textclf
from service.auth import APIKeyMiddleware
from service.errors import install_error_handlers
from service.inference import ModelHolder, load_predictor, release
from service.lanes import Lanes
from service.metrics import Metrics, MetricsMiddleware
from service.reload import Reloader
from service.reload import router as admin_router
from service.routes import router
from service.settings import Settings, get_settings

if TYPE_CHECKING:
    from service.inference import Served

logger = logging.getLogger("textclf.service")


def create_app(settings: Settings | None = None, *, predictor: Served | None = None) -> FastAPI:
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
        batcher = Lanes(
            holder,
            max_batch_texts=settings.max_batch_texts,
            max_wait_s=settings.batch_wait_ms / 1000,
            on_batch=metrics.observe_batch,
        )
        metrics.set_model(loaded.ref)
        # torch, scikit-learn and FastAPI leave ~260k long-lived objects; every full collection
        # walked them all (140-180 ms pauses, the p99 tail under load). Freezing moves them out
        # of the collector's sight; only what requests allocate is collected from here on.
        gc.collect()
        gc.freeze()
        reloader = Reloader(settings, holder, metrics)
        app.state.model, app.state.batcher, app.state.reloader = holder, batcher, reloader
        reloader.install_sighup()  # per process: each worker reloads its own model
        logger.info("serving %s version %s", loaded.ref.name, loaded.ref.version)
        try:
            yield
        finally:
            reloader.remove_sighup()
            del app.state.model, app.state.batcher, app.state.reloader
            await batcher.aclose()
            release(holder.predictor, wait=True)

    app = FastAPI(
        title="textclf",
        version=textclf.__version__,
        summary="Text classification: TF-IDF + PyTorch MLP.",
        lifespan=lifespan,
        routes=[*router.routes, *admin_router.routes],
        **_telemetry(settings.opentelemetry),
    )
    app.state.settings = settings
    app.state.metrics = metrics
    install_error_handlers(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-API-Key"],
        )
    if settings.api_key is not None:
        app.add_middleware(APIKeyMiddleware, api_key=settings.api_key.get_secret_value())
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # outermost: times everything
    return app


def _telemetry(enabled: bool) -> dict[str, Any]:
    """`FastAPI(...)` arguments that turn its built-in OpenTelemetry off unless `enabled`
    (`Settings.opentelemetry`); none for FastAPI versions without it."""
    if enabled or "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
