"""Scores users can trust: sacreBLEU's BLEU, chrF and TER, each with its signature.

Scores are computed on detokenized text against the raw reference, as sacreBLEU intends,
so they compare across toolkits. `compare` runs sacreBLEU's paired bootstrap resampling
(Koehn 2004), with ties counted, to say whether one system's lead over another is more
than luck, and `perplexity` measures how well a model predicts a reference translation.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from sacrebleu.metrics import BLEU, CHRF, TER
from sacrebleu.metrics.base import Metric

from nmt.errors import UserError

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
