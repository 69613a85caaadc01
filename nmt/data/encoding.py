"""Text to token ids in worker processes, chunk by chunk, in order (`encode_chunks`).

A prepared dataset (nmt.data.dataset) is encoded in chunks of CHUNK pairs. With
workers > 1 the chunks go to that many processes (START_METHOD; each rebuilds the
tokenizers from their bytes) and come back in the order they went, at most 2 × workers
chunks in flight, so the arrays written do not depend on the number of workers and
memory does not grow with the corpus. One worker, or a single chunk, encodes in this process.
"""

from __future__ import annotations

import itertools
import multiprocessing
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor

import numpy as np

from nmt.data.ragged import Ragged
from nmt.data.tokenizer import SentencePieceTokenizer, TargetSubset, Tokenizer, WordTokenizer

CHUNK = 10_000  # pairs per chunk: a worker's unit of work, and a progress report's
# Forked on Linux, as PyTorch's DataLoader workers are: a spawned worker imports the
# caller's main module again, which runs a script without an `if __name__ == "__main__"`
# guard (nmt.train(...) at its top level) once more. The workers use the tokenizers and
# numpy only, never torch. Elsewhere fork is unsafe (macOS) or absent: spawn.
START_METHOD = "fork" if sys.platform.startswith("linux") else "spawn"

Chunk = tuple[list[str], list[str]]  # source and target lines
Spec = tuple  # a tokenizer as plain data a worker rebuilds it from (_spec)


def _spec(tok: Tokenizer) -> Spec:
    if isinstance(tok, TargetSubset):
        return ("subset", _spec(tok.inner), tok.kept)
    if isinstance(tok, SentencePieceTokenizer):
        return ("sentencepiece", tok.model_proto)
    return ("word", tok.words)


def _built(spec: Spec) -> Tokenizer:
    if spec[0] == "subset":
        inner = _built(spec[1])
        assert not isinstance(inner, TargetSubset)
        return TargetSubset(inner, spec[2])
    return SentencePieceTokenizer(spec[1]) if spec[0] == "sentencepiece" else WordTokenizer(spec[1])


_WORKER: tuple[Tokenizer, Tokenizer, np.dtype] | None = None  # in a worker process


def _start_worker(src: Spec, tgt: Spec, dtype: str) -> None:
    global _WORKER
    src_tok = _built(src)
    _WORKER = (src_tok, src_tok if tgt == src else _built(tgt), np.dtype(dtype))


def _encode_in_worker(chunk: Chunk) -> tuple[Ragged, Ragged]:
    assert _WORKER is not None
    return encode_chunk(chunk, *_WORKER)


def encode_chunk(
    chunk: Chunk, src_tok: Tokenizer, tgt_tok: Tokenizer, dtype: np.dtype
) -> tuple[Ragged, Ragged]:
    """One chunk's source and target ids as `dtype` rows."""
    src, tgt = chunk
    return Ragged.from_rows(src_tok.encode(src), dtype), Ragged.from_rows(
        tgt_tok.encode(tgt), dtype
    )


def encode_chunks(
    chunks: Iterable[Chunk],
    src_tok: Tokenizer,
    tgt_tok: Tokenizer,
    dtype: np.dtype,
    workers: int,
) -> Iterator[tuple[Ragged, Ragged]]:
    """Each chunk's (source, target) ids, in the chunks' order, whatever `workers` is."""
    chunks = iter(chunks)
    first = next(chunks, None)
    if first is None:
        return
    second = next(chunks, None)
    if workers <= 1 or second is None:
        for chunk in itertools.chain([first], [] if second is None else [second], chunks):
            yield encode_chunk(chunk, src_tok, tgt_tok, dtype)
        return
    specs = (_spec(src_tok), _spec(tgt_tok), dtype.str)
    context = multiprocessing.get_context(START_METHOD)
    with ProcessPoolExecutor(workers, context, _start_worker, specs) as pool:
        pending: deque[Future] = deque()
        for chunk in itertools.chain([first, second], chunks):  # read as chunks go out
            pending.append(pool.submit(_encode_in_worker, chunk))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
