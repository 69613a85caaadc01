"""Help screens as people write them: plain text, flags without `<bool>`, and usage lines
that say RECIPE where typer would say {recipe}. Every command of the CLI is made here."""

from __future__ import annotations

import re
from typing import Any

import click
import typer
from typer.core import TyperCommand


class Command(TyperCommand):
    """A command whose usage line names its arguments plainly: `nmt train [OPTIONS] RECIPE`."""

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        return [re.sub(r"^\{(.*)\}", r"\1", p) for p in super().collect_usage_pieces(ctx)]


def new_app(**options: Any) -> typer.Typer:
    """A Typer app with plain help (no rich panels: they print `<bool>` after each flag)."""
    return typer.Typer(rich_markup_mode=None, no_args_is_help=True, **options)


def add_command(app: typer.Typer, name: str, function: Any) -> None:
    app.command(name, cls=Command)(function)
