"""Application factory: `create_app(settings)` builds a FastAPI app whose lifespan loads the model.

Nothing happens at import time, so tests build apps with their own `Settings`, and uvicorn workers
build theirs with `uvicorn.run("service.app:create_app", factory=True)` from the environment.
If the model cannot be loaded, startup fails, and uvicorn exits non-zero after logging the
loader's message.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline

import textclf
from service.auth import APIKeyMiddleware
from service.batcher import Batcher
from service.demo import install_demo
from service.errors import install_error_handlers
from service.group import WorkerChannel
from service.holder import ModelHolder, load_scorer
from service.metrics import Metrics, MetricsMiddleware
from service.open_inference import router as open_inference_router
from service.openapi import install_openapi
from service.reload import Reloader, admin_routes
from service.routes import router
from service.scoring import Scorer
from service.settings import Settings, get_settings
from textclf.open_inference import InferenceRequest
from textclf.schemas import limited_predict_request

logger = logging.getLogger("textclf.service")


def create_app(
    settings: Settings | None = None,
    *,
    scorer: Scorer | None = None,
    group: WorkerChannel | None = None,
) -> FastAPI:
    """A ready-to-serve app. Pass `scorer` to serve a model already loaded (the CLI does, after
    checking it loads); otherwise the lifespan loads `settings.model_path`. `group`: this is one
    of `textclf serve --workers N`'s workers (`service.supervisor`), which reload and count as
    one."""
    settings = settings if settings is not None else get_settings()
    metrics = Metrics(multiprocess_dir=group.metrics_dir if group is not None else None)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            loaded = scorer if scorer is not None else load_scorer(settings)
        except Exception as exc:
            logger.error("cannot load the model from %s: %s", settings.model_path, exc)
            raise
        await loaded.start()
        holder = ModelHolder(loaded)
        batcher = Batcher(
            holder,
            max_wait_s=settings.batch_wait_ms / 1000 if loaded.shares_the_gil else 0.0,
            max_batch_texts=settings.max_batch_texts,
            on_batch=metrics.observe_batch,
        )
        metrics.set_model(loaded.ref)
        reloader = Reloader(settings, holder, metrics, group=group)
        app.state.model, app.state.batcher, app.state.reloader = holder, batcher, reloader
        reloader.install_sighup()  # with a group, a worker's SIGHUP reloads them all
        if group is not None:
            group.attach(reloader)
        logger.info("serving %s version %s", loaded.ref.name, loaded.ref.version)
        try:
            yield
        finally:
            reloader.remove_sighup()
            if group is not None:
                await group.aclose()
            await reloader.aclose()  # a SIGHUP reload still loading finishes first
            await batcher.aclose()  # requests still coming get 503 from here on
            del app.state.model, app.state.batcher, app.state.reloader
            holder.scorer.close(wait=True)

    # FastAPIOffline: FastAPI with /docs served from the package's own Swagger UI files, so the
    # docs work with no internet access (FastAPI's default loads a CDN). No /redoc: ReDoc's
    # page loads its logo from Redocly's CDN whatever it is given.
    app = FastAPIOffline(
        redoc_url=None,
        title="textclf",
        version=textclf.__version__,
        summary="Text classification: TF-IDF + PyTorch MLP.",
        lifespan=lifespan,
        routes=[
            *router.routes,
            *admin_routes(documented=settings.api_key is not None),
            *open_inference_router.routes,  # the Open Inference Protocol (V2), beside /v1
        ],
        **_telemetry(settings.opentelemetry),
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.predict_request = limited_predict_request(
        max_texts=settings.max_texts, max_text_chars=settings.max_text_chars
    )
    install_openapi(app, settings, [app.state.predict_request, InferenceRequest])
    install_error_handlers(app)
    install_demo(app)
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
