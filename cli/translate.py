"""`nmt translate FILE|- --model DIR`."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, TextIO

import typer

from nmt.cli.errors import user_errors
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
    check_plot_dir,
    cut_warning,
    decode_overrides,
    file_status,
    make_plot_dir,
    same_path,
    settings_line,
    unk_overrides,
    use_threads,
)
from nmt.cli.progress import Renderer
from nmt.cli.reading import count_lines, input_chunks, is_interactive
from nmt.data.corpus import read_lines
from nmt.decode.alignment import pharaoh
from nmt.decode.ensemble import attends
from nmt.decode.figure import pyplot
from nmt.decode.translate import Translation, Translator, attention_record, nbest_lines
from nmt.errors import UserError
from nmt.export.loaded import ExportedTranslator, load_translator
from nmt.progress import Tracker
from nmt.recipe.schema import DecodeConfig
from nmt.report.plot import plot_attention
from nmt.store.files import LabelledWriter, atomic_output

HINT = "nmt translate: type a sentence and press Enter; Ctrl-D ends"


def _input_status(source: str) -> os.stat_result | None:
    """The input's device and inode: of the file, or of what stdin is (a redirected file)."""
    if source != "-":
        return file_status(Path(source))
    try:
        return os.fstat(sys.stdin.fileno())
    except (OSError, ValueError):  # stdin replaced by an object without a descriptor
        return None


def _check_outputs(
    source: str, output: Path | None, attention_out: Path | None, plot: Path | None
) -> None:
    """Outputs that would destroy the input or each other, or that are no file (a device,
    a FIFO; --plot: no directory), are refused before any work."""
    name = "standard input" if source == "-" else f"the input {source}"
    inputs = [(name, _input_status(source))]
    check_not_an_input(output, "--output", inputs)
    check_not_an_input(attention_out, "--attention-out", inputs)
    if output is not None and attention_out is not None and same_path(output, attention_out):
        raise UserError(
            f"--output {output} and --attention-out {attention_out} are the same file; "
            "give each its own file"
        )
    check_output(output, "--output")
    check_output(attention_out, "--attention-out")
    check_plot_dir(plot)


def check_alignments(translator: Translator | ExportedTranslator) -> None:
    """--alignments needs nmt's own Translator and a model with attention."""
    if not isinstance(translator, Translator):
        raise UserError(
            "--alignments: an exported model gives no alignments; translate with the model "
            "directory"
        )
    if not attends(translator.model):
        raise UserError(
            "--alignments come from the attention, and this model has none "
            "(model.attention none); train with attention to get them"
        )


def read_constraints(
    path: Path, translator: Translator | ExportedTranslator, source: str
) -> list[list[str]]:
    """--constraints FILE: line i holds source line i's phrases, tab-separated (none: an
    empty line); checked whole before anything is translated, a file input's line count
    too (stdin's is checked as it is read, `_with_constraints`)."""
    if not isinstance(translator, Translator):
        raise UserError(
            f"--constraints {path}: an exported model has no constrained search; translate "
            "with the model directory"
        )
    lines = [line.split("\t") for line in read_lines(path, "--constraints")]
    try:
        translator.constraint_ids(lines)
    except UserError as error:
        raise UserError(f"--constraints {path}: {error}") from None
    total = count_lines(source)
    if total is not None and total != len(lines):
        _mismatch(path, len(lines), source, total)
    return lines


def _mismatch(path: Path, given: int, source: str, lines: int | str) -> None:
    name = "standard input" if source == "-" else source
    raise UserError(
        f"--constraints {path} has {given} lines and {name} {lines}: give one line of "
        "constraints per input line (an empty line for none)"
    )


def _with_constraints(
    chunks: Iterable[list[str]], constraints: list[list[str]] | None, path: Path | None, source: str
) -> Iterator[tuple[list[str], list[list[str]] | None]]:
    """Each chunk of input lines with its lines of constraints (None without any)."""
    start = 0
    for chunk in chunks:
        if constraints is None or path is None:
            yield chunk, None
            continue
        if start + len(chunk) > len(constraints):
            _mismatch(path, len(constraints), source, f"more ({start + len(chunk)} so far)")
        yield chunk, constraints[start : start + len(chunk)]
        start += len(chunk)
    if constraints is not None and path is not None and start != len(constraints):
        _mismatch(path, len(constraints), source, start)


def _write_all(
    results: Iterable[list[Translation]],
    out: TextIO | LabelledWriter,
    attn: LabelledWriter | None,
    plot: Path | None,
    plot_count: int,
    nbest: int,
    alignments: bool = False,
) -> int:
    """Write each line's translations (and attention, plots); the index of the last line.
    A chunk's last line (None in `results`) flushes: someone may be waiting for it. With
    `alignments`, each translation's row ends in a tab and its Pharaoh word alignment."""
    index = -1
    for found in results:
        if found is None:
            out.flush()
            continue
        index += 1
        best = found[0] if found else None
        rows = [(best.text if best else "") + "\n"] if nbest == 1 else nbest_lines(index, found)
        if alignments:
            words = [pharaoh(t.alignment or []) for t in found] or [""]
            rows = [f"{row[:-1]}\t{a}\n" for row, a in zip(rows, words, strict=True)]
        out.write("".join(rows))
        if attn is not None:
            attn.write(attention_record(index, best))
        if plot is not None and best is not None and index < plot_count:
            plot_attention(best, plot / f"attention-{index}.png")
    return index


def _translations(
    translator: Translator,
    source: str,
    chunks: Iterable[tuple[list[str], list[list[str]] | None]],
    nbest: int,
    attention: bool,
    settings: DecodeConfig,
) -> Iterator[list[Translation] | None]:
    """Each line's translations, chunk by chunk, with None after each chunk. A file's
    progress is shown (cli/progress.py); someone typing or piping sees a hint instead."""
    interactive = is_interactive(source)
    if interactive and sys.stdin.isatty():
        typer.echo(HINT, err=True)
    renderer = Renderer()
    total = None if interactive else count_lines(source)
    tracker = Tracker(renderer.render, "translating", total, "lines") if not interactive else None
    try:
        for chunk, constraints in chunks:
            progress = tracker.advance if tracker is not None else None
            given: dict[str, object] = {"settings": settings}
            if constraints is not None:  # never for an exported model (read_constraints)
                given["constraints"] = constraints
            yield from translator.search(chunk, nbest, attention, progress, **given)
            yield None
        if tracker is not None:
            tracker.finish()
    finally:
        renderer.close()


@user_errors
def translate(
    source: Annotated[
        str, typer.Argument(metavar="FILE", help="Text file to translate, or - for stdin.")
    ],
    model: Models,
    beam: Beam = None,
    greedy: Greedy = False,
    length_normalization: LengthNormalization = None,
    length_penalty: LengthPenalty = None,
    coverage_penalty: CoveragePenalty = None,
    min_length: MinLength = None,
    replace_unk: ReplaceUnk = False,
    unk_dictionary: UnkDictionary = None,
    nbest: Annotated[
        int, typer.Option(help="Write the N best per line as INDEX<TAB>SCORE<TAB>TEXT.")
    ] = 1,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here, not to stdout.")
    ] = None,
    attention_out: Annotated[
        Path | None, typer.Option(help="Write each sentence's attention matrix as JSON lines.")
    ] = None,
    plot: Annotated[
        Path | None, typer.Option(help="Directory for attention heatmaps (PNG) of the first lines.")
    ] = None,
    plot_count: Annotated[int, typer.Option(help="How many lines --plot draws.")] = 10,
    alignments: Annotated[
        bool,
        typer.Option(
            "--alignments",
            help="After each translation, a tab and its word alignment from the attention: "
            "Pharaoh i-j pairs (source word i, target word j, 0-based, whitespace words).",
        ),
    ] = False,
    constraints: Annotated[
        Path | None,
        typer.Option(
            help="Line i: phrases, tab-separated, that the translation of line i must hold "
            "(terminology; an empty line for none). Needs a beam (--beam 2 or more)."
        ),
    ] = None,
    device: DeviceOption = Device.auto,
    threads: Threads = None,
    precision: PrecisionOption = Precision.fp32,
) -> None:
    """Translate line by line: output line i answers input line i; empty gives empty.

    With several --model, an ensemble translates: the mean of their probabilities.
    --attention-out and --plot then show the mean of their attention weights.
    """
    use_threads(threads)
    chunks = input_chunks(source)  # a missing input is reported here, before any output
    decode = decode_overrides(
        beam, greedy, length_normalization, length_penalty, min_length, coverage_penalty
    )
    decode |= unk_overrides(replace_unk, unk_dictionary)
    _check_outputs(source, output, attention_out, plot)
    # an exported directory (nmt export) translates with nmt_runtime, without PyTorch
    translator = load_translator(model, device.value, precision.value, threads)
    if alignments:
        check_alignments(translator)
    wanted = None if constraints is None else read_constraints(constraints, translator, source)
    want_attention = attention_out is not None or plot is not None or alignments
    if any(wanted or []):
        decode["constrained"] = True
    settings = translator.search_settings(nbest, want_attention, **decode)  # before any file
    if translator.size > 1:
        typer.echo(f"ensemble of {translator.size} models: {', '.join(map(str, model))}", err=True)
    typer.echo(f"decoding with {settings_line(settings)}", err=True)
    if plot is not None:
        pyplot()  # fail before translating anything if matplotlib is missing
        make_plot_dir(plot)
    # Files are written under a temporary name and renamed over the old ones only when all
    # went well: a bad line halfway through leaves an earlier --output as it was.
    with contextlib.ExitStack() as files:
        out: TextIO | LabelledWriter = sys.stdout
        if output is not None:
            out = files.enter_context(atomic_output(output, "--output"))
        attn = None
        if attention_out is not None:
            attn = files.enter_context(atomic_output(attention_out, "--attention-out"))
        paired = _with_constraints(chunks, wanted, constraints, source)
        results = _translations(translator, source, paired, nbest, want_attention, settings)
        index = _write_all(results, out, attn, plot, plot_count, nbest, alignments)
    if index < 0:
        name = source if source != "-" else "standard input"
        typer.secho(f"warning: {name} had no lines to translate", err=True, fg=typer.colors.YELLOW)
    if translator.truncated:
        typer.secho(cut_warning(translator, settings), err=True, fg=typer.colors.YELLOW)
