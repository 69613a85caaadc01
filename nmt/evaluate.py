"""Scores users can trust: sacreBLEU's BLEU, chrF and TER, each with its signature.

Scores are computed on detokenized text against the raw reference, as sacreBLEU intends,
so they compare across toolkits. `compare` runs sacreBLEU's paired bootstrap resampling
(Koehn 2004), with ties counted, to say whether one system's lead over another is more
than luck, and `perplexity` measures how well a model predicts a reference translation.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sacrebleu.metrics import BLEU, CHRF, TER
from sacrebleu.metrics.base import Metric

from nmt import loss
from nmt.config import DecodeConfig
from nmt.corpus import length_filter, read_aligned
from nmt.errors import UserError
from nmt.events import Event
from nmt.progress import Tracker
from nmt.translate import Translator

METRICS: dict[str, type[Metric]] = {"bleu": BLEU, "chrf": CHRF, "ter": TER}


def _metric(name: str, target_lang: str | None) -> Metric:
    if name not in METRICS:
        raise UserError(f"unknown metric {name!r}; choose from {', '.join(METRICS)}")
    if name != "bleu":
        return METRICS[name]()
    try:  # BLEU's tokenizer depends on the target language (zh, ja, ko need their own)
        return BLEU(trg_lang=target_lang or "")
    except RuntimeError as e:  # e.g. ja without MeCab: sacreBLEU names the extra to install
        raise UserError(f"sacreBLEU cannot score {target_lang}: {e}") from None


def check_metrics(metrics: Sequence[str], target_lang: str | None = None) -> None:
    """Fail on an unknown or unusable metric before any training, translating or scoring."""
    if not metrics:
        raise UserError("no metric to compute; choose from " + ", ".join(METRICS))
    for name in metrics:
        _metric(name, target_lang)


def score(
    hypotheses: Sequence[str],
    references: Sequence[str],
    metrics: Sequence[str] = ("bleu", "chrf", "ter"),
    target_lang: str | None = None,
) -> dict[str, dict[str, Any]]:
    """{metric: {score, signature, text}} for one system against one reference."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    out = {}
    for name in metrics:
        metric = _metric(name, target_lang)
        result = metric.corpus_score(list(hypotheses), [list(references)])
        out[name] = {
            "score": round(result.score, 2),
            "signature": str(metric.get_signature()),
            "text": str(result),
        }
    return out


def compare(
    hypotheses: Sequence[str],
    baseline: Sequence[str],
    references: Sequence[str],
    metrics: Sequence[str] = ("bleu",),
    target_lang: str | None = None,
    samples: int = 1000,
) -> dict[str, dict[str, Any]]:
    """Paired bootstrap resampling (Koehn 2004): {metric: {score, baseline, p_value, signature}}.

    The resamples are sacreBLEU's: `samples` draws of the line numbers with replacement,
    from numpy's default_rng seeded by SACREBLEU_SEED (12345 unless set), so reruns agree.
    The statistic is sacreBLEU's too: each resample's |system − baseline| less their mean
    (what "no real difference" would leave), against the observed |system − baseline|.
    p_value = (k + 1) / (samples + 1), k the resamples that reach the observed difference
    or tie it. sacreBLEU counts only those beyond it, so two identical outputs (every
    difference exactly 0) got k = 0 and p = 1/1001, "significant"; here they get 1. Where
    no resample ties, the p-value is sacreBLEU's `--paired-bs` one exactly. Two-sided: a
    small p says the systems differ, in the direction the scores show; it is never 0.
    """
    refs = [list(references)]
    draws, seed = _resamples(len(refs[0]), samples)
    out = {}
    for name in metrics:
        metric = _metric(name, target_lang)
        system, system_scores = _resampled(metric, hypotheses, refs, draws)
        base, base_scores = _resampled(metric, baseline, refs, draws)
        lead = np.abs(system_scores - base_scores)  # (samples,)
        ties_or_more = int(np.sum(lead - lead.mean() >= abs(system - base)))
        signature = metric.get_signature()
        signature.update("seed", seed)
        signature.update("bs", samples)
        out[name] = {
            "score": round(system, 2),
            "baseline": round(base, 2),
            "p_value": (ties_or_more + 1) / (samples + 1),
            "signature": str(signature),
        }
    return out


def _resamples(lines: int, samples: int) -> tuple[np.ndarray, str]:
    """(samples, lines) line numbers drawn as sacreBLEU's PairedTest draws them, and the seed
    as its signature writes it ("none": fresh entropy; sacreBLEU treats 0 the same way)."""
    seed = os.environ.get("SACREBLEU_SEED", "12345")
    if seed.lower() == "none":
        value = None
    else:
        try:
            value = int(seed)
        except ValueError:
            raise UserError(f"SACREBLEU_SEED={seed}: give an integer, or none") from None
    rng = np.random.default_rng(value or None)
    return rng.choice(lines, size=(samples, lines), replace=True), str(value).lower()


def _resampled(
    metric: Metric, hyps: Sequence[str], refs: list[list[str]], draws: np.ndarray
) -> tuple[float, np.ndarray]:
    """The corpus score and the score of each resample (samples,), from the per-line
    sufficient statistics, as sacreBLEU's own paired bootstrap computes them."""
    stats = metric._extract_corpus_statistics(list(hyps), refs)
    whole = metric._aggregate_and_compute(stats).score
    per_line = np.array(stats, dtype="float32")  # (lines, statistics)
    scores = [metric._compute_score_from_stats(s.sum(0)).score for s in per_line[draws]]
    return whole, np.array(scores)


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
    **decode: Any,
) -> dict[str, Any]:
    """Translate `source` with the decode settings (recipe's, overridden) and score it;
    the translating is reported as a `Phase` to `on_event`.

    The report carries the translations under "hypotheses", and under "truncated" how
    many sources decode.max_input_length cut.
    """
    check_metrics(metrics, translator.recipe.data.target_lang)
    sources, refs = read_aligned(source, reference, purpose="score")
    settings = translator.decode_config(**decode)
    start, cut_before = time.perf_counter(), translator.truncated
    with Tracker(on_event, "translating", len(sources), "lines") as tracker:
        hyps = translator.translate(sources, progress=tracker.advance, **decode)
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


def decode_summary(settings: DecodeConfig) -> dict[str, Any]:
    """The decode settings that change a score, to print beside it: the length penalty
    only where it is used (length_normalization gnmt)."""
    keys = [
        "beam_size",
        "length_normalization",
        "length_penalty",
        "min_length",
        "max_length_ratio",
        "max_length_offset",
        "max_input_length",
    ]
    if settings.length_normalization != "gnmt":
        keys.remove("length_penalty")
    return {k: getattr(settings, k) for k in keys}


def perplexity(translator: Translator, source: Path, reference: Path) -> dict[str, Any]:
    """Per-token cross-entropy (nats) and perplexity of the reference given the source."""
    sources, refs = read_aligned(source, reference, purpose="score")
    src_ids = translator.encode(sources)
    tgt_ids = translator.tgt_tokenizer.encode(refs)
    keep = length_filter([len(x) for x in src_ids], [len(y) for y in tgt_ids]).keep
    if not keep:
        raise UserError(f"{source}: no line pairs with text on both sides")
    nll, tokens = loss.mean_nll(
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
        "perplexity": round(loss.perplexity(nll), 3),
    }
