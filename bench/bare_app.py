"""The HTTP baseline: a bare FastAPI app that validates textclf's request body, returns a constant.

`POST /v1/predict` takes the same `PredictRequest` body as textclf (parsed and validated by
FastAPI, the plain way) and answers with one fixed `PredictResponse`-shaped JSON document, so
`http_load` can show how much of textclf's request cost is the framework and how much is the
model and the service around it. Served with plain uvicorn:

    python -m uvicorn bench.bare_app:app --no-access-log
"""

from __future__ import annotations

from fastapi import FastAPI, Response

from textclf.schemas import PredictRequest

_CONSTANT = (
    b'{"model":{"name":"bare","version":"0"},"predictions":[{"label":"sci.space","score":0.9,'
    b'"top_k":[{"label":"sci.space","score":0.9}]}]}'
)

app = FastAPI(title="bare baseline")


@app.post("/v1/predict")
async def predict(request: PredictRequest) -> Response:
    return Response(_CONSTANT, media_type="application/json")


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
