"""The recipes that travel with nmt: recipes/*.yaml, installed as the package data of
`nmt.recipes`, so that `nmt train quickstart` works from a pip install with no checkout.

A recipe's name is its file stem. Its description is the first line of its leading
comment block, and the result the README reports for it is that block's
`# Reported: ...` line (tests/recipe/test_bundled_recipes.py checks its numbers against
the README). `resolve_recipe` turns what a user typed into a recipe file: a path that exists,
else a bundled name, else one error that suggests the closest names. Nothing here prints.
"""

from __future__ import annotations

import difflib
import re
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from nmt.errors import UserError
from nmt.store.layout import RECIPE as MODEL_RECIPE

if TYPE_CHECKING:
    if sys.version_info >= (3, 11):
        from importlib.resources.abc import Traversable
    else:
        from importlib.abc import Traversable

PACKAGE = "nmt.recipes"
SUFFIX = ".yaml"
REPORTED = "Reported:"  # the header comment line that holds the README's result


@dataclass(frozen=True)
class BundledRecipe:
    """One bundled recipe: `name` for `nmt train NAME`, what it is, what it reached."""

    name: str
    description: str
    reported: str | None  # e.g. "test BLEU 37.26, chrF 56.88 (...)"; None if not reported


def recipes_dir() -> Traversable:
    """Where the bundled recipes are: the installed `nmt.recipes` package, or, in a checkout
    whose editable install predates it, the checkout's recipes/ folder."""
    try:
        return resources.files(PACKAGE)
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[2] / "recipes"


def _files() -> dict[str, Traversable]:
    """The bundled recipe files by name, sorted by name."""
    folder = recipes_dir()
    if not folder.is_dir():
        return {}
    found = [f for f in folder.iterdir() if f.name.endswith(SUFFIX) and f.is_file()]
    return {f.name[: -len(SUFFIX)]: f for f in sorted(found, key=lambda f: f.name)}


DESCRIPTION_CHARS = 90  # a description longer than this is cut at a word, with "…"


def header(text: str) -> tuple[str, str | None]:
    """The description (the first sentence of the leading comment block's first
    paragraph, at most DESCRIPTION_CHARS) and the block's `Reported:` result; ("", None)
    for a recipe without comments."""
    paragraph: list[str] = []
    reported, ended = None, False
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        words = line.lstrip("#").strip()
        if words.startswith(REPORTED):
            reported = words[len(REPORTED) :].strip() or None
        elif not words:
            ended = ended or bool(paragraph)
        elif not ended:
            paragraph.append(words)
    joined = " ".join(paragraph)
    sentence = re.split(r"(?<! al)\. (?=[A-Z])", joined)[0].rstrip(".:, ")  # not at "et al."
    if len(sentence) > DESCRIPTION_CHARS:
        sentence = sentence[: DESCRIPTION_CHARS - 1].rsplit(" ", 1)[0].rstrip(",;:(") + "…"
    return sentence, reported


def bundled() -> list[BundledRecipe]:
    """Every bundled recipe, sorted by name."""
    recipes = []
    for name, file in _files().items():
        description, reported = header(file.read_text(encoding="utf-8"))
        recipes.append(BundledRecipe(name, description, reported))
    return recipes


def _name(arg: str) -> str:
    """A bundled name from what a user typed: `quickstart` and `quickstart.yaml` alike."""
    return arg[: -len(SUFFIX)] if arg.endswith(SUFFIX) else arg


def _suggestion(arg: str, names: list[str]) -> str:
    """`did you mean 'x'?` for the names closest to `arg`, and where the list is."""
    typed = _name(Path(arg).name) or arg
    close = difflib.get_close_matches(typed, names, n=3, cutoff=0.6)
    if not close:
        return "nmt recipes lists the bundled ones"
    quoted = [f"'{name}'" for name in close]
    options = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
    return f"did you mean {options}? (nmt recipes lists them)"


def _bundled_file(arg: str) -> Traversable:
    """The bundled recipe `arg` names; a `UserError` with the closest names otherwise."""
    files = _files()
    if _name(arg) in files:
        return files[_name(arg)]
    raise UserError(f"no bundled recipe {arg!r}; {_suggestion(arg, list(files))}")


def recipe_text(name: str) -> str:
    """The YAML text of bundled recipe `name` (with or without .yaml), unchanged."""
    return _bundled_file(name).read_text(encoding="utf-8")


def resolve_recipe(arg: str) -> Path | Traversable:
    """The recipe file `arg` means: an existing file, else the bundled recipe of that name
    (with or without .yaml). The bundled file is a `Path` when installed as files, as pip
    does; from a zip it is a `Traversable` (use `importlib.resources.as_file`). Anything
    else is a `UserError`: a model directory is told apart, a typo gets suggestions."""
    path = Path(arg)
    if path.is_file():
        return path
    files = _files()
    if path.name == arg and _name(arg) in files:
        return files[_name(arg)]
    if path.is_dir() and (path / MODEL_RECIPE).is_file():
        raise UserError(
            f"recipe {arg!r} is a model directory, and nmt train wants a recipe: "
            f"give {path / MODEL_RECIPE} to retrain it, or a bundled name (nmt recipes lists them)"
        )
    if path.is_dir():
        raise UserError(f"recipe {arg!r} is a directory, not a recipe file; {_suggestion(arg, [])}")
    raise UserError(
        f"recipe {arg!r} not found: no such file and no bundled recipe of that name; "
        f"{_suggestion(arg, list(files))}"
    )
