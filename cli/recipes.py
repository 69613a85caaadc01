"""`nmt recipes`: list the bundled recipes; `nmt recipes show NAME`: print one's YAML."""

from __future__ import annotations

from typing import Annotated

import typer

from nmt.cli.errors import user_errors
from nmt.cli.help import Command
from nmt.recipe.bundled import BundledRecipe, bundled, recipe_text

# not cli.help.new_app: that shows the help when no command is given, and a bare
# `nmt recipes` lists the recipes instead
app = typer.Typer(
    help="The recipes bundled with nmt: `nmt train NAME` trains one, "
    "`nmt recipes show NAME > my.yaml` copies one out to edit.",
    rich_markup_mode=None,
    no_args_is_help=False,
)


def table(recipes: list[BundledRecipe]) -> list[str]:
    """One line per recipe: name, description and reported result in aligned columns."""
    if not recipes:
        return []
    rows = [(r.name, r.description, r.reported or "-") for r in recipes]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    return [
        f"{name:<{widths[0]}}  {description:<{widths[1]}}  {reported}".rstrip()
        for name, description, reported in rows
    ]


@app.callback(invoke_without_command=True)
@user_errors
def recipes(ctx: typer.Context) -> None:
    """List the bundled recipes: name, what it is, and the result the README reports."""
    if ctx.invoked_subcommand is not None:
        return
    for line in table(bundled()):
        typer.echo(line)


@app.command(cls=Command)
@user_errors
def show(
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="A bundled recipe's name (see `nmt recipes`).")
    ],
) -> None:
    """Print bundled recipe NAME's YAML unchanged, e.g. `nmt recipes show quickstart > my.yaml`."""
    typer.echo(recipe_text(name), nl=False)
