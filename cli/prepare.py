"""`nmt prepare RECIPE`: read, tokenize and store a recipe's data once (nmt.data.dataset)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import typer

from nmt.cli.errors import user_errors
from nmt.cli.progress import Renderer
from nmt.cli.train import reporter
from nmt.data.dataset import prepare_dataset
from nmt.data.identity import Identity
from nmt.data.prepared import default_workers
from nmt.errors import UserError
from nmt.recipe.bundled import resolve_recipe
from nmt.recipe.load import load_recipe

MAX_WORKERS = 256


@user_errors
def prepare(
    recipe: Annotated[
        str,
        typer.Argument(
            metavar="RECIPE", help="Recipe YAML file, or a bundled recipe's name, e.g. quickstart."
        ),
    ],
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set", metavar="KEY=VALUE", help="Override a recipe key (repeatable), as nmt train."
        ),
    ] = None,
    output_dir: Annotated[
        Path | None,
        typer.Option(
            help="The prepared dataset's directory (default: the recipe's data.prepared, "
            "else the cache where nmt train looks: $NMT_CACHE_DIR, ~/.cache/nmt)."
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Encoding processes (default: one per core).")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Replace a prepared dataset already in that directory.")
    ] = False,
) -> None:
    """Read, tokenize and store a recipe's data once; nmt train then reads the arrays."""
    with resources.as_file(resolve_recipe(recipe)) as path:
        cfg = load_recipe(path, set_ or [])
    if cfg.tokenizer.sampling is not None:
        raise UserError(
            "tokenizer.sampling segments the training text afresh each epoch, so nmt train "
            "reads the text itself: remove tokenizer.sampling to prepare the data"
        )
    if workers is not None and not 1 <= workers <= MAX_WORKERS:
        raise UserError(f"--workers {workers}: give 1 to {MAX_WORKERS} processes")
    if output_dir is not None:
        out = output_dir
    else:
        out = Path(cfg.data.prepared) if cfg.data.prepared else Identity.of(cfg).cached()
    renderer = Renderer()
    try:
        manifest = prepare_dataset(
            cfg, out, workers or default_workers(), overwrite, on_event=reporter(renderer)
        )
    finally:
        renderer.close()
    typer.echo(_summary(out, manifest, named=output_dir is not None or bool(cfg.data.prepared)))


def _summary(out: Path, manifest: dict[str, Any], named: bool) -> str:
    splits = manifest["splits"]
    train = splits["train"]
    tokens = train["tokens"]
    others = "".join(
        f", {name} {splits[name]['pairs']}" for name in ("valid", "test") if name in splits
    )
    use = f"; train with --set data.prepared={out}" if named else "; nmt train finds it there"
    corpora = train.get("corpora", [])  # a weighted data.train's, each one's pairs
    each = " + ".join(str(corpus["pairs"]) for corpus in corpora)
    each = f"{each} from {len(corpora)} corpora; " if len(corpora) > 1 else ""
    return (
        f"prepared {out}: train {train['pairs']} pairs ({each}{tokens['source']} + "
        f"{tokens['target']} tokens, {manifest['dtype']}){others}{use}"
    )
