"""`nmt evaluate by-length`: BLEU and chrF per source-length bucket, several systems at once.

A verb of its own as well as a flag of `nmt evaluate bleu` (`--by-length`, for bleu's one
system): it compares several systems side by side, where bleu's repeated --model means
one ensemble.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from nmt.cli.errors import user_errors
from nmt.cli.options import Device, DeviceOption, Threads, check_output, use_threads
from nmt.data.corpus import read_aligned, read_lines
from nmt.decode.translate import Translator
from nmt.errors import UserError
from nmt.report.by_length import plot_by_length, score_by_length, span
from nmt.report.plot import image_format


def _systems(hypotheses: list[Path], models: list[Path], sources: list[str], device: str):
    """{name: translations}: each hypothesis file as it is, each model translating."""
    stems = [p.stem for p in hypotheses] + [m.name for m in models]
    unique = len(set(stems)) == len(stems)  # else name them by their folder too
    systems: dict[str, list[str]] = {}
    for path in hypotheses:
        name = path.stem if unique else f"{path.parent.name}/{path.stem}"
        systems[name] = read_lines(path, "a hypothesis file")
    for model in models:
        name = model.name if unique else f"{model.parent.name}/{model.name}"
        systems[name] = Translator.load(model, device).translate(sources)
    return systems


@user_errors
def by_length(
    hypotheses: Annotated[
        list[Path] | None,
        typer.Argument(metavar="HYPOTHESES", help="Translation files, one system each."),
    ] = None,
    source: Annotated[Path, typer.Option("--source", "-s", help="Source sentences.")] = ...,
    reference: Annotated[
        Path, typer.Option("--reference", "-r", help="Reference translations.")
    ] = ...,
    model: Annotated[
        list[Path] | None,
        typer.Option(
            "--model",
            "-m",
            metavar="<dir>",
            help="A model that translates --source "
            "as one more system (repeatable; each model is its own system).",
        ),
    ] = None,  # fmt: skip
    buckets: Annotated[int, typer.Option(help="About how many length buckets.")] = 6,
    min_size: Annotated[int, typer.Option(help="Sentences a bucket holds at least.")] = 30,
    plot: Annotated[Path | None, typer.Option(help="Draw BLEU by length here (PNG).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    device: DeviceOption = Device.auto,
    threads: Threads = None,
) -> None:
    """BLEU and chrF of each system per source-length bucket (lengths in words)."""
    use_threads(threads)
    if not hypotheses and not model:
        raise UserError("give hypothesis files, or --model, or both: the systems to compare")
    if buckets < 1 or min_size < 1:
        raise UserError(f"--buckets {buckets} --min-size {min_size}: give 1 or more of each")
    check_output(plot, "--plot")  # a regular file or a new name: not /dev/full, not a FIFO
    if plot is not None:
        image_format(plot, f"--plot {plot}")  # before translating: x.txt is no image
    sources, refs = read_aligned(source, reference, purpose="score")
    systems = _systems(hypotheses or [], model or [], sources, device.value)
    report = score_by_length(sources, refs, systems, None, buckets, min_size)
    if plot is not None:
        plot_by_length(report, plot, label=f"--plot {plot}")
    if as_json:
        typer.echo(json.dumps(report, ensure_ascii=False))
        return
    echo_buckets(report)


def echo_buckets(report: dict) -> None:
    """The by-length table: a row per bucket, BLEU / chrF per system."""
    names = list(report["buckets"][0]["scores"]) if report["buckets"] else []
    typer.echo("words    sentences  " + "  ".join(f"{n[:20]:>20}" for n in names))
    for b in report["buckets"]:
        lengths = span(b["lengths"])
        cells = "  ".join(
            f"{b['scores'][n]['bleu']:>9.2f} / {b['scores'][n]['chrf']:>6.2f}" for n in names
        )
        typer.echo(f"{lengths:<8} {b['sentences']:>9}  {cells}")
    typer.echo(f"BLEU / chrF  {report['signature'].get('bleu', '')}")
