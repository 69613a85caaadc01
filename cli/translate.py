"""`nmt translate FILE|- --model DIR`."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, TextIO

import typer

from cli.errors import user_errors
from cli.options import (
    Beam,
    Device,
    DeviceOption,
    Greedy,
    LengthNormalization,
    LengthPenalty,
    MinLength,
    check_output,
    decode_overrides,
)
from nmt.corpus import decode_lines, iter_lines
from nmt.errors import UserError
from nmt.plot import plot_attention, pyplot
from nmt.translate import Translator, attention_record, nbest_lines

CHUNK = 1000  # lines translated at a time from a file or a pipe


def _lines(source: str) -> tuple[Iterator[str], int]:
    """The input read lazily, and how many lines to translate at a time: a terminal is
    answered line by line, a file or a pipe in chunks."""
    if source == "-":
        lines = (text.strip() for _, text in decode_lines(sys.stdin.buffer, "standard input"))
        return lines, 1 if sys.stdin.isatty() else CHUNK
    return iter_lines(Path(source), "the input"), CHUNK


@user_errors
def translate(
    source: Annotated[str, typer.Argument(help="Text file to translate, or - for stdin.")],
    model: Annotated[Path, typer.Option("--model", "-m", help="Model directory from nmt train.")],
    beam: Beam = None,
    greedy: Greedy = False,
    length_normalization: LengthNormalization = None,
    length_penalty: LengthPenalty = None,
    min_length: MinLength = None,
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
    device: DeviceOption = Device.auto,
) -> None:
    """Translate line by line: output line i answers input line i; empty gives empty."""
    lines, chunk = _lines(source)  # a missing input is reported here, before any output
    for path in (output, attention_out):
        if path is not None and source != "-" and path.resolve() == Path(source).resolve():
            raise UserError(f"{path} is the input file too; write the output somewhere else")
    check_output(output, "--output")
    check_output(attention_out, "--attention-out")
    translator = Translator.load(model, device.value)
    decode = decode_overrides(beam, greedy, length_normalization, length_penalty, min_length)
    want_attention = attention_out is not None or plot is not None
    settings = translator.search_settings(nbest, want_attention, **decode)  # before any file
    typer.echo(
        f"decoding with beam {settings.beam_size}, {settings.length_normalization} length "
        f"normalization (alpha {settings.length_penalty}), min length {settings.min_length}",
        err=True,
    )
    if plot is not None:
        pyplot()  # fail before translating anything if matplotlib is missing
        plot.mkdir(parents=True, exist_ok=True)
    out: TextIO = output.open("w", encoding="utf-8") if output else sys.stdout
    attn_file = attention_out.open("w", encoding="utf-8") if attention_out else None
    index = -1
    try:
        results = translator.stream(lines, chunk, nbest, want_attention, **decode)
        for index, found in enumerate(results):
            best = found[0] if found else None
            if nbest == 1:
                out.write((best.text if best else "") + "\n")
            else:
                out.writelines(nbest_lines(index, found))
            if attn_file is not None:
                attn_file.write(attention_record(index, best))
            if plot is not None and best is not None and index < plot_count:
                plot_attention(best, plot / f"attention-{index}.png")
            if chunk == 1:
                out.flush()  # someone is typing: answer each line at once
    finally:
        if output:
            out.close()
        if attn_file is not None:
            attn_file.close()
    if index < 0:
        name = source if source != "-" else "standard input"
        typer.secho(f"warning: {name} had no lines to translate", err=True, fg=typer.colors.YELLOW)
    if translator.truncated:
        limit = translator.recipe.data.max_length
        typer.secho(
            f"warning: {translator.truncated} lines were longer than the model's "
            f"{limit} tokens and were cut to it",
            err=True,
            fg=typer.colors.YELLOW,
        )
