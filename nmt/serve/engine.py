"""A trained model behind the server's `Engine` interface (nmt_runtime.serve.engine), and
the choice between it and an exported directory's engine.

    engine = load_engine([Path("runs/quickstart")], device="cpu")       # TorchEngine
    engine = load_engine([Path("exported/quickstart")], threads=2)       # RuntimeEngine
    app = nmt_runtime.serve.app.create_app([engine], Limits())

`TorchEngine` serves nmt.decode's Translator (a model directory, or several as an
ensemble), with what only it has: the coverage penalty, word alignments from the
attention, terminology constraints (a request's `constraints`, one list of phrases per
text: its plan is `constrained` when any text has a phrase, so such requests batch apart,
their items (source ids, constraint ids)) and UNK replacement (the request's
`replace_unk`, else the recipe's decode.replace_unk, so LibreTranslate's route follows the
recipe: each item then carries its text, `Sourced`, which nmt.decode.unk copies words
from after the search). An exported directory is served by nmt_runtime's engine, which
refuses those by name. The server raises nmt_runtime's UserError; `runtime_errors` turns
it into nmt's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from nmt.decode.alignment import pharaoh
from nmt.decode.ensemble import attends
from nmt.decode.translate import Translator
from nmt.decode.unk import check_settings, replace_unks
from nmt.device import Precision
from nmt.errors import UserError
from nmt.recipe.schema import MAX_BEAM
from nmt.store.exported import INSTALL, exported_model
from nmt.store.layout import RESULTS
from nmt_runtime.errors import UserError as RuntimeUserError
from nmt_runtime.serve.engine import Engine, Plan, translation_result
from nmt_runtime.serve.schema import ModelInfo, TranslationResult


class Sourced(NamedTuple):
    """A batch item of a plan with decode.replace_unk: the item as it would be without
    (source ids, or (source ids, constraint ids)) and the text it came from, whose words
    replace the `<unk>`s (search_ids has only ids)."""

    item: Any
    text: str


@contextlib.contextmanager
def runtime_errors() -> Iterator[None]:
    """nmt_runtime's UserError (the server's, the runtime's) raised as nmt's, which the CLI
    reports in one line."""
    try:
        yield
    except RuntimeUserError as error:
        raise UserError(str(error)) from None


@contextlib.contextmanager
def _refused() -> Iterator[None]:
    """nmt's UserError raised as nmt_runtime's: what the server answers with a 400."""
    try:
        yield
    except UserError as error:
        raise RuntimeUserError(str(error)) from None


class TorchEngine:
    """A model (or an ensemble) under a name, served through PyTorch."""

    max_beam = MAX_BEAM

    def __init__(
        self,
        name: str,
        translator: Translator,
        directories: list[Path],
        results: dict[str, Any] | None = None,
    ):
        self.name = name
        self.translator = translator
        self.directories = directories
        self.results = results

    @classmethod
    def load(
        cls,
        dirs: str | Path | Sequence[str | Path],
        name: str | None = None,
        device: str = "auto",
        precision: Precision = "fp32",
    ) -> TorchEngine:
        paths = [Path(dirs)] if isinstance(dirs, (str, Path)) else [Path(d) for d in dirs]
        translator = Translator.load(paths, device, precision)
        # the recipe's decode.unk_dictionary read now: a missing file fails `nmt serve`, not
        # every request
        check_settings(translator.recipe.decode, attends(translator.model))
        results_file = paths[0] / RESULTS
        results = json.loads(results_file.read_text()) if results_file.is_file() else None
        return cls(name or paths[0].name, translator, paths, results)

    @property
    def source(self) -> str:
        return self.translator.recipe.data.source_lang

    @property
    def target(self) -> str:
        return self.translator.recipe.data.target_lang

    @property
    def beam_size(self) -> int:
        return self.translator.recipe.decode.beam_size

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

    def plan(self, nbest: int, attention: bool, options: Mapping[str, Any]) -> Plan:
        """The request's decode settings (`Translator.decode_config`: None keeps the
        recipe's), checked; `alignment` searches with attention, which it comes from;
        `constraints` (their phrases checked here, their count in `items`) need a beam;
        `replace_unk` (None: the recipe's) searches with attention, which it copies by."""
        overrides = dict(options)
        alignment = bool(overrides.pop("alignment", False))
        phrases = overrides.pop("constraints", None)
        with _refused():
            constrained = phrases is not None and any(self._constraint_ids(phrases))
            settings = self.translator.decode_config(**overrides)
            if alignment and not attends(self.translator.model):
                raise UserError("alignment comes from attention, and this model has none")
            searched = attention or alignment or settings.replace_unk
            settings = self.translator.search_settings(
                nbest, searched, constrained=constrained, settings=settings
            )
        return Plan(settings, nbest, searched, settings.max_input_length, constrained)

    def _constraint_ids(
        self, phrases: Sequence[Any], texts: int | None = None
    ) -> list[list[list[int]]]:
        """A request's constraints (one list of phrases per text, as `options()` gives
        them) as target ids (`Translator.constraint_ids`, which checks the count)."""
        lists = [c for c in phrases if not isinstance(c, str)]
        if len(lists) < len(phrases):
            raise UserError("constraints: a list of texts takes one list of phrases each")
        return self.translator.constraint_ids(lists, texts)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return self.translator.encode(texts)

    def items(
        self, texts: Sequence[str], ids: list[list[int]], plan: Plan, options: Mapping[str, Any]
    ) -> list[Any]:
        """The source ids, or with a constrained plan (source ids, constraint ids) pairs; a
        request's constraints must be one list per text even when none holds a phrase. With
        decode.replace_unk each is `Sourced` with its text."""
        phrases = options.get("constraints")
        found: list[Any] = ids
        if phrases is not None:
            with _refused():
                wanted = self._constraint_ids(phrases, len(ids))
            found = list(zip(ids, wanted, strict=True)) if plan.constrained else ids
        if plan.settings.replace_unk:
            return [Sourced(item, text) for item, text in zip(found, texts, strict=True)]
        return found

    def search(self, items: list[Any], plan: Plan) -> list[list[Any]]:
        """One search over the joined requests' items (`items`); with decode.replace_unk,
        each `<unk>` then replaced from its text (nmt.decode.unk, the recipe's dictionary)."""
        settings, nbest, attention = plan.settings, plan.nbest, plan.attention
        texts = None
        if settings.replace_unk:
            texts, items = [i.text for i in items], [i.item for i in items]
        if not plan.constrained:
            found = self.translator.search_ids(items, settings, nbest, attention)
        else:
            sources, constraints = [i for i, _ in items], [c for _, c in items]
            found = self.translator.search_ids(
                sources, settings, nbest, attention, None, constraints
            )
        if texts is None:
            return found
        return replace_unks(found, texts, settings, self.translator)

    def result(
        self, found: list[Any], attention: bool, options: Mapping[str, Any]
    ) -> TranslationResult:
        """The server's answer, with the best translation's Pharaoh alignment if asked."""
        words = None
        if options.get("alignment"):
            words = pharaoh(found[0].alignment or []) if found else ""
        return translation_result(found, attention, words)


def load_engine(
    dirs: Sequence[Path],
    name: str | None = None,
    device: str = "auto",
    precision: Precision = "fp32",
    threads: int | None = None,
) -> Engine:
    """The engine serving `dirs` under `name`: nmt_runtime's for an exported directory (on
    the CPU, at the precision it was exported with, `threads` per operator), a TorchEngine
    for model directories (several: an ensemble)."""
    first = exported_model(
        dirs,
        device,
        precision,
        "--ensemble: --model {first} is an exported directory, which is served alone",
    )
    if first is None:
        return TorchEngine.load(dirs, name, device, precision)
    try:
        import onnxruntime  # noqa: F401
    except ImportError as e:
        raise UserError(
            f"--model {first}: serving an exported directory needs {e.name}, which is not "
            f"installed: {INSTALL}"
        ) from None
    from nmt_runtime.serve.engine import RuntimeEngine

    with runtime_errors():
        return RuntimeEngine.load(first, name, threads)
