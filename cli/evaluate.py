"""`nmt evaluate bleu`, `nmt evaluate perplexity` and `nmt evaluate score`."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from nmt.cli.by_length import by_length, echo_buckets
from nmt.cli.errors import user_errors
from nmt.cli.help import Command, new_app
from nmt.cli.options import (
    Beam,
    CoveragePenalty,
    Device,
    DeviceOption,
    Greedy,
    LengthNormalization,
    LengthPenalty,
    MinLength,
    Models,
    Precision,
    PrecisionOption,
    ReplaceUnk,
    Threads,
    UnkDictionary,
    check_not_an_input,
    check_output,
    cut_warning,
    decode_overrides,
    file_status,
    unk_overrides,
    use_threads,
)
from nmt.cli.progress import Renderer
from nmt.data.corpus import read_aligned, read_lines
from nmt.decode.scoring import check_pairs
from nmt.decode.translate import Translator
from nmt.errors import UserError
from nmt.export.loaded import load_translator
from nmt.report import evaluation as ev
from nmt.report.by_length import score_by_length
from nmt.store.files import atomic_output, same_file

app = new_app(
    help="Score translations: BLEU, chrF, TER, significance, perplexity, by length, "
    "log-probability per line."
)
app.command("by-length", cls=Command)(by_length)


def _print_scores(report: dict[str, Any], metrics: list[str]) -> None:
    for name in metrics:
        typer.echo(f"{report[name]['text']}\n    {report[name]['signature']}")
    if "decode" in report:
        settings = ", ".join(f"{k}={v}" for k, v in report["decode"].items())
        typer.echo(
            f"decode: {settings} ({report['translate_seconds']:.1f} s{_ensemble_note(report)})"
        )
    if "compare" in report:
        typer.echo(f"paired bootstrap resampling against {report['compare']['baseline']}:")
        for name in metrics:
            c = report["compare"][name]
            typer.echo(
                f"    {name}: {c['score']:.2f} vs {c['baseline']:.2f}, "
                f"p = {c['p_value']:.4f}   {c['signature']}"
            )


def _check_files(
    hypothesis: Path | None,
    reference: Path,
    source: Path | None,
    compare: Path | None,
    output: Path | None,
) -> None:
    """Refuse, before any work, a comparison of a system with itself and an --output that
    would overwrite a file being read."""
    if hypothesis is not None and compare is not None:
        hyp, other = file_status(hypothesis), file_status(compare)
        if hyp is not None and other is not None and same_file(hyp, other):
            raise UserError(
                f"--compare {compare} is the same file as the hypothesis {hypothesis}: "
                "comparing a system with itself says nothing; give another system's output"
            )
    named = [("--source", source), ("--reference", reference), ("--compare", compare)]
    inputs = [(f"{flag} {path}", file_status(path)) for flag, path in named if path is not None]
    check_not_an_input(output, "--output", inputs)
    check_output(output, "--output")  # after: an input is named as such, not as a hard link


def _check_systems(
    hypothesis: Path | None, model: list[Path] | None, source: Path | None, by_length: bool
) -> None:
    """One system to score: a hypothesis file, or --model translating --source."""
    if (hypothesis is None) == (model is None) or (model is not None and source is None):
        raise UserError("give either HYPOTHESIS, or --model and --source (not both)")
    if source is None and by_length:
        raise UserError("--by-length needs --source: its sentences' lengths make the buckets")
    if hypothesis is not None and source is not None and not by_length:
        raise UserError("--source goes with --model, or with --by-length (for the buckets)")


@app.command(cls=Command)
@user_errors
def bleu(
    hypothesis: Annotated[
        Path | None,
        typer.Argument(
            metavar="HYPOTHESES", help="Translations to score (or use --model and --source)."
        ),
    ] = None,
    reference: Annotated[
        Path, typer.Option("--reference", "-r", help="Reference translations.")
    ] = ...,  # type: ignore[assignment]
    model: Annotated[
        list[Path] | None,
        typer.Option(
            "--model",
            "-m",
            metavar="<dir>",
            help="Translate --source with this model; more than once: an ensemble of them "
            "(the mean of their probabilities; decode settings from the first model's recipe "
            "unless a flag overrides them).",
        ),
    ] = None,
    source: Annotated[Path | None, typer.Option("--source", "-s", help="Text for --model.")] = None,
    metrics: Annotated[
        str, typer.Option(help="Comma-separated: bleu, chrf, ter.")
    ] = "bleu,chrf,ter",
    compare: Annotated[
        Path | None, typer.Option(help="Other system's output: paired bootstrap test against it.")
    ] = None,
    beam: Beam = None,
    greedy: Greedy = False,
    length_normalization: LengthNormalization = None,
    length_penalty: LengthPenalty = None,
    coverage_penalty: CoveragePenalty = None,
    min_length: MinLength = None,
    replace_unk: ReplaceUnk = False,
    unk_dictionary: UnkDictionary = None,
    output: Annotated[
        Path | None, typer.Option(help="With --model: save the translations.")
    ] = None,
    device: DeviceOption = Device.auto,
    threads: Threads = None,
    precision: PrecisionOption = Precision.fp32,
    by_length: Annotated[
        bool,
        typer.Option(
            "--by-length",
            help="Also BLEU and chrF per source-length bucket of "
            "--source (`nmt evaluate by-length` compares several systems).",
        ),
    ] = False,  # fmt: skip
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Score a file of translations, or translate --source with --model and score that."""
    use_threads(threads)
    names = [m.strip().lower() for m in metrics.split(",") if m.strip()]
    model = model or None  # no --model at all
    _check_systems(hypothesis, model, source, by_length)
    decode = decode_overrides(
        beam, greedy, length_normalization, length_penalty, min_length, coverage_penalty
    )
    decode |= unk_overrides(replace_unk, unk_dictionary)
    if model is None and (output is not None or greedy or any(decode.values())):
        raise UserError("--output and the decode options apply only with --model")
    _check_files(hypothesis, reference, source, compare, output)
    if model is not None:
        translator = load_translator(model, device.value, precision.value, threads)
        settings = translator.decode_config(**decode)
        with contextlib.ExitStack() as files:  # opened first: a bad --output fails fast
            out = files.enter_context(atomic_output(output, "--output")) if output else None
            renderer = files.enter_context(contextlib.closing(Renderer()))
            report = ev.score_model(
                translator, source, reference, names, compare, renderer.render, settings
            )
            hyps = report.pop("hypotheses")
            if len(model) > 1:
                report["ensemble"] = [str(m) for m in model]
            if out is not None:  # renamed over an older file only once all is written
                out.write("".join(f"{h}\n" for h in hyps))
        if translator.truncated:
            typer.secho(cut_warning(translator, settings), err=True, fg=typer.colors.YELLOW)
    else:
        report = ev.score_files(hypothesis, reference, names, compare)
        hyps = read_lines(hypothesis, "the hypothesis file") if by_length else []
    if by_length:
        system = hypothesis.stem if hypothesis is not None else "+".join(m.name for m in model)
        sources, refs = read_aligned(source, reference, purpose="score")
        report["by_length"] = score_by_length(sources, refs, {system: hyps})  # as by-length
    if as_json:
        typer.echo(json.dumps(report, ensure_ascii=False))
        return
    _print_scores(report, names)
    if by_length:
        echo_buckets(report["by_length"])


@app.command(cls=Command)
@user_errors
def perplexity(
    model: Models,
    source: Annotated[Path, typer.Option("--source", "-s", help="Source sentences.")],
    reference: Annotated[Path, typer.Option("--reference", "-r", help="Their translations.")],
    device: DeviceOption = Device.auto,
    threads: Threads = None,
    precision: PrecisionOption = Precision.fp32,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Per-token cross-entropy and perplexity of the references under the model.

    With several --model, of their ensemble: the mean of their probabilities per token.
    """
    use_threads(threads)
    translator = Translator.load(model, device.value, precision.value)
    report = ev.file_perplexity(translator, source, reference)
    if len(model) > 1:
        report["ensemble"] = [str(m) for m in model]
    if as_json:
        typer.echo(json.dumps(report))
    else:
        typer.echo(
            f"cross-entropy {report['cross_entropy']:.4f} nats/token, perplexity "
            f"{report['perplexity']:.3f} ({report['tokens']} tokens, {report['sentences']} "
            f"sentences{_ensemble_note(report)})"
        )


@app.command(cls=Command)
@user_errors
def score(
    model: Models,
    source: Annotated[Path, typer.Option("--source", "-s", help="Source sentences.")],
    target: Annotated[
        Path, typer.Option("--target", "-t", help="Their translations, one per source line.")
    ],
    normalize: Annotated[
        bool, typer.Option("--normalize", help="The mean log-probability per token, not the sum.")
    ] = False,
    device: DeviceOption = Device.auto,
    threads: Threads = None,
    precision: PrecisionOption = Precision.fp32,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object a line: sum, mean, tokens.")
    ] = False,
) -> None:
    """log p(target | source) of each line pair, teacher-forced (</s> counted), one a line.

    To filter a corpus, rerank n-best lists or estimate quality. The sum is what the
    search ranks by before length normalization; with several --model, the ensemble's
    (the mean of their probabilities per token).
    """
    use_threads(threads)
    sources, targets = read_aligned(source, target, purpose="score")
    check_pairs(sources, targets, (f"--source {source}", f"--target {target}"))
    translator = Translator.load(model, device.value, precision.value)
    sums = translator.score(sources, targets)
    counts = [len(ids) + 1 for ids in translator.tgt_tokenizer.encode(targets)]  # </s> too
    for total, tokens in zip(sums, counts, strict=True):
        if as_json:
            record = {"sum": round(total, 4), "mean": round(total / tokens, 4), "tokens": tokens}
            typer.echo(json.dumps(record))
        else:
            typer.echo(f"{total / tokens if normalize else total:.4f}")


def _ensemble_note(report: dict[str, Any]) -> str:
    """The note ", ensemble of N models" where the report is an ensemble's."""
    return f", ensemble of {len(report['ensemble'])} models" if "ensemble" in report else ""
