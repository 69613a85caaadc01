"""What the server needs of a translator (`Engine`), and the runtime's own (`RuntimeEngine`).

The server (nmt_runtime.serve: app, Server, batcher, limits, LibreTranslate) knows models
only through this interface, so one server runs an exported directory without PyTorch
(`RuntimeEngine`, here) and a trained model with it (nmt.serve.engine.TorchEngine):

    name, source, target      what requests call it, and its language pair
    max_beam, beam_size       the widest beam it takes, and its default beam
    info()                    GET /models's entry (schema.ModelInfo)
    plan(nbest, attention, options) -> Plan
                              a request's search, checked: `options` are the request's
                              decode fields (schema.TranslateRequest.options(): None or
                              False is "not asked"); raises UserError (nmt_runtime.errors)
                              for what it refuses, which the server answers as a 400
    encode(texts)             source ids, whole (the server refuses what is too long)
    items(texts, ids, plan, options)
                              one request's items for the batcher: its source ids, or with
                              per-text data (TorchEngine's constraints, `Plan.constrained`;
                              its texts, for replace_unk) each with its own; raises
                              UserError as `plan` does
    search(items, plan)       the batcher's work, on its thread, over the items of the
                              requests it joined: per source, the found translations
                              (text, score, source_pieces, target_pieces, attention), best
                              first; none for an empty source
    result(found, attention, options)
                              one text's answer (schema.TranslationResult)

A `Plan` is hashable: requests to one model with equal plans share a search batch.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from nmt_runtime.errors import UserError
from nmt_runtime.serve.schema import Alternative, ModelInfo, TranslationResult
from nmt_runtime.settings import MAX_BEAM


@dataclass(frozen=True)
class Plan:
    """A checked request's search: what must be equal for two requests to share a batch
    (with the model's name)."""

    settings: Hashable  # the engine's decode settings (frozen)
    nbest: int
    attention: bool  # searched with attention: asked, or needed for what the answer holds
    max_input_length: int | None  # the most source tokens the model reads (None: any)
    constrained: bool = False  # items are (source ids, constraint ids): batched apart


class Engine(Protocol):
    name: str
    source: str
    target: str
    max_beam: int
    beam_size: int

    def info(self) -> ModelInfo: ...

    def plan(self, nbest: int, attention: bool, options: Mapping[str, Any]) -> Plan: ...

    def encode(self, texts: Sequence[str]) -> list[list[int]]: ...

    def items(
        self, texts: Sequence[str], ids: list[list[int]], plan: Plan, options: Mapping[str, Any]
    ) -> list[Any]: ...

    def search(self, items: list[Any], plan: Plan) -> list[list[Any]]: ...

    def result(
        self, found: list[Any], attention: bool, options: Mapping[str, Any]
    ) -> TranslationResult: ...


def translation_result(
    found: list[Any], attention: bool, alignment: str | None = None
) -> TranslationResult:
    """One text's answer: the best translation, the others as alternatives, its attention
    if asked, and `alignment` (an engine's, when asked)."""
    if not found:  # an empty text
        return TranslationResult(
            text="",
            score=None,
            alternatives=[],
            source_pieces=[],
            target_pieces=[],
            alignment=alignment,
        )
    best = found[0]
    return TranslationResult(
        text=best.text,
        score=best.score,
        alternatives=[Alternative(text=t.text, score=t.score) for t in found[1:]],
        source_pieces=best.source_pieces,
        target_pieces=best.target_pieces,
        attention=best.attention if attention else None,
        alignment=alignment,
    )


def shown(value: Any) -> str:
    """A request's value as a message quotes it: 0.2, true, ["a", "b"] (a list as JSON, cut
    after 60 characters)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 60 else text[:57] + "..."
    return f"{value:g}" if isinstance(value, float) else str(value)


def asked(value: Any) -> bool:
    """Whether a request asks for a decode field: not None, false or 0, nor a list with
    nothing asked in it (constraints [] or [[], []]: none)."""
    if isinstance(value, list):
        return any(asked(v) for v in value)
    return bool(value)


class RuntimeEngine:
    """An exported directory (nmt export), served by nmt_runtime's Translator: no PyTorch.

    A decode field the runtime lacks (coverage_penalty, alignment, replace_unk, any later
    one that is no field of nmt_runtime.settings.DecodeSettings; constraints, unless they
    hold no phrase) is refused by name when asked, never ignored."""

    max_beam = MAX_BEAM

    def __init__(self, name: str, translator: Any, directory: Path):
        self.name = name
        self.translator = translator
        self.directory = directory
        self.source = translator.source_lang
        self.target = translator.target_lang

    @classmethod
    def load(
        cls, directory: str | Path, name: str | None = None, threads: int | None = None
    ) -> RuntimeEngine:
        """The exported `directory`, named by its folder unless `name` is given."""
        from nmt_runtime.translator import Translator

        path = Path(directory)
        return cls(name or path.name, Translator.load(path, threads=threads), path)

    @property
    def beam_size(self) -> int:
        return self.translator.decode.beam_size

    def info(self) -> ModelInfo:
        return ModelInfo(
            name=self.name,
            source=self.source,
            target=self.target,
            directories=[str(self.directory)],
            attention=any(m.attention for m in self.translator.models),
            decode=dataclasses.asdict(self.translator.decode),
            results=None,
        )

    def plan(self, nbest: int, attention: bool, options: Mapping[str, Any]) -> Plan:
        known = {f.name for f in dataclasses.fields(self.translator.decode)}
        for field, value in options.items():
            if field not in known and asked(value):
                raise UserError(
                    f"{field} {shown(value)}: the exported model {self.name!r} (nmt_runtime) "
                    f"has no {field}; serve its model directory with nmt serve, or leave "
                    f"{field} out"
                )
        chosen = {k: v for k, v in options.items() if k in known}
        settings = self.translator.search_settings(nbest, attention, **chosen)
        return Plan(settings, nbest, attention, settings.max_input_length)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return self.translator.encode(texts)

    def items(
        self, texts: Sequence[str], ids: list[list[int]], plan: Plan, options: Mapping[str, Any]
    ) -> list[Any]:
        return ids

    def search(self, items: list[Any], plan: Plan) -> list[list[Any]]:
        return self.translator.search_ids(items, plan.settings, plan.nbest, plan.attention)

    def result(
        self, found: list[Any], attention: bool, options: Mapping[str, Any]
    ) -> TranslationResult:
        return translation_result(found, attention)
