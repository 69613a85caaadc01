"""LibreTranslate's public API on the server, so its clients work with nmt models unchanged.

    POST /translate   q (a text or a list), source (a code or "auto"), target, format
                      ("text"; "html" is refused), alternatives (n-best), api_key, and
                      nmt's optional model; JSON or form fields.
                      Answer: {"translatedText": ..., "alternatives": [...]}
    GET  /languages   [{"code", "name", "targets"}], every language the models read or write

With no `model`, the first served model (in --model order) that translates the pair
answers: LibreTranslate's clients know nothing of models, and two models for one pair
(say a small and a big one) must not break them; `model` picks another. "auto" takes any
source: nmt does not detect languages, so no `detectedLanguage` is returned. Errors are
`{"error": "..."}`, LibreTranslate's shape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException

from nmt_runtime.serve.limits import ApiError, parse_json, validated
from nmt_runtime.serve.schema import (
    LANGUAGE_NAMES,
    Language,
    LibreRequest,
    LibreResponse,
    body_doc,
)

if TYPE_CHECKING:
    from nmt_runtime.serve.server import Server


async def _fields(request: Request) -> Any:
    """LibreTranslate's clients send JSON or form fields; both are read."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form()
        return {k: form.getlist(k) if k == "q" and len(form.getlist(k)) > 1 else v
                for k, v in form.items()}  # fmt: skip
    return parse_json(await request.body())


async def read_request(request: Request, server: Server) -> LibreRequest:
    """The body, once its key (api_key field or header) is checked: a client without the
    key learns nothing of the schema from a validation error."""
    try:
        data = await _fields(request)
    except (ApiError, HTTPException):  # no key to read in a broken body: the header's, or 403
        server.authorize(request)
        raise
    given = data.get("api_key") if isinstance(data, dict) else None
    server.authorize(request, given if isinstance(given, str) else None)
    return validated(LibreRequest, data)


def add_libre_routes(app: FastAPI, server: Server) -> None:
    doc = body_doc(LibreRequest, form=True)

    @app.post("/translate", openapi_extra=doc, response_model_exclude_none=True)
    async def libre_translate(request: Request) -> LibreResponse:
        """LibreTranslate's translate: `q` (text or list), `source`, `target`, `format`;
        `model` (nmt's addition) picks one of several models for the pair."""
        body = await read_request(request, server)
        if body.format == "html":
            raise ApiError(400, "format: html is not supported; send plain text (format text)")
        engine = server.for_pair(body.model, body.source, body.target)
        texts = [body.q] if isinstance(body.q, str) else body.q
        nbest = body.alternatives + 1
        wider = nbest > engine.beam_size  # alternatives need a beam at least that wide
        options = {"beam_size": nbest if wider else None}
        prepared = server.prepare(engine, texts, nbest, False, options)
        found = await server.search(prepared)
        best = [f[0].text if f else "" for f in found]
        others = [[t.text for t in f[1:]] for f in found]
        if isinstance(body.q, str):
            return LibreResponse(
                translatedText=best[0], alternatives=others[0] if body.alternatives else None
            )
        return LibreResponse(
            translatedText=best, alternatives=others if body.alternatives else None
        )

    @app.get("/languages")
    async def languages() -> list[Language]:
        """LibreTranslate's language list: every source language and its targets (open to
        all, as LibreTranslate's is)."""
        targets: dict[str, list[str]] = {}  # every code, as a client checks both ends
        for m in server.models.values():
            targets.setdefault(m.target, [])
            served = targets.setdefault(m.source, [])
            if m.target not in served:
                served.append(m.target)
        return [
            Language(code=code, name=LANGUAGE_NAMES.get(code, code), targets=found)
            for code, found in targets.items()
        ]
