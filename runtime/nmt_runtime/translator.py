"""An exported directory + lines of text → lines of translation, in order, without torch.

    from nmt_runtime import Translator
    translator = Translator.load("exported/quickstart", threads=2)
    translator.translate(["three red dogs sleep"], beam_size=5)

The same path as nmt's own Translator (nmt.decode.translate): lines are stripped and
tokenized, cut to `decode.max_input_length` tokens (counted in `truncated`, located in
`truncated_lines`), sorted by length into batches of about `decode.batch_tokens` source
tokens, searched, and put back in input order; an empty line gives an empty line.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nmt_runtime import manifest as manifest_file
from nmt_runtime import settings as decode_file
from nmt_runtime.errors import UserError
from nmt_runtime.search import Hypothesis, beam_search, greedy_search, max_output_lengths
from nmt_runtime.sessions import Model, Stepper, session_options
from nmt_runtime.settings import DecodeSettings
from nmt_runtime.tokenizer import PAD, Tokenizer, load_tokenizers

CUT_LINES_KEPT = 100  # line numbers of cut sources a Translator remembers (it counts all)
MAX_THREADS = 1024


@dataclass
class Translation:
    text: str
    score: float  # length-normalized log-probability
    source_pieces: list[str]
    target_pieces: list[str]  # without </s>
    attention: list[list[float]] | None = None  # (target pieces + </s>) × source pieces


def batch_indices(lengths: Sequence[int], batch_tokens: int) -> list[list[int]]:
    """Indices cut into batches of at most `batch_tokens` padded source tokens, shortest
    sources first (ties in input order), as nmt.data.batching cuts them for translating."""
    order = np.lexsort((np.arange(len(lengths)), np.asarray(lengths, dtype=np.int64)))
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order.tolist():
        size = int(lengths[i])
        if current and max(longest, size) * (len(current) + 1) > batch_tokens:
            batches.append(current)
            current, longest = [], 0
        current.append(i)
        longest = max(longest, size)
    if current:
        batches.append(current)
    return batches


def pad(rows: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Source ids (B, S) padded with <pad>, and their lengths (B,), int64."""
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    out = np.full((len(rows), int(lengths.max())), PAD, dtype=np.int64)
    for r, row in enumerate(rows):
        out[r, : len(row)] = row
    return out, lengths


class Translator:
    """An exported model (or ensemble), its tokenizers and decode defaults."""

    def __init__(
        self,
        manifest: manifest_file.Manifest,
        models: Sequence[Model],
        src_tokenizer: Tokenizer,
        tgt_tokenizer: Tokenizer,
        decode: DecodeSettings,
    ):
        self.manifest = manifest
        self.models = list(models)
        self.src_tokenizer = src_tokenizer
        self.tgt_tokenizer = tgt_tokenizer
        self.decode = decode
        self.source_lang = manifest.languages["source"]
        self.target_lang = manifest.languages["target"]
        self.precision = manifest.precision
        self.truncated = 0  # source lines cut to decode.max_input_length tokens so far
        self.truncated_lines: list[int] = []  # the first CUT_LINES_KEPT of them, 0-based
        self.encoded_lines = 0

    @classmethod
    def load(
        cls, model_dir: str | Path, threads: int | None = None, verify: bool = True
    ) -> Translator:
        """The exported directory `model_dir`, ready to translate. `threads`: CPU threads
        for each operator (None: onnxruntime's default); `verify`: check every file's
        sha256 against the manifest first."""
        if threads is not None and not 1 <= threads <= MAX_THREADS:
            raise UserError(f"--threads {threads}: give 1 to {MAX_THREADS} threads")
        manifest = manifest_file.read(model_dir, verify)
        options = session_options(threads)
        models = [Model(graphs, options) for graphs in manifest.models]
        src, tgt = load_tokenizers(manifest.directory, manifest.tokenizer)
        decode = decode_file.read(manifest.directory / manifest_file.DECODE)
        return cls(manifest, models, src, tgt, decode)

    @property
    def size(self) -> int:
        """How many models translate: 1, or an ensemble's members."""
        return len(self.models)

    def decode_config(self, settings: Any = None, **options: Any) -> Any:
        """The decode settings of one call: `settings` (default: the exported defaults)
        with the given options (those not None) replaced, as nmt's Translator does."""
        return (self.decode if settings is None else settings).replace(**options)

    def search_settings(
        self, nbest: int = 1, attention: bool = False, *, settings: Any = None, **options: Any
    ) -> Any:
        """Check a search request without running it; return its decode settings."""
        settings = self.decode_config(settings, **options)
        if attention and not any(m.attention for m in self.models):
            raise UserError("this model has no attention to show (its model.attention is none)")
        if nbest < 1:
            raise UserError(f"--nbest {nbest}: give 1 or more translations per line")
        if nbest > settings.beam_size:
            raise UserError(f"--nbest {nbest} needs a beam at least that wide (--beam {nbest})")
        return settings

    def encode(self, lines: Sequence[str], limit: int | None = None) -> list[list[int]]:
        """Token ids per line, whole; with a `limit`, longer lines are cut and counted."""
        ids = self.src_tokenizer.encode([line.strip() for line in lines])
        start, self.encoded_lines = self.encoded_lines, self.encoded_lines + len(ids)
        if limit is None:
            return ids
        cut = [i for i, x in enumerate(ids) if len(x) > limit]
        self.truncated += len(cut)
        room = CUT_LINES_KEPT - len(self.truncated_lines)
        self.truncated_lines += [start + i for i in cut[: max(room, 0)]]
        return [x[:limit] for x in ids]

    def translate(
        self,
        lines: Sequence[str],
        progress: Callable[[int], None] | None = None,
        *,
        settings: Any = None,
        **options: Any,
    ) -> list[str]:
        """One translation per line. Keyword arguments override the decode defaults
        (beam_size, length_normalization, length_penalty, min_length, ...)."""
        found = self.search(lines, progress=progress, settings=settings, **options)
        return [best[0].text if best else "" for best in found]

    def stream(
        self,
        lines: Iterable[str],
        chunk: int = 1000,
        nbest: int = 1,
        attention: bool = False,
        *,
        settings: Any = None,
        **options: Any,
    ) -> Iterator[list[Translation]]:
        """`search` over an endless input, `chunk` lines at a time, in order."""
        settings = self.search_settings(nbest, attention, settings=settings, **options)
        lines = iter(lines)  # the settings were checked before anything was read
        while batch := list(itertools.islice(lines, chunk)):
            yield from self.search(batch, nbest, attention, settings=settings)

    def search(
        self,
        lines: Sequence[str],
        nbest: int = 1,
        attention: bool = False,
        progress: Callable[[int], None] | None = None,
        *,
        settings: Any = None,
        **options: Any,
    ) -> list[list[Translation]]:
        """The `nbest` best translations of each line, with scores and, if asked, attention."""
        settings = self.search_settings(nbest, attention, settings=settings, **options)
        src_ids = self.encode(lines, settings.max_input_length)
        return self.search_ids(src_ids, settings, nbest, attention, progress)

    def search_ids(
        self,
        src_ids: Sequence[Sequence[int]],
        settings: Any,
        nbest: int = 1,
        attention: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> list[list[Translation]]:
        """`search` of sources already encoded, with settings from `search_settings`."""
        found = self.decode_ids(src_ids, settings, nbest, attention, progress)
        out = []
        for ids, hyps in zip(src_ids, found, strict=True):
            texts = self.tgt_tokenizer.decode([h.tokens for h in hyps]) if hyps else []
            src_pieces = self.src_tokenizer.pieces(ids)
            out.append(
                [
                    Translation(
                        text,
                        h.score,
                        src_pieces,
                        self.tgt_tokenizer.pieces(h.tokens),
                        None if h.attention is None else h.attention.tolist(),
                    )
                    for text, h in zip(texts, hyps, strict=True)
                ]
            )
        return out

    def decode_ids(
        self,
        src_ids: Sequence[Sequence[int]],
        settings: Any,
        nbest: int = 1,
        return_attention: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> list[list[Hypothesis]]:
        """Search every source (a list of ids); an empty source gets no hypotheses."""
        results: list[list[Hypothesis]] = [[] for _ in src_ids]
        todo = [i for i, ids in enumerate(src_ids) if len(ids) > 0]
        if progress is not None and len(todo) < len(src_ids):
            progress(len(src_ids) - len(todo))  # the empty ones are done: they get nothing
        for chunk in batch_indices([len(src_ids[i]) for i in todo], settings.batch_tokens):
            rows = [todo[j] for j in chunk]
            src, lengths = pad([src_ids[i] for i in rows])
            stepper = Stepper(self.models, src, lengths)
            max_lengths = max_output_lengths(
                lengths, settings.max_length_ratio, settings.max_length_offset
            )
            common = {
                "min_length": settings.min_length,
                "normalization": settings.length_normalization,
                "length_penalty": settings.length_penalty,
                "return_attention": return_attention,
            }
            if settings.beam_size == 1:
                hyps = greedy_search(stepper, max_lengths, **common)
            else:
                stepper.expand(settings.beam_size)
                hyps = beam_search(stepper, max_lengths, settings.beam_size, nbest, **common)
            for row, found in zip(rows, hyps, strict=True):
                for h in found:  # the batch pads sources: keep this sentence's own columns
                    if h.attention is not None:
                        h.attention = h.attention[:, : len(src_ids[row])]
                results[row] = found
            if progress is not None:
                progress(len(rows))
        return results
