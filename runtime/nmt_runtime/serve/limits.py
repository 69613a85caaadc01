"""What one request may ask of the server, and the one-line errors when it asks too much.

A server must survive its clients: a body of a gigabyte, ten thousand texts, a text of a
million characters or tokens, a body that never finishes arriving, JSON nested a hundred
thousand deep or holding lone surrogates. Each limit is checked before any search, and
breaking one is a 4xx naming the limit and the server flag that raises it (`nmt serve` and
`nmt-runtime serve` share the flags; `Limits.command` names the one running). The limits
themselves are bounded too: a flag out of its range is a `UserError` naming it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import from_json

from nmt_runtime.errors import UserError


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


def parse_json(body: bytes) -> Any:
    """The body as JSON, read strictly: invalid UTF-8, lone surrogates (which no tokenizer
    can encode), NaN and Infinity, and nesting past pydantic-core's depth limit (~200; the
    standard library's parser recurses until RecursionError) are each a 400."""
    try:
        return from_json(body or b"null", allow_inf_nan=False)
    except ValueError as error:
        raise ApiError(400, f"the body is not valid JSON: {error}") from None


Body = TypeVar("Body", bound=BaseModel)


def validated(model: type[Body], data: Any) -> Body:
    """`data` as a `model`, or a 400 naming the first field at fault."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ApiError(400, validation_message(error.errors())) from None


# field: (its server flag, lowest, highest in the flag's unit, flag units per field unit)
BOUNDS: dict[str, tuple[str, float, float, int]] = {
    "max_chars": ("--max-chars", 1, 1_000_000, 1),
    "max_tokens": ("--max-tokens", 1, 100_000, 1),
    "max_texts": ("--max-texts", 1, 100_000, 1),
    "max_body_bytes": ("--max-body-bytes", 1, 1 << 30, 1),
    "batch_tokens": ("--batch-tokens", 1, 10_000_000, 1),
    "max_wait": ("--max-wait-ms", 0, 10_000, 1000),
    "request_timeout": ("--request-timeout", 0.1, 3600, 1),
}


@dataclass(frozen=True)
class Limits:
    """What one request may ask; each value within `BOUNDS` (UserError naming the flag)."""

    max_chars: int = 5000  # characters per text (LibreTranslate's default char limit)
    max_tokens: int = 400  # source tokens per text
    max_texts: int = 128  # texts per request
    max_body_bytes: int = 1_000_000  # request body
    batch_tokens: int = 4000  # source tokens per search batch across requests
    max_wait: float = 0.005  # seconds the batcher waits for company
    request_timeout: float = 30.0  # seconds for a request's whole body to arrive
    command: str = "nmt serve"  # what the messages call the server: nmt-runtime serve too

    def __post_init__(self) -> None:
        for name, (flag, low, high, scale) in BOUNDS.items():
            value = getattr(self, name) * scale
            if not low <= value <= high:  # false for nan too
                raise UserError(f"{flag} {_shown(value)}: give a number in {low}..{high}")

    def check_texts(self, texts: Sequence[str]) -> None:
        if not texts:
            raise ApiError(400, "no text to translate: give one text or a non-empty list")
        self._at_most(len(texts), self.max_texts, "texts in one request", "--max-texts")
        for i, text in enumerate(texts):
            self._at_most(len(text), self.max_chars, f"characters in text {i}", "--max-chars")

    def check_tokens(self, ids: Sequence[Sequence[int]]) -> None:
        for i, x in enumerate(ids):
            self._at_most(len(x), self.max_tokens, f"tokens in text {i}", "--max-tokens")

    def _at_most(self, count: int, limit: int, what: str, flag: str) -> None:
        """413 when `count` of `what` is over the `limit` that the server's FLAG sets."""
        if count > limit:
            raise ApiError(413, f"{count} {what}; at most {limit} ({self.command} {flag})")

    @staticmethod
    def check_model_tokens(ids: Sequence[Sequence[int]], cap: int | None, model: str) -> None:
        """413 for a text longer than the model reads (its decode.max_input_length): a
        server answers for the whole text or refuses it, never translates a cut one."""
        for i, x in enumerate(ids):
            if cap is not None and len(x) > cap:
                raise ApiError(
                    413, f"{len(x)} tokens in text {i}; model {model!r} reads at most {cap} "
                    "(its decode.max_input_length): split the text"
                )  # fmt: skip


def _shown(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


class BodyLimit:
    """ASGI middleware: a body over `limit` bytes is refused with 413, whether its
    Content-Length says so up front or its chunks add up to it; a body not all there
    `timeout` seconds after the request began is refused with 408, so that slow or stalled
    clients do not hold a connection and their partial bodies for ever (uvicorn itself
    never times out a body). Both close the connection. The body is read here (at most
    `limit` bytes are kept) and handed on whole."""

    def __init__(self, app, limit: int, timeout: float, command: str = "nmt serve"):
        self.app = app
        self.limit = limit
        self.timeout = timeout
        self.command = command

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers", [])).get(b"content-length", b"0")
        if declared.isdigit() and int(declared) > self.limit:
            return await refuse(send, 413, self._too_big())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        chunks, size = [], 0
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0))
            except asyncio.TimeoutError:
                return await refuse(send, 408, self._too_slow())
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                return await refuse(send, 413, self._too_big())
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

    def _too_big(self) -> str:
        return f"the request body is over {self.limit} bytes ({self.command} --max-body-bytes)"

    def _too_slow(self) -> str:
        return (
            f"the request body did not arrive within {_shown(self.timeout)} s "
            f"({self.command} --request-timeout)"
        )


async def refuse(send, status: int, message: str) -> None:
    """Answer `{"error": message}` with `status` and close the connection (the rest of the
    body is never read)."""
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
