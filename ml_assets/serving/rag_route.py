"""POST /rag/query: reviewers' questions answered from the RAG index the `rag_index` asset
built (same file, same search code as the evaluation), with a semantic cache. An APIRouter
of its own so app.py only includes it. The model loads on the first question, not at
start-up: a replica that never gets one never pays for it."""

from __future__ import annotations

import threading
from typing import Annotated, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ml_assets.serving.api_models import ErrorBody, ValidationErrorBody

MAX_QUESTION_CHARS = 1000
# Text with at least one visible character and no control character but tab and line breaks:
# stated in the schema itself, so the contract says exactly what is accepted.
_CONTROL = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
QUESTION_PATTERN = rf"^[^{_CONTROL}]*[^\s{_CONTROL}][^{_CONTROL}]*$"
RESPONSES: dict[int | str, dict] = {
    400: {"model": ErrorBody, "description": "The body could not be read (e.g. not UTF-8)."},
    401: {"model": ErrorBody, "description": "No API key (`X-API-Key` or Bearer)."},
    403: {"model": ErrorBody, "description": "The API key is not accepted."},
    413: {"model": ErrorBody, "description": "Request body over `max_body_bytes`."},
    422: {"model": ValidationErrorBody, "description": "Invalid body, each bad field named."},
    429: {"model": ErrorBody, "description": "Over the per-key rate or failed-auth limit."},
    503: {"model": ErrorBody, "description": "No RAG index yet: materialize `rag_index`."},
}
router = APIRouter()
_lock = threading.Lock()


class RagQuery(BaseModel):
    """A reviewer's question; `k` and `retriever` default to what the evaluation chose."""

    model_config = ConfigDict(extra="forbid")

    question: Annotated[
        str, Field(min_length=1, max_length=MAX_QUESTION_CHARS, pattern=QUESTION_PATTERN)
    ]
    k: Annotated[int | None, Field(ge=1, le=20)] = None
    retriever: Literal["dense", "bm25", "hybrid"] | None = None

    @field_validator("k", mode="before")
    @classmethod
    def whole_number(cls, value: object) -> object:
        """JSON Schema's integer: 2 and 2.0 are one, "2" and true are not."""
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ValueError("k must be a whole number")

    @field_validator("question")
    @classmethod
    def readable(cls, value: str) -> str:
        """Trimmed; a lone surrogate (JSON can escape one, UTF-8 cannot hold it) becomes ?."""
        return value.strip().encode("utf-8", "replace").decode("utf-8")


def _service(request: Request):
    state = request.app.state
    with _lock:
        if getattr(state, "rag", None) is None:
            from ml_assets.rag.embedding import shared_embedder
            from ml_assets.rag.service import RagService

            state.rag = RagService(state.config.home, shared_embedder())
        return state.rag


@router.post("/rag/query", tags=["rag"], responses=RESPONSES)
def rag_query(body: RagQuery, request: Request) -> JSONResponse:
    """Top-k chunks with ids, scores and documents, the answer with citations, and the
    latency split (embed, search, generate); `cached` says whether the cache answered."""
    from ml_assets.rag.service import IndexMissing

    metrics = request.app.state.metrics
    try:
        result = _service(request).query(body.question, body.k, body.retriever)
    except IndexMissing as missing:
        return JSONResponse({"detail": str(missing)}, status_code=503)
    for stage, ms in result["latency_ms"].items():
        metrics.rag_latency.labels(stage=stage).observe(ms / 1000.0)
    metrics.rag_cache.labels(outcome="hit" if result["cached"] else "miss").inc()
    return JSONResponse(result)
