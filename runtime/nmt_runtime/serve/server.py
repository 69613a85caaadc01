"""The served models and the request logic behind the server, apart from HTTP (the routes
are nmt_runtime.serve.app's, LibreTranslate's nmt_runtime.serve.libre's).

`Server` holds the served models (each an `Engine`, nmt_runtime.serve.engine), the limits,
the API key and the `Batcher`: `authorize` checks the key, `named` / `for_pair` pick a model
(the first one serving a language pair unless a request names one), `prepare` checks a
request (sizes, language pair, the engine's `plan` of its search: a 4xx `ApiError` on
failure) into a `Prepared` search keyed by `SearchKey` (model and plan, so that the batcher
joins requests that share them) over the engine's `items` (source ids, with constraints
their constraint ids too, with replace_unk their texts), and `run` searches a batch of them
with the engine's `search`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from nmt_runtime.errors import UserError
from nmt_runtime.serve.batcher import Batcher, BatcherStopped
from nmt_runtime.serve.engine import Engine, Plan
from nmt_runtime.serve.key import REFUSAL, header_key, key_matches
from nmt_runtime.serve.limits import ApiError, Limits


@dataclass(frozen=True)
class SearchKey:
    """What must be equal for two requests to share a search batch."""

    model: str
    plan: Plan


@dataclass
class Prepared:
    key: SearchKey
    items: list[Any]  # the engine's: source ids, (source ids, constraint ids) pairs, ...
    tokens: int


class Server:
    """The routes' shared state: the served models, the limits, the key, the batcher."""

    def __init__(self, models: Sequence[Engine], limits: Limits, api_key: str | None):
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
        """The key from a body field (`given`), X-API-Key or a Bearer header, or a 403; for
        the routes that `KeyGate` leaves to themselves (nmt_runtime.serve.key)."""
        if self.api_key is None or key_matches(given, self.api_key):
            return
        if not key_matches(header_key(request.scope["headers"]), self.api_key):
            raise ApiError(403, REFUSAL)

    def named(self, name: str | None) -> Engine:
        """The model a request names, or the only one served (nmt's API)."""
        if name is not None:
            if name not in self.models:
                raise ApiError(404, f"no model named {name!r}; GET /models lists {self._names()}")
            return self.models[name]
        if len(self.models) > 1:
            raise ApiError(400, f"several models fit; name one of {self._names()} as model")
        return next(iter(self.models.values()))

    def for_pair(self, name: str | None, source: str, target: str) -> Engine:
        """The model named, which must translate source ("auto": any) → target; else the
        first served one (in --model order) that does: LibreTranslate's clients name none."""
        if name is not None:
            served = self.named(name)
            if source in ("auto", served.source) and target == served.target:
                return served
            raise ApiError(
                400, f"model {name!r} translates {served.source}→{served.target}, "
                f"not {source}→{target}; GET /models lists each model's pair"
            )  # fmt: skip
        for served in self.models.values():
            if source in ("auto", served.source) and target == served.target:
                return served
        pairs = ", ".join(f"{m.source}→{m.target}" for m in self.models.values())
        raise ApiError(400, f"{source}→{target} is not served; this server does {pairs}")

    def _names(self) -> str:
        return ", ".join(self.models)

    def prepare(
        self,
        engine: Engine,
        texts: list[str],
        nbest: int,
        attention: bool,
        options: Mapping[str, Any],
    ) -> Prepared:
        """A request checked against the limits and the model, as source ids, to be searched
        as the engine plans it with the request's decode `options` (constraints: one list of
        phrases per text); ApiError if not."""
        self.limits.check_texts(texts)
        beam = options.get("beam_size") or engine.beam_size
        if nbest > beam:
            raise ApiError(400, f"nbest {nbest} needs beam_size {nbest} or more")
        try:
            plan = engine.plan(nbest, attention, options)
        except UserError as error:  # a setting out of range, one the model lacks, ...
            raise ApiError(400, str(error)) from None
        ids = engine.encode(texts)
        self.limits.check_tokens(ids)
        self.limits.check_model_tokens(ids, plan.max_input_length, engine.name)
        try:
            items = engine.items(texts, ids, plan, options)
        except UserError as error:  # e.g. a list of constraints per text, but not as many
            raise ApiError(400, str(error)) from None
        return Prepared(SearchKey(engine.name, plan), items, sum(map(len, ids)))

    async def search(self, prepared: Prepared) -> list[list[Any]]:
        """The request's translations from the batcher; 503 at once if its worker is gone."""
        assert self.batcher is not None, "the server has not started"
        try:
            return await self.batcher.submit(prepared.key, prepared.items, prepared.tokens)
        except BatcherStopped as error:
            raise ApiError(503, f"{error}; restart {self.limits.command}") from None

    def run(self, key: SearchKey, items: list[Any]) -> list[list[Any]]:
        """The batcher's work: one search over the joined requests' items (worker thread)."""
        return self.models[key.model].search(items, key.plan)
