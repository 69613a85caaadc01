"""LibreTranslate's public API on `nmt serve`, so its clients work with nmt models unchanged.

    POST /translate   q (a text or a list), source (a code or "auto"), target, format
                      ("text"; "html" is refused), alternatives (n-best), api_key; JSON or
                      form fields. Answer: {"translatedText": ..., "alternatives": [...]}
    GET  /languages   [{"code", "name", "targets"}], every language the models read or write

"auto" picks the one model that writes `target`: nmt does not detect languages, so no
`detectedLanguage` is returned. Errors are `{"error": "..."}`, LibreTranslate's shape.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from pydantic import ValidationError

from nmt.serve_limits import ApiError, validation_message
from nmt.serve_schema import LANGUAGE_NAMES, Language, LibreRequest, LibreResponse

if TYPE_CHECKING:
    from nmt.serve import Server


async def read_request(request: Request) -> LibreRequest:
    """LibreTranslate's clients send JSON or form fields; both are read."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if kind in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.form()
            data: Any = {k: form.getlist(k) if k == "q" and len(form.getlist(k)) > 1 else v
                         for k, v in form.items()}  # fmt: skip
        else:
            data = json.loads(await request.body() or b"null")
        return LibreRequest.model_validate(data)
    except json.JSONDecodeError as error:
        raise ApiError(400, f"the body is not valid JSON: {error}") from None
    except ValidationError as error:
        raise ApiError(400, validation_message(error.errors())) from None


def add_libre_routes(app: FastAPI, server: Server) -> None:
    schema = LibreRequest.model_json_schema()
    body_doc = {"requestBody": {"required": True, "content": {
        "application/json": {"schema": schema},
        "application/x-www-form-urlencoded": {"schema": schema},
    }}}  # fmt: skip

    @app.post("/translate", openapi_extra=body_doc, response_model_exclude_none=True)
    async def libre_translate(request: Request) -> LibreResponse:
        """LibreTranslate's translate: `q` (text or list), `source`, `target`, `format`."""
        body = await read_request(request)
        server.authorize(request, body.api_key)
        if body.format == "html":
            raise ApiError(400, "format: html is not supported; send plain text (format text)")
        served = server.pick(None, body.source, body.target)
        texts = [body.q] if isinstance(body.q, str) else body.q
        nbest = body.alternatives + 1
        options = {"beam_size": nbest} if nbest > served.translator.recipe.decode.beam_size else {}
        prepared = server.prepare(served, texts, nbest, False, **options)
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
