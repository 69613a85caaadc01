"""`nmt train RECIPE`."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from nmt.cli.errors import user_errors
from nmt.cli.options import Device, DeviceOption, Threads, use_threads
from nmt.cli.progress import Renderer
from nmt.events import Evaluation, Event, Message, Phase, Progress
from nmt.progress import duration
from nmt.recipe.bundled import resolve_recipe
from nmt.recipe.load import load_recipe
from nmt.training.results import TrainResults
from nmt.training.setup import train as run_training


def _line(event: Message | Progress | Evaluation) -> str:
    if isinstance(event, Message):
        return event.text
    if isinstance(event, Progress):
        skipped = f"  ({event.skipped} updates skipped)" if event.skipped else ""
        forcing = f"tf {event.teacher_forcing:.3f}  " if event.teacher_forcing < 1 else ""
        return (
            f"epoch {event.epoch:6.2f}  step {event.step:7d}  loss {event.loss:7.4f}  "
            f"lr {event.learning_rate:.2e}  {forcing}"
            f"{event.tokens_per_second / 1000:6.1f}k tok/s{skipped}"
        )
    mark = "  (best)" if event.improved else ""
    return (
        f"eval   epoch {event.epoch:6.2f}  step {event.step:7d}  "
        f"valid loss {event.valid_loss:.4f}  ppl {event.valid_ppl:.2f}  "
        f"BLEU {event.valid_bleu:.2f}{mark}"
    )


def reporter(renderer: Renderer) -> Callable[[Event], None]:
    """The training events as the CLI shows them: phases as bars (or, off a terminal,
    occasional lines on stderr), everything else as log lines on stdout."""

    def report(event: Event) -> None:
        if isinstance(event, Phase):
            renderer.render(event)
        else:
            renderer.echo(_line(event))

    return report


@user_errors
def train(
    recipe: Annotated[
        str,
        typer.Argument(
            metavar="RECIPE",
            help="Recipe YAML file, or a bundled recipe's name (nmt recipes lists them), "
            "e.g. quickstart.",
        ),
    ],
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="KEY=VALUE",
            help="Override a recipe key: --set train.max_epochs=3 (repeatable).",
        ),
    ] = None,
    output_dir: Annotated[
        Path | None, typer.Option(help="Model directory to write (default: the recipe's).")
    ] = None,
    device: DeviceOption = Device.auto,
    threads: Threads = None,
    resume: Annotated[
        bool, typer.Option(help="Continue the training saved in the model directory.")
    ] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing model directory.")] = False,
    deterministic: Annotated[
        bool,
        typer.Option(help="Deterministic kernels and seeds: reruns give identical weights."),
    ] = False,
    init_from: Annotated[
        Path | None,
        typer.Option(
            help="Start from this model directory's weights and tokenizers, with a fresh "
            "optimizer (fine-tuning on new data)."
        ),
    ] = None,
) -> None:
    """Train a model from a recipe and write its model directory."""
    use_threads(threads)
    overrides = [*(set_ or []), *(["train.deterministic=true"] if deterministic else [])]
    with resources.as_file(resolve_recipe(recipe)) as path:  # a bundled one may be zipped
        cfg = load_recipe(path, overrides)
    if output_dir is not None:
        cfg = dataclasses.replace(cfg, output_dir=str(output_dir))
    renderer = Renderer()
    try:
        results = run_training(cfg, device.value, resume, overwrite, reporter(renderer), init_from)
    finally:
        renderer.close()
    if os.environ.get("RANK", "0") == "0":  # torchrun's other ranks: rank 0 reports
        _report(results, cfg.output_dir)


def _report(results: TrainResults, output_dir: str | None) -> None:
    """The end of `nmt train`: the test scores, what was trained, what stopped it."""
    test = results.test
    if test is not None:
        settings = ", ".join(f"{k}={v}" for k, v in test.decode.items())
        typer.echo(
            f"test: BLEU {test.bleu:.2f}  chrF {test.chrf:.2f}  "
            f"({test.signature['bleu']})\n      decode: {settings}"
        )
        if test.truncated:
            typer.secho(
                f"warning: {test.truncated} test sources were cut to "
                "decode.max_input_length tokens",
                err=True,
                fg=typer.colors.YELLOW,
            )
    typer.echo(
        f"trained {results.steps} steps in {duration(results.train_seconds)} "
        f"({results.train_tokens_per_second / 1000:.1f}k target tokens/s); "
        f"model in {output_dir}"
    )
    if results.stopped_by is not None:
        typer.echo(stopped_line(results))
    if results.stopped_by == "max_minutes":  # the machine's speed decided, not the recipe
        typer.secho(
            f"warning: training stopped on train.max_minutes ({results.limits.max_minutes:g}"
            f" minutes of wall time), at {_how_far(results)}: the model may be undertrained "
            "and its scores say little; --resume trains it further, or raise or remove "
            "train.max_minutes",
            err=True,
            fg=typer.colors.YELLOW,
            bold=True,
        )


def _how_far(results: TrainResults) -> str:
    """'0.43 of 10 epochs, step 120', or '2.10 epochs, step 500 of 500' without max_epochs."""
    limits, epochs, steps = results.limits, results.epochs, results.steps
    of_epochs = f" of {limits.max_epochs}" if limits.max_epochs is not None else ""
    of_steps = f" of {limits.max_steps}" if limits.max_steps is not None else ""
    return f"{epochs:.2f}{of_epochs} epochs, step {steps}{of_steps}"


def stopped_line(results: TrainResults) -> str:
    """Which limit ended training (results.json's stopped_by) and how far it got."""
    reason = results.stopped_by
    assert reason is not None
    limit = getattr(results.limits, reason)
    shown = {
        "max_minutes": f"{limit:g} minutes of wall time",
        "patience": f"{limit} evaluations without a better valid score",
    }.get(reason, str(limit))
    return f"stopped by train.{reason} ({shown}) at {_how_far(results)}"
