"""`nmt translate FILE|- --model DIR`."""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, TextIO

import typer

from cli.errors import Device, user_errors
from nmt.corpus import read_lines
from nmt.plot import plot_attention
from nmt.translate import Translator

CHUNK = 1000  # lines read, translated and written at a time, so stdin streams


def _chunks(source: str) -> Iterator[list[str]]:
    if source != "-":
        lines = read_lines(Path(source), "the input")
        yield from (lines[i : i + CHUNK] for i in range(0, len(lines), CHUNK))
        return
    stream = (line.rstrip("\n") for line in sys.stdin)
    while chunk := list(itertools.islice(stream, CHUNK)):
        yield chunk


@user_errors
def translate(
    source: Annotated[str, typer.Argument(help="Text file to translate, or - for stdin.")],
    model: Annotated[Path, typer.Option("--model", "-m", help="Model directory from nmt train.")],
    beam: Annotated[int | None, typer.Option(help="Beam size (default: the recipe's).")] = None,
    greedy: Annotated[bool, typer.Option(help="Greedy search (beam size 1).")] = False,
    nbest: Annotated[
        int,
        typer.Option(help="Write the N best translations per line as INDEX<TAB>SCORE<TAB>TEXT."),
    ] = 1,
    length_penalty: Annotated[float | None, typer.Option(help="GNMT length penalty alpha.")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here, not stdout.")
    ] = None,
    attention_out: Annotated[
        Path | None, typer.Option(help="Write each sentence's attention matrix as JSON lines.")
    ] = None,
    plot: Annotated[
        Path | None, typer.Option(help="Directory for attention heatmaps (PNG) of the first lines.")
    ] = None,
    plot_count: Annotated[int, typer.Option(help="How many lines --plot draws.")] = 10,
    device: Annotated[Device, typer.Option(help="Where to run the model.")] = Device.auto,
) -> None:
    """Translate line by line: output line i answers input line i; empty gives empty."""
    translator = Translator.load(model, device.value)
    beam_size = 1 if greedy else beam
    settings = translator.decode_config(beam_size=beam_size, length_penalty=length_penalty)
    typer.echo(
        f"decoding with beam {settings.beam_size}, {settings.length_normalization} "
        f"length normalization (alpha {settings.length_penalty})",
        err=True,
    )
    want_attention = attention_out is not None or plot is not None
    if plot is not None:
        plot.mkdir(parents=True, exist_ok=True)
    out: TextIO = output.open("w", encoding="utf-8") if output else sys.stdout
    attn_file = attention_out.open("w", encoding="utf-8") if attention_out else None
    index = 0
    try:
        for chunk in _chunks(source):
            results = translator.search(
                chunk,
                nbest=nbest,
                attention=want_attention,
                beam_size=beam_size,
                length_penalty=length_penalty,
            )
            for found in results:
                if nbest == 1:
                    out.write((found[0].text if found else "") + "\n")
                else:  # an empty line's one translation is empty, and certain
                    rows = [(t.score, t.text) for t in found] or [(0.0, "")]
                    out.writelines(f"{index}\t{score:.4f}\t{text}\n" for score, text in rows)
                best = found[0] if found else None
                if attn_file is not None:
                    attn_file.write(
                        json.dumps(
                            {
                                "line": index,
                                "source": best.source_pieces if best else [],
                                "target": [*best.target_pieces, "</s>"] if best else [],
                                "attention": best.attention if best else [],
                            },
                            ensure_ascii=False,
                        )
                        + "\n"
                    )
                if plot is not None and best is not None and index < plot_count:
                    plot_attention(best, plot / f"attention-{index}.png")
                index += 1
            out.flush()
    finally:
        if output:
            out.close()
        if attn_file is not None:
            attn_file.close()
    if index == 0:
        typer.secho(
            f"warning: {source if source != '-' else 'standard input'} had no lines",
            err=True,
            fg=typer.colors.YELLOW,
        )
    if translator.truncated:
        limit = translator.recipe.data.max_length
        typer.secho(
            f"warning: {translator.truncated} lines were longer than the model's "
            f"{limit} tokens and were cut to it",
            err=True,
            fg=typer.colors.YELLOW,
        )
