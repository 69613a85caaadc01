"""What one request may ask of `nmt serve`, and the one-line errors when it asks too much.

A server must survive its clients: a body of a gigabyte, ten thousand texts, a text of a
million characters or tokens. Each limit is checked before any search, and breaking one
is a 4xx naming the limit and the server flag that raises it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


def one_line(message: str) -> str:
    return " ".join(message.split())


def validation_message(errors: Sequence[Any]) -> str:
    """The first of pydantic's errors, as one line naming the field (with a list index)."""
    if not errors:
        return "invalid request"
    first = errors[0]
    kind, message = first.get("type", ""), first.get("msg", "invalid")
    if kind == "json_invalid":
        return f"the body is not valid JSON: {message}"
    if kind in ("model_attributes_type", "dict_type", "model_type"):
        return "the body must be a JSON object (Content-Type: application/json)"
    loc = [p for p in first.get("loc", ()) if p != "body"]
    # a union's member names ("str", "list[str]") follow the field name: drop them
    where = ".".join(str(p) for p in loc if isinstance(p, int) or p.isidentifier())
    if where.endswith(".str"):
        where, message = where[:-4], "give a string or a list of strings"
    return f"{where}: {message}" if where else message


class ApiError(Exception):
    """A request the server refuses: an HTTP status and a message for the client."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Limits:
    max_chars: int = 5000  # characters per text (LibreTranslate's default char limit)
    max_tokens: int = 400  # source tokens per text
    max_texts: int = 128  # texts per request
    max_body_bytes: int = 1_000_000  # request body
    batch_tokens: int = 4000  # source tokens per search batch across requests
    max_wait: float = 0.005  # seconds the batcher waits for company

    def check_texts(self, texts: Sequence[str]) -> None:
        if not texts:
            raise ApiError(400, "no text to translate: give one text or a non-empty list")
        _at_most(len(texts), self.max_texts, "texts in one request", "--max-texts")
        for i, text in enumerate(texts):
            _at_most(len(text), self.max_chars, f"characters in text {i}", "--max-chars")

    def check_tokens(self, ids: Sequence[Sequence[int]]) -> None:
        for i, x in enumerate(ids):
            _at_most(len(x), self.max_tokens, f"tokens in text {i}", "--max-tokens")


def _at_most(count: int, limit: int, what: str, flag: str) -> None:
    """413 when `count` of `what` is over the `limit` that `nmt serve FLAG` sets."""
    if count > limit:
        raise ApiError(413, f"{count} {what}; at most {limit} (nmt serve {flag})")


class BodyLimit:
    """ASGI middleware: a body over `limit` bytes is refused with 413, whether its
    Content-Length says so up front or its chunks add up to it. The body is read here
    (at most `limit` bytes are kept) and handed on whole."""

    def __init__(self, app, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers", [])).get(b"content-length", b"0")
        if declared.isdigit() and int(declared) > self.limit:
            return await self._refuse(send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                return await self._refuse(send)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as before

        await self.app(scope, replay, send)

    async def _refuse(self, send) -> None:
        message = f"the request body is over {self.limit} bytes (nmt serve --max-body-bytes)"
        body = json.dumps({"error": message}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
