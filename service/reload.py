"""Hot reload: load the model folder again and swap it in, without dropping a request.

Triggered by `POST /v1/admin/reload` (API key required) or by SIGHUP to the server process. A
reload has two phases: `prepare` loads, verifies and starts the new model on a thread, off the
event loop, while the old one keeps serving; `commit` swaps it in (`ModelHolder.swap`), `abort`
drops it. Batches already running finish on the old model, later ones use the new one, and every
response names the model that produced it. A broken artifact is refused with the loader's message
and the old model stays.

With one worker the worker runs both phases itself. With `textclf serve --workers N` a reload
asked of any worker (HTTP, or SIGHUP to the supervisor or a worker) goes to the supervisor
(`service.supervisor`), which has every worker prepare, then all commit only if all prepared
(else all abort, and the call answers 409 naming the worker and why). The call returns once every
worker serves the new model, or after at most `service.group.RELOAD_TIMEOUT_S` per phase.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path
from typing import Protocol

from fastapi import APIRouter, Request
from starlette.routing import BaseRoute

import textclf
from service.errors import Forbidden, NotReady, ReloadFailed, ServiceError
from service.errors import documented as documented_errors
from service.holder import ModelHolder, load_scorer
from service.metrics import Metrics
from service.scoring import Scorer
from service.settings import Settings
from textclf.schemas import ModelRef, ReloadResponse

logger = logging.getLogger("textclf.service")

_NO_KEY = (
    "hot reload over HTTP is off because the server has no API key: set TEXTCLF_API_KEY and "
    "restart to enable it (or send SIGHUP to the server process)"
)


class ReloadGroup(Protocol):
    """The workers a reload must reach together (`service.group.WorkerChannel`)."""

    async def reload(self) -> ReloadResponse:
        """Reload every worker, this one included; raises `ReloadFailed` if any refused."""
        ...


class Reloader:
    """Reloads `settings.model_path` into `holder`, one reload at a time; with a `group`, in
    step with the other workers."""

    def __init__(
        self,
        settings: Settings,
        holder: ModelHolder,
        metrics: Metrics,
        *,
        group: ReloadGroup | None = None,
    ) -> None:
        self._settings = settings
        self._holder = holder
        self._metrics = metrics
        self._group = group
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending: Scorer | None = None

    async def reload(self) -> ReloadResponse:
        """Swap in the model now at the configured path; raises `ReloadFailed` if it is broken."""
        if self._group is not None:
            return await self._group.reload()
        async with self._lock:  # one participant: prepare, then commit
            await self.prepare()
            return self.commit()

    async def prepare(self) -> ModelRef:
        """Load and start the model now at the configured path beside the live one, to be
        swapped in by `commit`; raises `ReloadFailed` saying why it cannot be."""
        self.abort()
        previous = self._holder.scorer.ref
        path = self._settings.model_path
        try:
            scorer = await asyncio.to_thread(
                load_scorer, self._settings, kind=self._holder.scorer.kind
            )
            await _started(scorer)
        except textclf.ArtifactError as exc:
            logger.error("reload refused, still serving %s: %s", _describe(previous), exc)
            raise ReloadFailed(
                f"the model at the configured path cannot be loaded, so the old one keeps "
                f"serving ({_describe(previous)}): {_without_folder(str(exc), path)}"
            ) from None
        except Exception as exc:
            logger.error("reload failed, still serving %s", _describe(previous), exc_info=exc)
            raise ReloadFailed(
                "loading the model failed unexpectedly, so the old one keeps serving "
                f"({_describe(previous)}); see the server log"
            ) from None
        self._pending = scorer
        return scorer.ref

    def commit(self) -> ReloadResponse:
        """Serve the prepared model from the next batch on."""
        scorer, self._pending = self._pending, None
        if scorer is None:
            raise ReloadFailed("no model was prepared; reload again")
        previous = self._holder.scorer.ref
        self._holder.swap(scorer).close()  # once the batches it is running are answered
        self._metrics.set_model(scorer.ref)
        logger.info("reloaded: %s, was %s", _describe(scorer.ref), _describe(previous))
        return ReloadResponse(previous=previous, current=scorer.ref)

    def abort(self) -> None:
        """Drop a prepared model (another worker refused it); the live one keeps serving."""
        scorer, self._pending = self._pending, None
        if scorer is not None:
            scorer.close()

    async def aclose(self) -> None:
        """Let reloads started by SIGHUP finish, so none swaps in a model after shutdown."""
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.abort()

    def install_sighup(self) -> bool:
        """Reload on SIGHUP. Only the main thread of a process can take signals: returns False
        (and does nothing) elsewhere, e.g. for a test server running on a thread."""
        if not hasattr(signal, "SIGHUP"):
            return False
        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._on_sighup)
        except (RuntimeError, ValueError, NotImplementedError):
            return False
        return True

    def remove_sighup(self) -> None:
        if hasattr(signal, "SIGHUP"):
            with contextlib.suppress(RuntimeError, ValueError, NotImplementedError):
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)

    def _on_sighup(self) -> None:
        logger.info("SIGHUP: reloading the model from %s", self._settings.model_path)
        self.spawn_reload()

    def spawn_reload(self) -> None:
        """Reload in the background, logging the outcome (SIGHUP has no one to answer)."""
        task = asyncio.get_running_loop().create_task(self._reload_logged())
        self._tasks.add(task)  # keep a reference until it is done
        task.add_done_callback(self._tasks.discard)

    async def _reload_logged(self) -> None:
        with contextlib.suppress(ServiceError):  # `reload` has logged why
            await self.reload()


async def _started(scorer: Scorer) -> None:
    """`scorer.start()`, or the scorer closed (its child stopped) if that fails."""
    try:
        await scorer.start()
    except BaseException:
        scorer.close()
        raise


def _describe(ref: ModelRef) -> str:
    return f"{ref.name} version {ref.version}"


def _without_folder(message: str, folder: Path) -> str:
    """The loader's message with the server's folder path cut, so a client never learns the
    server's file layout: `/srv/models/x/model.safetensors: ...` -> `model.safetensors: ...`."""
    for root in {str(folder.resolve()), str(folder)}:
        message = message.replace(root + os.sep, "").replace(root, "the model folder")
    return message


def admin_routes(*, documented: bool) -> list[BaseRoute]:
    """The admin routes. Without an API key reloading over HTTP is off: the route still answers
    (403, saying how to turn it on) but is left out of the OpenAPI document (`documented`), which
    describes only what a client can do."""
    router = APIRouter()
    router.add_api_route(
        "/v1/admin/reload",
        reload_model,
        methods=["POST"],
        tags=["operations"],
        response_model=ReloadResponse,
        responses=documented_errors(
            {
                401: "Missing or wrong API key.",
                409: "The new model is broken and was refused; the old one keeps serving.",
                503: "Model not loaded yet or shutting down; retry.",
            }
        ),
        summary="Reload the model from disk",
        include_in_schema=documented,
    )
    return list(router.routes)


async def reload_model(request: Request) -> ReloadResponse:
    """Load the model folder the server was started with again, and serve it from the next
    batch on. Returns the model served before and the one served now."""
    state = request.app.state
    if state.settings.api_key is None:
        raise Forbidden(_NO_KEY)
    reloader: Reloader | None = getattr(state, "reloader", None)
    if reloader is None:
        raise NotReady("the model is not loaded yet; retry shortly")
    return await reloader.reload()
