"""`nmt`: train, translate, evaluate, average, serve."""

from __future__ import annotations

import typer

from cli import average, evaluate, serve, train, translate

app = typer.Typer(
    help="Recurrent neural machine translation: train a recipe, translate, evaluate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
app.command("train")(train.train)
app.command("translate")(translate.translate)
app.command("average")(average.average)
app.command("serve")(serve.serve)
app.add_typer(evaluate.app, name="evaluate")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
