"""Sources as token ids → hypotheses: batches by length, each searched as the decode
settings say (greedy, beam, or with constraints the constrained beam of
nmt.decode.constraints), for one model or an ensemble. `Translator` (nmt.decode.translate)
tokenizes around it."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from nmt.data.batching import batch_indices, collate
from nmt.decode.constraints import Phrases, constrained_beam_search
from nmt.decode.ensemble import Ensemble
from nmt.decode.search import Hypothesis, beam_search, greedy_search, max_output_lengths
from nmt.model.seq2seq import Seq2Seq
from nmt.recipe.schema import DecodeConfig


@torch.no_grad()
def decode_ids(
    model: Seq2Seq | Ensemble,
    src_ids: Sequence[Sequence[int]],
    decode: DecodeConfig,
    device: torch.device,
    nbest: int = 1,
    return_attention: bool = False,
    progress: Callable[[int], None] | None = None,
    constraints: Sequence[Phrases] | None = None,
) -> list[list[Hypothesis]]:
    """Search every source (a list of ids); an empty source gets no hypotheses. `model`:
    one model or an ensemble (anything with `encode` and `step`). `progress(n)` hears of
    each batch's n sentences when they are done (and of the empty ones first).

    `constraints`: one list of phrases (target ids) per source, which its hypotheses must
    hold. A batch where no source has any is searched exactly as without them; one where
    some do goes through `constrained_beam_search`, whatever `decode.beam_size`."""
    model.eval()
    results: list[list[Hypothesis]] = [[] for _ in src_ids]
    todo = [i for i, ids in enumerate(src_ids) if len(ids) > 0]
    if progress is not None and len(todo) < len(src_ids):
        progress(len(src_ids) - len(todo))  # the empty ones are done: they get nothing
    lengths = [len(src_ids[i]) for i in todo]
    for chunk in batch_indices(lengths, None, decode.batch_tokens):
        rows = [todo[j] for j in chunk]
        batch = collate(src_ids, None, rows).to(device)
        state = model.encode(batch.src, batch.src_lengths)
        max_lengths = max_output_lengths(
            batch.src_lengths.to(device), decode.max_length_ratio, decode.max_length_offset
        )
        options = {
            "min_length": decode.min_length,
            "normalization": decode.length_normalization,
            "length_penalty": decode.length_penalty,
            "return_attention": return_attention,
            "coverage_beta": decode.coverage_penalty,
            "src_lengths": batch.src_lengths,
        }
        wanted = [constraints[r] for r in rows] if constraints is not None else []
        if any(wanted):
            hyps = constrained_beam_search(
                model.step, state, max_lengths, decode.beam_size, wanted, nbest, **options
            )
        elif decode.beam_size == 1:
            hyps = greedy_search(model.step, state, max_lengths, **options)
        else:
            hyps = beam_search(model.step, state, max_lengths, decode.beam_size, nbest, **options)
        for row, found in zip(rows, hyps, strict=True):
            for h in found:  # the batch pads sources: keep this sentence's own columns
                if h.attention is not None:
                    h.attention = h.attention[:, : len(src_ids[row])]
            results[row] = found
        if progress is not None:
            progress(len(rows))
    return results
