"""Quality by source length: BLEU and chrF per length bucket, for several systems at once
(the shape of Bahdanau et al. 2015's Figure 2: without attention, quality falls as
sentences grow).

    report = score_by_length(sources, references, {"luong": hyps_a, "none": hyps_b}, "en")

Length is the source's number of whitespace-separated words. Bucket edges are quantiles
of the lengths, so each bucket holds about as many sentences; a bucket with fewer than
`min_size` sentences joins its neighbour, because corpus BLEU over a handful of
sentences says little. Every bucket reports how many sentences it holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nmt.errors import UserError
from nmt.metrics import score


def length_buckets(lengths: Sequence[int], count: int = 6, min_size: int = 30) -> list[range]:
    """Contiguous ranges of lengths covering all of `lengths`, each holding at least
    `min_size` of them (unless there are fewer in all), about `count` of them."""
    if not lengths:
        return []
    ordered = sorted(lengths)
    n = len(ordered)
    cuts = sorted({ordered[n * k // count] for k in range(1, count)} - {ordered[0]})
    edges = [ordered[0], *cuts, ordered[-1] + 1]
    ranges = [range(lo, hi) for lo, hi in zip(edges, edges[1:], strict=False)]
    sizes = [sum(1 for x in ordered if x in r) for r in ranges]
    i = 0
    while len(ranges) > 1 and i < len(ranges):
        if sizes[i] >= min_size:
            i += 1
            continue
        j = i + 1 if i + 1 < len(ranges) else i - 1  # join the next one (the last: the one before)
        lo, hi = min(ranges[i].start, ranges[j].start), max(ranges[i].stop, ranges[j].stop)
        keep, drop = min(i, j), max(i, j)
        ranges[keep], sizes[keep] = range(lo, hi), sizes[i] + sizes[j]
        del ranges[drop], sizes[drop]
        i = keep
    return ranges


def score_by_length(
    sources: Sequence[str],
    references: Sequence[str],
    systems: Mapping[str, Sequence[str]],
    target_lang: str | None = None,
    count: int = 6,
    min_size: int = 30,
) -> dict[str, Any]:
    """{"buckets": [{"lengths": [lo, hi], "sentences": n, "scores": {system: {bleu,
    chrf}}}], "signature": {...}}: each system scored on each bucket's sentences."""
    for name, hyps in systems.items():
        if len(hyps) != len(sources):
            raise UserError(f"{name} has {len(hyps)} lines but the source has {len(sources)}")
    if len(references) != len(sources):
        raise UserError(f"{len(references)} references but {len(sources)} source lines")
    lengths = [len(s.split()) for s in sources]
    buckets, signature = [], {}
    for r in length_buckets(lengths, count, min_size):
        rows = [i for i, n in enumerate(lengths) if n in r]
        refs = [references[i] for i in rows]
        scores = {}
        for name, hyps in systems.items():
            found = score([hyps[i] for i in rows], refs, ["bleu", "chrf"], target_lang)
            scores[name] = {metric: found[metric]["score"] for metric in found}
            signature = {metric: found[metric]["signature"] for metric in found}
        buckets.append({"lengths": [r.start, r.stop - 1], "sentences": len(rows), "scores": scores})
    return {"buckets": buckets, "signature": signature}


def span(lengths: Sequence[int]) -> str:
    """'7–8', or '9' for a bucket of one length."""
    low, high = lengths
    return str(low) if low == high else f"{low}–{high}"


def plot_by_length(
    report: dict[str, Any], path: Path, metric: str = "bleu", label: str | None = None
) -> None:
    """One line per system: `metric` against the bucket's source lengths, as an image in
    the format `path`'s suffix names (PNG without one). Written as nmt.store.files writes every
    file (only a regular file is replaced); a failure is a UserError naming `label`."""
    from nmt.decode.figure import pyplot
    from nmt.report.plot import image_format, save_figure

    label = label or str(path)
    image = image_format(path, label, "the by-length plot")
    plt = pyplot("the by-length plot")
    buckets = report["buckets"]
    labels = [f"{span(b['lengths'])}\n({b['sentences']})" for b in buckets]
    fig, ax = plt.subplots(figsize=(1.2 * len(buckets) + 2, 4))
    for name in buckets[0]["scores"] if buckets else []:
        ax.plot(range(len(buckets)), [b["scores"][name][metric] for b in buckets], marker="o",
                label=name)  # fmt: skip
    ax.set_xticks(range(len(buckets)), labels)
    ax.set_xlabel("source length in words (sentences)")
    ax.set_ylabel(metric.upper() if metric == "bleu" else "chrF")
    ax.set_title(f"{'BLEU' if metric == 'bleu' else 'chrF'} by source length")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    try:
        save_figure(fig, path, label, image)
    finally:
        plt.close(fig)
