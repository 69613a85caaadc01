"""Recipes: YAML → nested frozen dataclasses, with every default in exactly one place.

A recipe is a YAML file with the sections `data`, `tokenizer`, `model`, `train`, `decode`
and the top-level keys `seed` and `output_dir`. Every key is optional except
`data.source_lang`, `data.target_lang` and `data.train`. Unknown or misspelled keys and
values of the wrong type are errors that name the key and list the valid ones (Joey NMT
swallows typos through `**kwargs`; we refuse them). `--set section.key=value` overrides
are applied to the YAML before it is checked, so they get exactly the same checks.

Corpus sources (`data.train`, `data.valid`, `data.test`) are described in nmt/recipe/sources.py.
A recipe may also name alternative sets of splits under `data.alternatives` and pick one
with `data.use`, so that one `--set data.use=local` switches every split at once.
Field rules (`checked`, `positive`, ...) live in nmt/recipe/fields.py; reading YAML within
size limits, and quoting values in errors within a length, in nmt/recipe/reading.py.
Decode settings given at translation time are checked here too (`override_decode`).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from nmt.errors import UserError
from nmt.recipe.fields import (
    check_fields,
)
from nmt.recipe.reading import (
    check_size,
    parse_yaml,
    read_recipe_file,
    shown,
    shown_key,
    shown_keys,
)
from nmt.recipe.rules import check_recipe
from nmt.recipe.schema import DecodeConfig, Recipe
from nmt.recipe.sources import (
    SOURCE_KINDS,
    FilesSource,
    Source,
    TrainSource,
    WeightedCorpus,
    WeightedSources,
)

# ---------------------------------------------------------------------------- loading


def load_recipe(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Read a recipe file, apply `--set key=value` overrides, check and resolve it."""
    path = Path(path)
    raw = read_recipe_file(path)
    recipe = recipe_from_dict(raw if raw is not None else {}, str(path), overrides)
    if recipe.output_dir is None:
        recipe = dataclasses.replace(recipe, output_dir=str(Path("runs") / path.stem))
    return recipe


def recipe_from_dict(
    raw: Any, where: str = "recipe", overrides: list[str] | tuple[str, ...] = ()
) -> Recipe:
    """Build a checked `Recipe` from plain YAML data; `where` names it in error messages."""
    if not isinstance(raw, dict):
        raise UserError(f"{where}: a recipe is a YAML mapping of sections (data:, model:, ...)")
    check_size(raw, where)  # before anything walks it: a YAML alias bomb walks for ever
    original, raw = raw, copy.deepcopy(raw)
    for item in overrides:
        _apply_override(raw, item, where)
    try:
        return _checked(raw, where)
    except UserError as error:
        if not overrides:
            raise
        raise _blame_override(error, original, where, overrides) from None


def _checked(raw: dict, where: str) -> Recipe:
    recipe = _build(Recipe, raw, where, "")
    recipe = _use_alternative(recipe, where)
    check_recipe(recipe, where)
    return recipe


def _blame_override(
    error: UserError, original: dict, where: str, overrides: list[str] | tuple[str, ...]
) -> UserError:
    """A recipe valid without its --set overrides but not with them: the message names
    --set (and the override whose key it mentions: the last typed, which is the one in
    effect when a key is set twice), not the recipe file."""
    try:
        _checked(copy.deepcopy(original), where)
    except UserError:
        return error  # the file is at fault as it stands
    message = str(error).removeprefix(f"{where}: ")
    keys = [(item, item.partition("=")[0].strip()) for item in overrides]
    named = [
        item
        for item, key in keys
        if f"'{key}'" in message or f"'{key}[" in message or message.startswith(key)
    ]
    label = f"--set {shown(named[-1])}" if named else "--set"
    return UserError(f"{label}: {message}")


def recipe_to_dict(recipe: Recipe) -> dict[str, Any]:
    """The inverse of `recipe_from_dict`: plain data, in the same shape a user writes."""

    def convert(value: Any) -> Any:
        if isinstance(value, FilesSource):
            return value.pattern
        if isinstance(value, WeightedSources):
            return [convert(corpus) for corpus in value.corpora]
        if dataclasses.is_dataclass(value):
            out = {f.name: convert(getattr(value, f.name)) for f in fields(value)}
            if type(value) in SOURCE_KINDS.values():
                out = {k: v for k, v in out.items() if v is not None}
            return out
        return value

    return convert(recipe)


def recipe_to_yaml(recipe: Recipe) -> str:
    return yaml.safe_dump(recipe_to_dict(recipe), sort_keys=False, allow_unicode=True)


def parse_train(value: Any, where: str, key: str) -> TrainSource:
    """`data.train` (`key`): one source, or a list of weighted corpora, each
    {corpus: SOURCE, weight: W} (weight 1 if not written)."""
    if not isinstance(value, list):
        return parse_source(value, where, key)
    if not value:
        raise UserError(
            f"{where}: {key} is an empty list; name at least one corpus, e.g. "
            "- {corpus: corpus/train.{lang}.gz, weight: 1}"
        )
    corpora = []
    for i, entry in enumerate(value):
        if isinstance(entry, dict) and "corpus" not in entry:
            raise UserError(
                f"{where}: {key}[{i}] names no corpus (found: {shown_keys(entry) or 'nothing'}); "
                "write {corpus: SOURCE, weight: W}, e.g. "
                "{corpus: corpus/train.{lang}.gz, weight: 1}"
            )
        if not isinstance(entry, dict):
            raise UserError(
                f"{where}: {key}[{i}] must be a mapping {{corpus: SOURCE, weight: W}}, got "
                f"{shown(entry)}; e.g. - {{corpus: corpus/train.{{lang}}.gz, weight: 1}}"
            )
        corpora.append(_build(WeightedCorpus, entry, where, f"{key}[{i}]."))
    return WeightedSources(tuple(corpora))


def parse_source(value: Any, where: str, key: str) -> Source:
    """Turn one YAML value of `data.train`/`valid`/`test` (`key`) into a typed source."""
    if isinstance(value, str):
        if "{lang}" not in value:
            raise UserError(
                f"{where}: {key}: the file pattern {shown(value)} has no {{lang}}; write e.g. "
                "corpus/train.{lang}.gz for corpus/train.de.gz + corpus/train.en.gz, "
                "or {tsv: FILE} for a tab-separated file"
            )
        return FilesSource(value)
    if isinstance(value, dict):
        kinds = [k for k in value if k in SOURCE_KINDS]
        if len(kinds) != 1:
            raise UserError(
                f"{where}: {key}: a source mapping needs exactly one of "
                f"{', '.join(SOURCE_KINDS)} (found {shown_keys(value) or 'nothing'})"
            )
        return _build(SOURCE_KINDS[kinds[0]], value, where, f"{key}.")
    if isinstance(value, list):
        raise UserError(
            f"{where}: {key}: only data.train may be a list of weighted corpora; give one "
            "source here, e.g. corpus/valid.{lang}"
        )
    raise UserError(
        f"{where}: {key}: a corpus source is a file pattern with {{lang}} or a mapping such as "
        "{tsv: FILE}, {jsonl: FILE}, {hub: NAME, split: S}, {dataset_dir: DIR, split: S}"
    )


def _build(cls: type, raw: Any, where: str, prefix: str) -> Any:
    """Check `raw` against dataclass `cls` field by field and construct it."""
    section = prefix.rstrip(".") or "the recipe"
    if not isinstance(raw, dict):
        raise UserError(f"{where}: {section} must be a mapping of keys, got {shown(raw)}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    for key in raw:
        if key not in known:
            hint = difflib.get_close_matches(shown_key(key), known, n=1)
            suggestion = f" (did you mean '{prefix}{hint[0]}'?)" if hint else ""
            raise UserError(
                f"{where}: unknown key '{prefix}{shown_key(key)}'{suggestion}; "
                f"valid keys in {section}: {', '.join(known)}"
            )
    values = {}
    for name, f in known.items():
        if name in raw:
            values[name] = _check(hints[name], raw[name], where, f"{prefix}{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise UserError(f"{where}: '{prefix}{name}' is required")
    built = cls(**values)
    check_fields(built, where, prefix)
    return built


def _check(tp: Any, value: Any, where: str, key: str) -> Any:
    """Return `value` checked (and, for sections and sources, converted) against `tp`."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        if WeightedSources in args:  # data.train
            return parse_train(value, where, key)
        if FilesSource in args:  # Source or Source | None
            return parse_source(value, where, key)
        (inner,) = [a for a in args if a is not type(None)]
        return _check(inner, value, where, key)
    if dataclasses.is_dataclass(tp):
        return _build(tp, {} if value is None else value, where, f"{key}.")
    if origin is Literal:
        if value not in args:
            raise UserError(
                f"{where}: '{key}' must be one of {', '.join(map(str, args))}, got {shown(value)}"
            )
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise UserError(f"{where}: '{key}' must be a mapping, got {shown(value)}")
        return value
    if tp is float and isinstance(value, str):
        # PyYAML follows YAML 1.1, which reads 1e-3 (no dot) as a string.
        with contextlib.suppress(ValueError):
            value = float(value)
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, int | float) and not isinstance(value, bool),
        str: isinstance(value, str),
    }[tp]
    if not ok:
        hint = f" (YAML reads {value} as a boolean: quote it)" if isinstance(value, bool) else ""
        raise UserError(f"{where}: '{key}' must be {tp.__name__}, got {shown(value)}{hint}")
    if tp is not float:
        return value
    try:
        return float(value)
    except OverflowError:  # an int too large for a float: not a finite number either
        raise UserError(f"{where}: '{key}' must be a finite number, got {shown(value)}") from None


def _apply_override(raw: dict, item: str, where: str) -> None:
    key, sep, text = item.partition("=")
    key = key.strip()
    named = f"--set {shown_key(item)!r}"  # the start, which names the key
    if not sep or not key:
        raise UserError(f"{named}: write --set section.key=value, e.g. train.max_epochs=3")
    value = parse_yaml(text, named, "value is not valid YAML") if text.strip() else None
    check_size(value, named, "the value")
    if isinstance(value, dict) and any(":" in str(k) and v is None for k, v in value.items()):
        spaced = ", ".join(
            str(k).replace(":", ": ", 1) if v is None else f"{k}: {v}" for k, v in value.items()
        )
        raise UserError(
            f"{named}: YAML reads {shown(text.strip())} as a key with no value; put a space "
            f"after each colon: {key}={{{spaced}}}"
        )
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise UserError(f"{named}: '{shown_key(part)}' is not a section in {where}")
        node = child
    node[parts[-1]] = value


def _use_alternative(recipe: Recipe, where: str) -> Recipe:
    data = recipe.data
    if data.use is None:
        return recipe
    if data.use not in data.alternatives:
        raise UserError(
            f"{where}: data.use is {shown(data.use)} but data.alternatives has no such entry "
            f"(defined: {shown_keys(data.alternatives) or 'none defined'})"
        )
    chosen = data.alternatives[data.use]
    if not isinstance(chosen, dict):
        raise UserError(
            f"{where}: data.alternatives.{shown_key(data.use)} must map train/valid/test"
        )
    splits = {}
    for key, value in chosen.items():
        if key not in ("train", "valid", "test"):
            raise UserError(
                f"{where}: unknown key 'data.alternatives.{shown_key(data.use)}.{shown_key(key)}'; "
                "valid keys: train, valid, test"
            )
        named = f"data.alternatives.{shown_key(data.use)}.{key}"
        parse = parse_train if key == "train" else parse_source
        splits[key] = parse(value, where, named)
    return dataclasses.replace(recipe, data=dataclasses.replace(data, **splits))


def override_decode(
    base: DecodeConfig, overrides: Mapping[str, object], where: str
) -> DecodeConfig:
    """`base` with each of `overrides` that is not None put in, as a recipe's decode
    section is checked: an unknown key, a value of the wrong type or outside its rule is a
    UserError naming `where` and the key (decode settings given at translation time)."""
    chosen = {key: value for key, value in overrides.items() if value is not None}
    return _build(DecodeConfig, {**dataclasses.asdict(base), **chosen}, where, "decode.")
