"""`nmt serve`: trained models behind HTTP, on FastAPI; concurrent requests share searches.

    app = create_app([Served.load("runs/quickstart")], Limits())
    uvicorn.run(app, host="127.0.0.1", port=8000)

Request → checks (`Server.prepare`: sizes, language pair, search settings; a 4xx on failure)
→ source ids → `Batcher` (nmt.batcher: one worker thread joins requests with the same
model and settings into one search batch) → `Translator.search_ids` → answer. Routes:

    GET  /                 the page: type a sentence, see its translation and attention
    GET  /health           {"status": "ok", ...}
    GET  /models           the served models, their languages, decode defaults, scores
    POST /api/translate    nmt's JSON API (nmt.serve_schema.TranslateRequest)
    POST /translate        LibreTranslate's API (q, source, target, format, alternatives)
    GET  /languages        LibreTranslate's language list
    GET  /docs             the OpenAPI page

Every error is a 4xx (or 500 for a bug) with one line of JSON, `{"error": "..."}`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException

from nmt.batcher import Batcher
from nmt.config import DecodeConfig
from nmt.ensemble import attends
from nmt.errors import UserError
from nmt.serve_libre import add_libre_routes
from nmt.serve_limits import ApiError, BodyLimit, Limits, one_line, validation_message
from nmt.serve_schema import (
    Alternative,
    ErrorBody,
    Health,
    ModelInfo,
    TranslateRequest,
    TranslateResponse,
    TranslationResult,
)
from nmt.translate import Translation, Translator


@dataclass
class Served:
    """A model (or an ensemble) under a name, with what /models tells about it."""

    name: str
    translator: Translator
    directories: list[Path]
    results: dict[str, Any] | None = None

    @classmethod
    def load(
        cls,
        dirs: str | Path | Sequence[str | Path],
        name: str | None = None,
        device: str = "auto",
        precision: str = "fp32",
    ) -> Served:
        paths = [Path(dirs)] if isinstance(dirs, (str, Path)) else [Path(d) for d in dirs]
        translator = Translator.load(paths, device, precision)  # type: ignore[arg-type]
        results_file = paths[0] / "results.json"
        results = json.loads(results_file.read_text()) if results_file.is_file() else None
        return cls(name or paths[0].name, translator, paths, results)

    @property
    def source(self) -> str:
        return self.translator.recipe.data.source_lang

    @property
    def target(self) -> str:
        return self.translator.recipe.data.target_lang

    def info(self) -> ModelInfo:
        scores = None
        if self.results is not None:
            keep = ("bleu", "chrf", "signature", "valid_bleu", "beam_size", "decode")
            scores = {k: v for k, v in self.results.items() if k in keep}
        return ModelInfo(
            name=self.name,
            source=self.source,
            target=self.target,
            directories=[str(d) for d in self.directories],
            attention=attends(self.translator.model),
            decode=dataclasses.asdict(self.translator.recipe.decode),
            results=scores,
        )


@dataclass(frozen=True)
class SearchKey:
    """What must be equal for two requests to share a search batch."""

    model: str
    settings: DecodeConfig
    nbest: int
    attention: bool


@dataclass
class Prepared:
    key: SearchKey
    ids: list[list[int]]
    tokens: int


def _result(found: list[Translation]) -> TranslationResult:
    if not found:  # an empty text
        return TranslationResult(
            text="", score=None, alternatives=[], source_pieces=[], target_pieces=[]
        )
    best = found[0]
    return TranslationResult(
        text=best.text,
        score=best.score,
        alternatives=[Alternative(text=t.text, score=t.score) for t in found[1:]],
        source_pieces=best.source_pieces,
        target_pieces=best.target_pieces,
        attention=best.attention,
    )


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": one_line(message)}, status_code=status)


def _page() -> str:
    return (resources.files("nmt") / "web" / "index.html").read_text(encoding="utf-8")


class Server:
    """The routes' shared state: the served models, the limits, the key, the batcher."""

    def __init__(self, models: Sequence[Served], limits: Limits, api_key: str | None):
        names = [m.name for m in models]
        if not models:
            raise UserError("no model to serve; name one with --model")
        for name in names:
            if names.count(name) > 1:
                raise UserError(
                    f"two models are named {name!r}; serve them from directories with "
                    "different names"
                )
        self.models = {m.name: m for m in models}
        self.limits = limits
        self.api_key = api_key
        self.batcher: Batcher | None = None

    def authorize(self, request: Request, given: str | None = None) -> None:
        """Constant-time check of the key from X-API-Key, a Bearer header or the body."""
        if self.api_key is None:
            return
        header = request.headers.get("authorization", "")
        bearer = header[7:] if header.lower().startswith("bearer ") else None
        key = given or request.headers.get("x-api-key") or bearer or ""
        if not hmac.compare_digest(key.encode(), self.api_key.encode()):
            raise ApiError(403, "invalid or missing API key: send it as X-API-Key or api_key")

    def pick(self, name: str | None, source: str | None, target: str | None) -> Served:
        """The model a request names, or the one that serves its language pair."""
        if name is not None:
            if name not in self.models:
                raise ApiError(404, f"no model named {name!r}; GET /models lists {self._names()}")
            return self.models[name]
        fits = [
            m
            for m in self.models.values()
            if (source in (None, "auto", m.source)) and target in (None, m.target)
        ]
        if not fits:
            pairs = ", ".join(f"{m.source}→{m.target}" for m in self.models.values())
            raise ApiError(400, f"{source}→{target} is not served; this server does {pairs}")
        if len(fits) > 1:
            raise ApiError(400, f"several models fit; name one of {self._names(fits)} as model")
        return fits[0]

    def _names(self, models: Sequence[Served] | None = None) -> str:
        return ", ".join(m.name for m in (models or list(self.models.values())))

    def prepare(
        self, served: Served, texts: list[str], nbest: int, attention: bool, **options
    ) -> Prepared:
        """A request checked against the limits and the model, as source ids; ApiError if not."""
        self.limits.check_texts(texts)
        translator = served.translator
        try:
            settings = translator.decode_config(**options)
            if nbest > settings.beam_size:
                raise ApiError(400, f"nbest {nbest} needs beam_size {nbest} or more")
            translator.search_settings(nbest, attention, **options)
        except UserError as error:  # e.g. attention asked of a model without any
            raise ApiError(400, str(error)) from None
        ids = translator.encode(texts)
        self.limits.check_tokens(ids)
        if settings.max_input_length is not None:
            ids = [x[: settings.max_input_length] for x in ids]
        key = SearchKey(served.name, settings, nbest, attention)
        return Prepared(key, ids, sum(map(len, ids)))

    async def search(self, prepared: Prepared) -> list[list[Translation]]:
        assert self.batcher is not None, "the server has not started"
        return await self.batcher.submit(prepared.key, prepared.ids, prepared.tokens)

    def run(self, key: SearchKey, ids: list[list[int]]) -> list[list[Translation]]:
        """The batcher's work: one search over the joined requests (worker thread)."""
        translator = self.models[key.model].translator
        return translator.search_ids(ids, key.settings, key.nbest, key.attention)


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
    app.add_middleware(BodyLimit, limit=server.limits.max_body_bytes)
    _add_error_handlers(app)
    _add_routes(app, server)
    return app


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

    @app.get("/health")
    async def health() -> Health:
        names = list(server.models)
        return Health(status="ok", models=names, api_key_required=server.api_key is not None)

    @app.get("/models")
    async def models(request: Request) -> list[ModelInfo]:
        server.authorize(request)
        return [m.info() for m in server.models.values()]

    @app.post("/api/translate")
    async def translate(body: TranslateRequest, request: Request) -> TranslateResponse:
        """Translate a text or a list; n-best, scores and attention on request."""
        server.authorize(request)
        served = server.pick(body.model, None, None)
        texts = [body.text] if isinstance(body.text, str) else body.text
        options = {
            "beam_size": body.beam_size,
            "length_penalty": body.length_penalty,
            "length_normalization": body.length_normalization,
        }
        prepared = server.prepare(served, texts, body.nbest, body.attention, **options)
        found = await server.search(prepared)
        return TranslateResponse(model=served.name, translations=[_result(f) for f in found])

    add_libre_routes(app, server)
