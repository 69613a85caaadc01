"""Model directory + lines of text → lines of translation, in order.

    from nmt import Translator
    translator = Translator.load("runs/quickstart")
    translator.translate(["three red dogs sleep"], beam_size=5)

Lines are tokenized, sorted by length into batches of about `decode.batch_tokens` source
tokens, searched, and put back in input order; an empty line gives an empty line.
`data.max_length` filters training pairs only and never cuts a source. What does is
`decode.max_input_length` (300 tokens unless the recipe says otherwise; null: never): the
search's time and memory grow with the source's length, and a line of a million
characters would otherwise take minutes and gigabytes. The lines it cuts are counted in
`Translator.truncated` and located in `Translator.truncated_lines`. The trainer decodes
its valid and test sets through the same `Translator`.

Decode settings are a `DecodeConfig` (nmt.recipe.schema), the recipe's `decode:` section
unless a call passes another as `settings=`. Each call may also name some of its fields as
keywords, e.g. `translate(lines, beam_size=1)`: `Translator.decode_config` puts them in,
checked as a recipe's decode keys are (name, type and rule), and everything below it is
handed the resulting `DecodeConfig`.

Several model directories make an ensemble (nmt.decode.ensemble): the mean of the models'
probabilities at every step, with the first model's recipe for the decode settings:

    Translator.load(["runs/luong", "runs/bahdanau"]).translate(lines)
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from nmt.data.tokenizer import Tokenizer, load_tokenizers
from nmt.decode.alignment import align_pieces
from nmt.decode.batched import decode_ids
from nmt.decode.ensemble import Ensemble, attends, check_same_vocabulary
from nmt.decode.scoring import check_pairs, sentence_log_probs
from nmt.decode.search import Hypothesis
from nmt.decode.unk import check_settings, replace_unks
from nmt.device import Precision, make_autocast, pick_device
from nmt.errors import UserError
from nmt.model.seq2seq import Seq2Seq, build_model, quantize_int8
from nmt.recipe.load import load_recipe, override_decode
from nmt.recipe.schema import DecodeConfig, Recipe
from nmt.store import checkpoint, layout
from nmt.vocab import UNK

CUT_LINES_KEPT = 100  # line numbers of cut sources a Translator remembers (it counts all)


@dataclass
class _Member:
    """A model directory's recipe and tokenizers, read before any weights."""

    model_dir: Path
    recipe: Recipe
    src_tok: Tokenizer
    tgt_tok: Tokenizer

    @classmethod
    def read(cls, model_dir: Path) -> _Member:
        recipe = load_recipe(layout.check_model_dir(model_dir, "--model"))
        return cls(model_dir, recipe, *load_tokenizers(recipe.tokenizer, model_dir))

    def load_model(self, target: torch.device, precision: Precision) -> Seq2Seq:
        """The weights, shapes checked first, on `target`; int8-quantized if asked."""
        weights = self.model_dir / layout.WEIGHTS
        sizes = self.recipe.model, self.src_tok.vocab_size, self.tgt_tok.vocab_size
        with torch.device("meta"):  # shapes only: no memory for a recipe.yaml edited huge
            checkpoint.check_shapes(weights, build_model(*sizes))
        model = build_model(*sizes)
        checkpoint.load_weights(weights, model, target)
        return quantize_int8(model) if precision == "int8" else model


@dataclass
class Translation:
    text: str
    score: float  # length-normalized log-probability
    source_pieces: list[str]
    target_pieces: list[str]  # without </s>
    attention: list[list[float]] | None = None  # (target pieces + </s>) × source pieces
    # (source word, target word) per target word, from the attention (nmt.decode.alignment)
    alignment: list[tuple[int, int]] | None = None
    target_ids: list[int] | None = None  # the ids of target_pieces (for decode.replace_unk)


class Translator:
    """A trained model (or an ensemble), its tokenizers and decode settings, ready to
    translate. For an ensemble, `recipe` is the first model's: it gives the decode
    settings and the target language."""

    def __init__(
        self,
        model: Seq2Seq | Ensemble,
        recipe: Recipe,
        src_tokenizer: Tokenizer,
        tgt_tokenizer: Tokenizer,
        device: torch.device,
        precision: Precision = "fp32",
    ):
        self.model = model.to(device).eval()
        self.recipe = recipe
        self.src_tokenizer = src_tokenizer
        self.tgt_tokenizer = tgt_tokenizer
        self.device = device
        self.precision = precision
        self.autocast = make_autocast(precision, device)  # bf16: matrix products in bf16
        self.truncated = 0  # source lines cut to decode.max_input_length tokens so far
        # Where: the first CUT_LINES_KEPT of them, 0-based, counting every line this
        # Translator has encoded (so, for one input translated in order, its line numbers).
        self.truncated_lines: list[int] = []
        self.encoded_lines = 0

    @classmethod
    def load(
        cls,
        model_dir: str | Path | Sequence[str | Path],
        device: str = "auto",
        precision: Precision = "fp32",
    ) -> Translator:
        """A model directory, or several as an ensemble, ready to translate. `precision`:
        "fp32"; "bf16" autocast (fast on CPUs with AVX-512 BF16 or AMX, and on GPUs);
        "int8" dynamic quantization of the linear layers, CPU only (`quantize_int8`).

        An ensemble's models must share their tokenizers and target vocabulary (checked
        before any weights are read); the first one's recipe gives the decode settings.
        """
        dirs = [model_dir] if isinstance(model_dir, (str, Path)) else list(model_dir)
        if not dirs:
            raise UserError("no model directory given; name one with --model")
        members = [_Member.read(Path(d)) for d in dirs]
        first = members[0]
        for other in members[1:]:
            check_same_vocabulary(
                first.model_dir,
                (first.src_tok, first.tgt_tok),
                other.model_dir,
                (other.src_tok, other.tgt_tok),
            )
        target = pick_device(device)
        if precision == "int8" and target.type != "cpu":
            raise UserError("int8 decoding runs on the CPU only: add --device cpu")
        models = [m.load_model(target, precision) for m in members]
        model = models[0] if len(models) == 1 else Ensemble(models)
        return cls(model, first.recipe, first.src_tok, first.tgt_tok, target, precision)

    @property
    def size(self) -> int:
        """How many models translate: 1, or an ensemble's members."""
        return len(self.model.members) if isinstance(self.model, Ensemble) else 1

    def decode_config(
        self, settings: DecodeConfig | None = None, **overrides: object
    ) -> DecodeConfig:
        """The decode settings of one call: `settings` (default: the recipe's `decode:`
        section) with each keyword that is not None put in, all checked as a recipe's
        decode section is (`override_decode`): a name that is no `DecodeConfig` field, or
        a value of the wrong type or out of range, is a UserError naming it.

        The keywords are `DecodeConfig`'s fields (beam_size=5, length_penalty=1.0, ...),
        checked when called rather than typed: a keyword list typed for static checkers
        would repeat DecodeConfig's fields. A statically typed caller passes `settings`,
        e.g. `dataclasses.replace(translator.recipe.decode, beam_size=5)`. replace_unk=False
        turns the recipe's UNK replacement off with its dictionary (the JSON API's false).
        """
        base = self.recipe.decode if settings is None else settings
        if overrides.get("replace_unk") is False and overrides.get("unk_dictionary") is None:
            base = dataclasses.replace(base, unk_dictionary=None)  # off: no dictionary to read
        return override_decode(base, overrides, "decode options")

    def encode(self, lines: Sequence[str], limit: int | None = None) -> list[list[int]]:
        """Token ids per line, whole; with a `limit`, longer lines are cut, counted in
        `truncated` and located in `truncated_lines`."""
        ids = self.src_tokenizer.encode([line.strip() for line in lines])
        start, self.encoded_lines = self.encoded_lines, self.encoded_lines + len(ids)
        if limit is None:
            return ids
        cut = [i for i, x in enumerate(ids) if len(x) > limit]
        self.truncated += len(cut)
        room = CUT_LINES_KEPT - len(self.truncated_lines)
        self.truncated_lines += [start + i for i in cut[: max(room, 0)]]
        return [x[:limit] for x in ids]

    def stream(
        self,
        lines: Iterable[str],
        chunk: int = 1000,
        nbest: int = 1,
        attention: bool = False,
        *,
        settings: DecodeConfig | None = None,
        **overrides: object,
    ) -> Iterator[list[Translation]]:
        """`search` over an endless input, `chunk` lines at a time, in order."""
        chosen = self.search_settings(nbest, attention, settings=settings, **overrides)
        lines = iter(lines)  # checked before any line is read
        while batch := list(itertools.islice(lines, chunk)):
            src_ids = self.encode(batch, chosen.max_input_length)
            found = self.search_ids(src_ids, chosen, nbest, attention or chosen.replace_unk)
            yield from replace_unks(found, batch, chosen, self)

    def translate(
        self,
        lines: Sequence[str],
        progress: Callable[[int], None] | None = None,
        *,
        constraints: Sequence[Sequence[str]] | None = None,
        settings: DecodeConfig | None = None,
        **overrides: object,
    ) -> list[str]:
        """One translation per line, with `decode_config(settings, **overrides)`;
        `progress(n)` hears of every n lines done; `constraints` as `search` takes them."""
        found = self.search(
            lines, progress=progress, constraints=constraints, settings=settings, **overrides
        )
        return [best[0].text if best else "" for best in found]

    def search_settings(
        self,
        nbest: int = 1,
        attention: bool = False,
        *,
        constrained: bool = False,
        settings: DecodeConfig | None = None,
        **overrides: object,
    ) -> DecodeConfig:
        """Check a search request without running it (`constrained`: with constraints);
        return its decode settings (`decode_config(settings, **overrides)`)."""
        chosen = self.decode_config(settings, **overrides)
        if constrained and chosen.beam_size == 1:
            raise UserError(
                "--constraints need a beam search, and greedy search (beam size 1) would write "
                "every constraint first: give --beam 2 or more"
            )
        if attention and not attends(self.model):
            raise UserError(
                "this model has no attention to show (its model.attention is none)"
                if self.size == 1
                else "no model of this ensemble has attention to show (model.attention none)"
            )
        if chosen.coverage_penalty > 0 and not attends(self.model):
            raise UserError(
                f"--coverage-penalty {chosen.coverage_penalty:g} sums the attention each source "
                "word got, and this model has none (model.attention none): give 0"
            )
        check_settings(chosen, attends(self.model))  # decode.replace_unk, its dictionary
        if nbest < 1:
            raise UserError(f"--nbest {nbest}: give 1 or more translations per line")
        if nbest > chosen.beam_size:
            raise UserError(f"--nbest {nbest} needs a beam at least that wide (--beam {nbest})")
        return chosen

    def score(
        self, sources: Sequence[str], targets: Sequence[str], normalize: bool = False
    ) -> list[float]:
        """log p(target | source) of each pair, teacher-forced, </s> counted: the sum of
        its token log-probabilities, or with `normalize` their mean (per token). An
        ensemble scores with the mean of its members' probabilities, as it searches.
        Sources are scored whole (decode.max_input_length cuts translations only). Both
        sides of every pair need text: an empty line is a UserError naming it."""
        check_pairs(sources, targets)
        src_ids = self.encode(sources)
        tgt_ids = self.tgt_tokenizer.encode([line.strip() for line in targets])
        with self.autocast:
            found = sentence_log_probs(
                self.model, src_ids, tgt_ids, self.recipe.decode.batch_tokens, self.device
            )
        return [total / count if normalize else total for total, count in found]

    def search(
        self,
        lines: Sequence[str],
        nbest: int = 1,
        attention: bool = False,
        progress: Callable[[int], None] | None = None,
        *,
        constraints: Sequence[Sequence[str]] | None = None,
        settings: DecodeConfig | None = None,
        **overrides: object,
    ) -> list[list[Translation]]:
        """The `nbest` best translations of each line, with scores and, if asked, attention,
        searched with `decode_config(settings, **overrides)`. `constraints`: one list of
        phrases per line, each of which its translations hold (`constraint_ids`)."""
        wanted = None if constraints is None else self.constraint_ids(constraints, len(lines))
        chosen = self.search_settings(
            nbest, attention, constrained=any(wanted or []), settings=settings, **overrides
        )
        src_ids = self.encode(lines, chosen.max_input_length)
        searched = attention or chosen.replace_unk
        found = self.search_ids(src_ids, chosen, nbest, searched, progress, wanted)
        return replace_unks(found, lines, chosen, self)  # decode.replace_unk, if set

    def constraint_ids(
        self, constraints: Sequence[Sequence[str]], lines: int | None = None
    ) -> list[list[list[int]]]:
        """Each line's phrases as target ids (blank phrases left out), for `search_ids`.
        A phrase with a piece the model cannot write (<unk>), or a count of lines other
        than `lines`, is a UserError naming it."""
        if lines is not None and len(constraints) != lines:
            raise UserError(
                f"{len(constraints)} lines of constraints for {lines} lines to translate: "
                "give one (possibly empty) list of phrases per line"
            )
        out = []
        for n, phrases in enumerate(constraints, start=1):
            texts = [p.strip() for p in phrases if p.strip()]
            ids = self.tgt_tokenizer.encode(texts)
            for text, x in zip(texts, ids, strict=True):
                if UNK in x:
                    raise UserError(
                        f"constraint {text!r} (line {n}) has a piece this model never writes "
                        "(<unk> in its target vocabulary): give a phrase of known words"
                    )
            out.append([x for x in ids if x])
        return out

    def search_ids(
        self,
        src_ids: Sequence[Sequence[int]],
        settings: DecodeConfig,
        nbest: int = 1,
        attention: bool = False,
        progress: Callable[[int], None] | None = None,
        constraints: Sequence[Sequence[Sequence[int]]] | None = None,
    ) -> list[list[Translation]]:
        """`search` of sources already encoded, with settings from `search_settings` and
        constraints from `constraint_ids`."""
        with self.autocast:
            found = decode_ids(
                self.model, src_ids, settings, self.device, nbest, attention, progress, constraints
            )
        out = []
        for ids, hyps in zip(src_ids, found, strict=True):
            texts = self.tgt_tokenizer.decode([h.tokens for h in hyps]) if hyps else []
            src = self.src_tokenizer.pieces(ids)
            out.append([self._translation(t, h, src) for t, h in zip(texts, hyps, strict=True)])
        return out

    def _translation(self, text: str, h: Hypothesis, src_pieces: list[str]) -> Translation:
        """A hypothesis as a Translation; with attention, its word alignment too."""
        pieces = self.tgt_tokenizer.pieces(h.tokens)
        if h.attention is None:
            return Translation(text, h.score, src_pieces, pieces, target_ids=h.tokens)
        attention = h.attention.tolist()
        words = align_pieces(
            attention, (src_pieces, self.src_tokenizer), (pieces, self.tgt_tokenizer)
        )
        return Translation(text, h.score, src_pieces, pieces, attention, words, h.tokens)


def nbest_lines(index: int, found: list[Translation]) -> list[str]:
    """`INDEX<TAB>SCORE<TAB>TEXT` rows; an empty line's one translation is empty, and sure."""
    rows = [(t.score, t.text) for t in found] or [(0.0, "")]
    return [f"{index}\t{score:.4f}\t{text}\n" for score, text in rows]


def attention_record(index: int, best: Translation | None) -> str:
    """One JSON line: the source and target pieces and the attention between them."""
    return (
        json.dumps(
            {
                "line": index,
                "source": best.source_pieces if best else [],
                "target": [*best.target_pieces, "</s>"] if best else [],
                "attention": best.attention if best else [],
            },
            ensure_ascii=False,
        )
        + "\n"
    )
