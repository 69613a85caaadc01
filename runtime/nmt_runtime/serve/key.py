"""The server's --api-key: every route but the open ones wants the key, before anything else.

    OPEN         /, /health, /languages: the page, a load balancer's probe, and the list
                 LibreTranslate's clients fetch before they know of any key
    /translate   LibreTranslate's clients may send the key in the body (`api_key`), so that
                 route checks it itself: right after reading the body, before validating it
    the rest     /api/translate, /models, /docs, /redoc, /openapi.json and any later route:
                 `KeyGate` checks the X-API-Key or Bearer header before the body is read

The key is checked before the body is validated, so a client without it learns nothing of
the request schema from the errors, and compared in constant time, as bytes: a header's
own bytes, a body field's UTF-8 (lone surrogates included, so they are a 403, not a 500).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from nmt_runtime.serve.limits import refuse

OPEN = frozenset({"/", "/health", "/languages"})
BODY_KEYED = frozenset({"/translate"})
REFUSAL = "invalid or missing API key: send it as X-API-Key or api_key"


def header_key(headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    """The key a request's raw ASGI headers carry: X-API-Key, else a Bearer token."""
    found = dict((name.lower(), value) for name, value in headers)
    if b"x-api-key" in found:
        return found[b"x-api-key"]
    bearer = found.get(b"authorization", b"")
    return bearer[7:] if bearer[:7].lower() == b"bearer " else None


def key_matches(given: bytes | str | None, key: str) -> bool:
    """Whether `given` (raw header bytes or a body field) is `key`, in constant time."""
    if given is None:
        return False
    if isinstance(given, str):
        given = given.encode("utf-8", "surrogatepass")
    return hmac.compare_digest(given, key.encode("utf-8", "surrogatepass"))


class KeyGate:
    """ASGI middleware: with a key set, a request to a route that is neither `OPEN` nor
    `BODY_KEYED` gets 403 unless its headers carry the key; its body is never read, and the
    connection is closed."""

    def __init__(self, app, key: str | None):
        self.app = app
        self.key = key

    async def __call__(self, scope, receive, send):
        if (
            scope["type"] != "http"
            or self.key is None
            or scope["path"] in OPEN | BODY_KEYED
            or key_matches(header_key(scope["headers"]), self.key)
        ):
            return await self.app(scope, receive, send)
        await refuse(send, 403, REFUSAL)
