"""`nmt serve`: trained models behind HTTP, on FastAPI; concurrent requests share searches.

    app = create_app([Served.load("runs/quickstart")], Limits())
    uvicorn.run(app, host="127.0.0.1", port=8000)

Request → checks (`Server.prepare`: sizes, language pair, search settings; a 4xx on failure)
→ source ids → `Batcher` (nmt.serve.batcher: one worker thread joins requests with the same
model and settings into one search batch) → `Translator.search_ids` → answer. Routes:

    GET  /                 the page: type a sentence, see its translation and attention
    GET  /health           {"status": "ok", ...}; 503 once the batcher's worker is gone
    GET  /models           the served models, their languages, decode defaults, scores
    POST /api/translate    nmt's JSON API (nmt.serve.schema.TranslateRequest)
    POST /translate        LibreTranslate's API (q, source, target, format, alternatives)
    GET  /languages        LibreTranslate's language list
    GET  /docs             the OpenAPI page (/redoc, /openapi.json)

Every error is a 4xx (or 500 for a bug, 503 when the batcher's worker has died) with one
line of JSON, `{"error": "..."}`. Before any route: `KeyGate` (nmt.serve.key: the API key,
before the body is read), then `BodyLimit` (nmt.serve.limits: the body's size and time).
Bodies are parsed by `parse_json`, not FastAPI, so that the key comes before validation
and JSON that Python's parser lets through or chokes on is a 400; their schemas are added
to /openapi.json by `_document_bodies`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException

from nmt.decode.ensemble import attends
from nmt.errors import one_line
from nmt.recipe.schema import MAX_BEAM
from nmt.serve.batcher import Batcher
from nmt.serve.key import KeyGate
from nmt.serve.libre import add_libre_routes
from nmt.serve.limits import (
    ApiError,
    BodyLimit,
    Limits,
    parse_json,
    validated,
    validation_message,
)
from nmt.serve.schema import (
    ErrorBody,
    Health,
    LibreRequest,
    ModelInfo,
    TranslateRequest,
    TranslateResponse,
    body_doc,
)
from nmt.serve.server import Served, Server, _result


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": one_line(message)}, status_code=status)


def _page() -> str:
    """The page, with the API's limits filled in (`{{MAX_BEAM}}`: one maximum for both)."""
    page = (resources.files("nmt.serve") / "web" / "index.html").read_text(encoding="utf-8")
    return page.replace("{{MAX_BEAM}}", str(MAX_BEAM))


def create_app(
    models: Sequence[Served], limits: Limits | None = None, api_key: str | None = None
) -> FastAPI:
    """The FastAPI application serving `models` (by name) within `limits`."""
    server = Server(models, limits or Limits(), api_key)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        server.batcher = Batcher(server.run, server.limits.max_wait, server.limits.batch_tokens)
        try:
            yield
        finally:  # uvicorn drained the in-flight requests before this
            server.batcher.close(timeout=60)

    app = FastAPI(
        title="nmt",
        summary="Recurrent neural machine translation: nmt's API and LibreTranslate's.",
        lifespan=lifespan,
        responses={400: {"model": ErrorBody}, 403: {"model": ErrorBody}},
    )
    app.state.server = server
    limits = server.limits
    app.add_middleware(BodyLimit, limit=limits.max_body_bytes, timeout=limits.request_timeout)
    app.add_middleware(KeyGate, key=api_key)  # added last: runs first, before any body
    _add_error_handlers(app)
    _add_routes(app, server)
    _document_bodies(app)
    return app


def _document_bodies(app: FastAPI) -> None:
    """Put the request models that routes parse themselves (`body_doc`) into the OpenAPI
    document's components, where FastAPI puts those it parses."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schemas = build().setdefault("components", {}).setdefault("schemas", {})
            for model in (TranslateRequest, LibreRequest):
                schemas[model.__name__] = model.model_json_schema()
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError):
        return _error(error.status, error.message)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError):
        return _error(400, validation_message(error.errors()))

    @app.exception_handler(Exception)
    async def bug(request: Request, error: Exception):  # logged with its traceback
        return _error(500, f"internal error in nmt serve: {type(error).__name__}: {error}")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException):
        return _error(error.status_code, str(error.detail))


def _add_routes(app: FastAPI, server: Server) -> None:
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> str:
        return _page()

    @app.get("/health", responses={503: {"model": ErrorBody}})
    async def health() -> Health:
        """Status ok while the server can translate; 503 once the batcher's worker has died."""
        if server.batcher is not None and not server.batcher.alive:
            return _error(503, f"{server.batcher.stop_error()}; restart nmt serve")
        names = list(server.models)
        return Health(status="ok", models=names, api_key_required=server.api_key is not None)

    @app.get("/models")
    async def models() -> list[ModelInfo]:
        return [m.info() for m in server.models.values()]

    @app.post("/api/translate", openapi_extra=body_doc(TranslateRequest))
    async def translate(request: Request) -> TranslateResponse:
        """Translate a text or a list; n-best, scores and attention on request."""
        body = validated(TranslateRequest, parse_json(await request.body()))
        served = server.named(body.model)
        texts = [body.text] if isinstance(body.text, str) else body.text
        settings = served.decode_config(
            beam_size=body.beam_size,
            length_penalty=body.length_penalty,
            length_normalization=body.length_normalization,
            coverage_penalty=body.coverage_penalty,
            replace_unk=body.replace_unk,
        )
        if body.alignment and not attends(served.translator.model):
            raise ApiError(400, "alignment comes from attention, and this model has none")
        searched = body.attention or body.alignment
        prepared = server.prepare(served, texts, body.nbest, searched, settings)
        found = await server.search(prepared)
        results = [_result(f, body.attention, body.alignment) for f in found]
        return TranslateResponse(model=served.name, translations=results)

    add_libre_routes(app, server)
