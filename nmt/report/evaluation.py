"""What `nmt evaluate` reports: files of translations, or a model's, scored against the
references (nmt.metrics: sacreBLEU's BLEU, chrF and TER, the paired bootstrap), and a
model's perplexity on them.

    score_files       a hypothesis file (and maybe a baseline's) against the references
    score_model       a model translates the sources with its decode settings; then as above
    file_perplexity   how well a model predicts the references given the sources
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from nmt.data.corpus import length_filter, read_aligned
from nmt.decode.scoring import mean_nll, perplexity
from nmt.decode.settings import decode_summary
from nmt.decode.translate import Translator
from nmt.errors import UserError
from nmt.events import Event
from nmt.metrics import check_metrics, compare, score
from nmt.progress import Tracker
from nmt.recipe.schema import DecodeConfig


def score_files(
    hypothesis: Path,
    reference: Path,
    metrics: Sequence[str] = ("bleu", "chrf", "ter"),
    baseline: Path | None = None,
) -> dict[str, Any]:
    """What `nmt evaluate bleu HYP --reference REF [--compare OTHER]` reports."""
    check_metrics(metrics)
    hyps, refs = read_aligned(hypothesis, reference, purpose="score")
    return _report(hyps, refs, reference, metrics, baseline, None)


def score_model(
    translator: Translator,
    source: Path,
    reference: Path,
    metrics: Sequence[str] = ("bleu", "chrf", "ter"),
    baseline: Path | None = None,
    on_event: Callable[[Event], None] = lambda event: None,
    settings: DecodeConfig | None = None,
) -> dict[str, Any]:
    """Translate `source` with `settings` (default: the recipe's; `Translator.decode_config`
    makes others) and score it; the translating is reported as a `Phase` to `on_event`.

    The report carries the translations under "hypotheses", and under "truncated" how
    many sources decode.max_input_length cut.
    """
    check_metrics(metrics, translator.recipe.data.target_lang)
    sources, refs = read_aligned(source, reference, purpose="score")
    settings = translator.decode_config(settings)
    start, cut_before = time.perf_counter(), translator.truncated
    with Tracker(on_event, "translating", len(sources), "lines") as tracker:
        hyps = translator.translate(sources, progress=tracker.advance, settings=settings)
    seconds = time.perf_counter() - start
    lang = translator.recipe.data.target_lang
    return {
        **_report(hyps, refs, reference, metrics, baseline, lang),
        "decode": decode_summary(settings),
        "truncated": translator.truncated - cut_before,  # sources cut to max_input_length
        "translate_seconds": round(seconds, 3),
        "hypotheses": hyps,
    }


def _report(
    hyps: list[str],
    refs: list[str],
    reference: Path,
    metrics: Sequence[str],
    baseline: Path | None,
    target_lang: str | None,
) -> dict[str, Any]:
    report: dict[str, Any] = {"sentences": len(hyps), **score(hyps, refs, metrics, target_lang)}
    if baseline is not None:
        other, _ = read_aligned(baseline, reference, purpose="score")
        found = compare(hyps, other, refs, metrics, target_lang)
        report["compare"] = {"baseline": str(baseline), **found}
    return report


def file_perplexity(translator: Translator, source: Path, reference: Path) -> dict[str, Any]:
    """Per-token cross-entropy (nats) and perplexity of the reference file given the source
    file (`nmt evaluate perplexity`; nmt.decode.scoring computes them for ids)."""
    sources, refs = read_aligned(source, reference, purpose="score")
    src_ids = translator.encode(sources)
    tgt_ids = translator.tgt_tokenizer.encode(refs)
    keep = length_filter([len(x) for x in src_ids], [len(y) for y in tgt_ids]).keep
    if not keep:
        raise UserError(f"{source}: no line pairs with text on both sides")
    nll, tokens = mean_nll(
        translator.model,
        [src_ids[i] for i in keep],
        [tgt_ids[i] for i in keep],
        translator.recipe.decode.batch_tokens,
        translator.device,
    )
    return {
        "sentences": len(keep),
        "skipped_empty": len(sources) - len(keep),
        "tokens": tokens,
        "cross_entropy": round(nll, 4),
        "perplexity": round(perplexity(nll), 3),
    }
