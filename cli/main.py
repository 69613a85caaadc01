"""`nmt`: train, translate, evaluate, average, serve, plot, recipes, vocab, inspect."""

from __future__ import annotations

from typing import Annotated

import typer

from nmt import __version__
from nmt.cli import (
    average,
    evaluate,
    export,
    inspect_model,
    plot,
    prepare,
    recipes,
    serve,
    train,
    translate,
    vocab,
)
from nmt.cli.help import add_command, new_app

app = new_app(
    help="Recurrent neural machine translation: train a recipe, translate, evaluate.",
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
add_command(app, "prepare", prepare.prepare)
add_command(app, "train", train.train)
add_command(app, "translate", translate.translate)
add_command(app, "average", average.average)
add_command(app, "serve", serve.serve)
add_command(app, "export", export.export)
add_command(app, "plot", plot.plot)
add_command(app, "vocab", vocab.vocab)
add_command(app, "inspect", inspect_model.inspect)
app.add_typer(evaluate.app, name="evaluate")
app.add_typer(recipes.app, name="recipes")


def _version(asked: bool) -> None:
    if asked:
        typer.echo(f"nmt {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print nmt's version."),
    ] = False,
) -> None:
    """Recurrent neural machine translation: train a recipe, translate, evaluate."""


def main() -> None:
    app()


if __name__ == "__main__":
    main()
