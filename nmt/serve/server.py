"""The models and the request logic behind `nmt serve`, apart from HTTP (the routes are
nmt.serve.app's, LibreTranslate's nmt.serve.libre's).

`Served` is one loaded model: its name, languages, decode defaults and scores
(`Served.load(dir)`, `info()` for GET /models). `Server` holds the served models, the
limits, the API key and the `Batcher`: `authorize` checks the key, `named` / `for_pair`
pick a model (the first one serving a language pair unless a request names one),
`prepare` checks a request (sizes, language pair, search settings: a 4xx `ApiError` on
failure) into a `Prepared` search keyed by `SearchKey` (model and settings, so that the
batcher joins requests that share them), and `run` searches a batch of source ids with
`Translator.search_ids`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request

from nmt.decode.alignment import pharaoh
from nmt.decode.ensemble import attends
from nmt.decode.translate import Translation, Translator
from nmt.decode.unk import replace_unks
from nmt.errors import UserError
from nmt.recipe.schema import DecodeConfig
from nmt.serve.batcher import Batcher, BatcherStopped
from nmt.serve.key import REFUSAL, header_key, key_matches
from nmt.serve.limits import (
    ApiError,
    Limits,
)
from nmt.serve.schema import (
    Alternative,
    ModelInfo,
    TranslationResult,
)
from nmt.store.layout import RESULTS


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
        results_file = paths[0] / RESULTS
        results = json.loads(results_file.read_text()) if results_file.is_file() else None
        return cls(name or paths[0].name, translator, paths, results)

    def decode_config(self, **overrides: object) -> DecodeConfig:
        """This model's decode settings with a request's overrides (`Translator.decode_config`:
        None keeps the recipe's); a 400 naming the setting that is out of range."""
        try:
            return self.translator.decode_config(**overrides)
        except UserError as error:
            raise ApiError(400, str(error)) from None

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
    texts: list[str]  # the sources, for decode.replace_unk (search_ids has only their ids)


def _result(
    found: list[Translation], attention: bool = True, alignment: bool = False
) -> TranslationResult:
    """One text's answer: the best translation, the others as alternatives; its attention
    if asked (searched for an alignment too, and then left out unless asked)."""
    if not found:  # an empty text
        return TranslationResult(
            text="",
            score=None,
            alternatives=[],
            source_pieces=[],
            target_pieces=[],
            alignment="" if alignment else None,
        )
    best = found[0]
    return TranslationResult(
        text=best.text,
        score=best.score,
        alternatives=[Alternative(text=t.text, score=t.score) for t in found[1:]],
        source_pieces=best.source_pieces,
        target_pieces=best.target_pieces,
        attention=best.attention if attention else None,
        alignment=pharaoh(best.alignment or []) if alignment else None,
    )


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
        """The key from a body field (`given`), X-API-Key or a Bearer header, or a 403; for
        the routes that `KeyGate` leaves to themselves (nmt.serve.key)."""
        if self.api_key is None or key_matches(given, self.api_key):
            return
        if not key_matches(header_key(request.scope["headers"]), self.api_key):
            raise ApiError(403, REFUSAL)

    def named(self, name: str | None) -> Served:
        """The model a request names, or the only one served (nmt's API)."""
        if name is not None:
            if name not in self.models:
                raise ApiError(404, f"no model named {name!r}; GET /models lists {self._names()}")
            return self.models[name]
        if len(self.models) > 1:
            raise ApiError(400, f"several models fit; name one of {self._names()} as model")
        return next(iter(self.models.values()))

    def for_pair(self, name: str | None, source: str, target: str) -> Served:
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
        served: Served,
        texts: list[str],
        nbest: int,
        attention: bool,
        settings: DecodeConfig,
    ) -> Prepared:
        """A request checked against the limits and the model, as source ids, to be searched
        with `settings` (`Served.decode_config`); ApiError if not."""
        self.limits.check_texts(texts)
        translator = served.translator
        if nbest > settings.beam_size:
            raise ApiError(400, f"nbest {nbest} needs beam_size {nbest} or more")
        try:
            settings = translator.search_settings(nbest, attention, settings=settings)
        except UserError as error:  # e.g. attention asked of a model without any
            raise ApiError(400, str(error)) from None
        ids = translator.encode(texts)
        self.limits.check_tokens(ids)
        self.limits.check_model_tokens(ids, settings.max_input_length, served.name)
        key = SearchKey(served.name, settings, nbest, attention or settings.replace_unk)
        return Prepared(key, ids, sum(map(len, ids)), texts)

    async def search(self, prepared: Prepared) -> list[list[Translation]]:
        """The request's translations from the batcher; 503 at once if its worker is gone."""
        assert self.batcher is not None, "the server has not started"
        try:
            found = await self.batcher.submit(prepared.key, prepared.ids, prepared.tokens)
        except BatcherStopped as error:
            raise ApiError(503, f"{error}; restart nmt serve") from None
        key = prepared.key  # with decode.replace_unk, the <unk>s replaced (nmt.decode.unk)
        return replace_unks(found, prepared.texts, key.settings, self.models[key.model].translator)

    def run(self, key: SearchKey, ids: list[list[int]]) -> list[list[Translation]]:
        """The batcher's work: one search over the joined requests (worker thread)."""
        translator = self.models[key.model].translator
        return translator.search_ids(ids, key.settings, key.nbest, key.attention)
