"""`nmt train RECIPE`."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from cli.errors import user_errors
from cli.options import Device, DeviceOption, Threads, use_threads
from nmt.config import load_recipe
from nmt.events import Evaluation, Event, Message, Progress
from nmt.train import train as run_training


def _report(event: Event) -> None:
    if isinstance(event, Message):
        typer.echo(event.text)
    elif isinstance(event, Progress):
        skipped = f"  ({event.skipped} updates skipped)" if event.skipped else ""
        typer.echo(
            f"epoch {event.epoch:6.2f}  step {event.step:7d}  loss {event.loss:7.4f}  "
            f"lr {event.learning_rate:.2e}  {event.tokens_per_second / 1000:6.1f}k tok/s{skipped}"
        )
    elif isinstance(event, Evaluation):
        mark = "  (best)" if event.improved else ""
        typer.echo(
            f"eval   epoch {event.epoch:6.2f}  step {event.step:7d}  "
            f"valid loss {event.valid_loss:.4f}  ppl {event.valid_ppl:.2f}  "
            f"BLEU {event.valid_bleu:.2f}{mark}"
        )


@user_errors
def train(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML file, e.g. recipes/quickstart.yaml.")],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a recipe key: --set train.max_epochs=3 (repeatable)."),
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
    cfg = load_recipe(recipe, overrides)
    if output_dir is not None:
        cfg = dataclasses.replace(cfg, output_dir=str(output_dir))
    results = run_training(cfg, device.value, resume, overwrite, _report, init_from)
    if "bleu" in results:
        settings = ", ".join(f"{k}={v}" for k, v in results["decode"].items())
        typer.echo(
            f"test: BLEU {results['bleu']:.2f}  chrF {results['chrf']:.2f}  "
            f"({results['signature']['bleu']})\n      decode: {settings}"
        )
        if results["test_truncated"]:
            typer.secho(
                f"warning: {results['test_truncated']} test sources were cut to "
                "decode.max_input_length tokens",
                err=True,
                fg=typer.colors.YELLOW,
            )
    typer.echo(
        f"trained {results['steps']} steps in {results['train_seconds']:.0f} s "
        f"({results['train_tokens_per_second'] / 1000:.1f}k target tokens/s); "
        f"model in {cfg.output_dir}"
    )
