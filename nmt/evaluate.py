"""Scores users can trust: sacreBLEU's BLEU, chrF and TER, each with its signature.

Scores are computed on detokenized text against the raw reference, as sacreBLEU intends,
so they compare across toolkits. `compare` runs sacreBLEU's paired bootstrap resampling
(Koehn 2004) to say whether one system's lead over another is more than luck, and
`perplexity` measures how well a model predicts a reference translation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sacrebleu.metrics import BLEU, CHRF, TER
from sacrebleu.metrics.base import Metric
from sacrebleu.significance import PairedTest

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
    """Paired bootstrap resampling: {metric: {score, baseline, p_value, signature}}.

    p_value is the chance of seeing the hypotheses' lead (or more) if both systems were
    equally good; sacreBLEU fixes its seed (SACREBLEU_SEED) so reruns agree.
    """
    test = PairedTest(
        [("baseline", list(baseline)), ("system", list(hypotheses))],
        {name: _metric(name, target_lang) for name in metrics},
        [list(references)],
        test_type="bs",
        n_samples=samples,
    )
    signatures, results = test()
    out = {}
    for name, key in zip(metrics, list(results)[1:], strict=True):
        base, system = results[key]
        out[name] = {
            "score": round(system.score, 2),
            "baseline": round(base.score, 2),
            "p_value": system.p_value,
            "signature": str(signatures[key]),
        }
    return out


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
