"""Recipes: YAML → nested frozen dataclasses, with every default in exactly one place.

A recipe is a YAML file with the sections `data`, `tokenizer`, `model`, `train`, `decode`
and the top-level keys `seed` and `output_dir`. Every key is optional except
`data.source_lang`, `data.target_lang` and `data.train`. Unknown or misspelled keys and
values of the wrong type are errors that name the key and list the valid ones (Joey NMT
swallows typos through `**kwargs`; we refuse them). `--set section.key=value` overrides
are applied to the YAML before it is checked, so they get exactly the same checks.

Corpus sources (`data.train`, `data.valid`, `data.test`) are described in nmt/corpus.py.
A recipe may also name alternative sets of splits under `data.alternatives` and pick one
with `data.use`, so that one `--set data.use=local` switches every split at once.
Field rules (`checked`, `positive`, ...) live in nmt/recipe_fields.py; reading YAML within
size limits, and quoting values in errors within a length, in nmt/recipe_yaml.py.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from nmt.corpus import SOURCE_KINDS, FilesSource, Source
from nmt.errors import UserError
from nmt.recipe_fields import (
    check_fields,
    checked,
    fraction,
    layers,
    non_negative,
    positive,
    rate,
    size,
)
from nmt.recipe_rules import check_recipe
from nmt.recipe_yaml import check_size, parse_yaml, read_recipe_file, shown, shown_key, shown_keys

Cell = Literal["lstm", "gru", "rnn"]
Attention = Literal["none", "bahdanau", "luong_dot", "luong_general", "luong_concat"]
Bridge = Literal["linear", "zeros", "copy"]

# Beam search scores beam × vocabulary continuations per sentence and step, so memory and
# time grow with the beam, while quality peaks at small beams (5-10 here) and often falls
# for wide ones (Koehn & Knowles 2017): a beam past 100 is a mistake, not a setting.
MAX_BEAM = 100
# GNMT's length penalty divides a score by ((5 + |Y|) / 6)^α; α is 0.6-1 in practice (Wu
# et al. 2016 tune it in [0, 1]), and a huge α overflows that power before any search.
MAX_LENGTH_PENALTY = 10.0


# ---------------------------------------------------------------------------- sections


@dataclass(frozen=True)
class DataConfig:
    source_lang: str
    target_lang: str
    train: Source
    valid: Source | None = None
    test: Source | None = None
    max_length: int = positive(100)  # tokens per side; longer training pairs are dropped
    max_ratio: float = checked(3.0, lambda v: v >= 1, ">= 1")  # longer/shorter side, at most
    alternatives: dict[str, dict[str, Any]] = field(default_factory=dict)
    use: str | None = None  # name of an entry in `alternatives` that replaces train/valid/test


@dataclass(frozen=True)
class SamplingConfig:
    """Subword regularization: SentencePiece's sampling distributions (drawn by
    nmt.subwords), applied to the training split only."""

    # unigram: smoothing exponent of the sampling distribution; bpe: BPE-dropout probability
    alpha: float = fraction(0.1, low_open=True, high_open=False)
    # unigram only: -1 samples from every segmentation (the lattice), n > 1 from the n best
    nbest: int = checked(-1, lambda v: v == -1 or 1 < v <= 512, "-1 (all) or in [2, 512]")


@dataclass(frozen=True)
class TokenizerConfig:
    type: Literal["sentencepiece", "word"] = "sentencepiece"
    vocab_size: int = checked(8000, lambda v: v > 4, "> 4 (there are 4 special symbols)")
    joint: bool = True  # one vocabulary for both languages, or one per side
    target_vocab_size: int | None = checked(None, lambda v: v > 4, "> 4")  # per side only
    model_type: Literal["unigram", "bpe"] = "unigram"  # SentencePiece algorithm
    character_coverage: float = fraction(1.0, low_open=True, high_open=False)  # SentencePiece
    restrict_target: bool = True  # output layer over the pieces the target side uses only
    # None: off; {alpha, nbest}: training segmentations sampled afresh each epoch (Kudo 2018;
    # BPE-dropout, Provilkov et al. 2020, for model_type bpe); never for valid/test/translate
    sampling: SamplingConfig | None = None


@dataclass(frozen=True)
class ModelConfig:
    cell: Cell = "lstm"
    embedding_size: int = size(256)
    hidden_size: int = size(512)  # decoder state, and the encoder's output by default
    encoder_hidden_size: int | None = size(None)  # per direction; default hidden / dirs
    encoder_layers: int = layers(2)
    decoder_layers: int = layers(2)
    bidirectional: bool = True
    reverse_input: bool = False  # Sutskever et al. 2014: read each source sentence backwards
    attention: Attention = "luong_general"
    input_feeding: bool | None = None  # Luong only: feed h̃_{i-1} back; None: on for Luong
    bridge: Bridge = "linear"  # copy: the encoder's final states as they are
    dropout: float = fraction(0.3, low_open=False, high_open=True)
    tie_embeddings: bool = False  # target embedding = output projection
    share_embeddings: bool = False  # source embedding = target embedding (needs joint vocab)
    init_range: float = non_negative(0.1)  # uniform(-r, r), as Sutskever/Luong; 0: PyTorch's

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def feeds_input(self) -> bool:
        """Input feeding as the decoder applies it: on for Luong unless turned off."""
        return self.attention.startswith("luong") and self.input_feeding is not False

    @property
    def encoder_size(self) -> int:
        """Per-direction hidden size of the encoder RNN."""
        return self.encoder_hidden_size or self.hidden_size // self.directions


@dataclass(frozen=True)
class TrainConfig:
    batch_tokens: int = positive(4096)  # sentences × longest side, padding included
    max_epochs: int | None = positive(10)  # the limits count over resumed runs too,
    max_steps: int | None = positive(None)
    max_minutes: float | None = positive(None)  # except minutes: per invocation
    optimizer: Literal["adam", "sgd", "adadelta"] = "adam"
    learning_rate: float = rate(1e-3)  # at most MAX_LEARNING_RATE (float32)
    lr_schedule: Literal["constant", "plateau", "epoch_decay"] = "constant"
    lr_decay: float = fraction(0.5, low_open=True, high_open=True)  # rate × this on a decay
    lr_patience: int = non_negative(2)  # plateau: evaluations without improvement, then decay
    lr_decay_start: int = non_negative(5)  # epoch_decay: decay after every epoch past this
    clip_norm: float = non_negative(5.0)  # 0 disables gradient clipping
    accumulate: int = positive(1)  # batches per update; the loss averages all their tokens
    label_smoothing: float = fraction(0.0, low_open=False, high_open=True)
    teacher_forcing: float = fraction(1.0, low_open=True, high_open=False)  # P(gold token)
    eval_every: int = non_negative(0)  # steps between evaluations; 0: every epoch's end
    patience: int = non_negative(0)  # evaluations without improvement before stopping; 0: never
    # bf16: autocast on CUDA or CPU; fp16: autocast with a gradient scaler (GPUs without bf16)
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    log_every: int = positive(100)  # steps between progress lines
    save_every: int = non_negative(0)  # steps between resumable saves; 0: at each evaluation
    skip_nonfinite: bool = False  # a NaN/inf loss skips its update instead of stopping the run
    deterministic: bool = False  # deterministic kernels only (slower on CUDA); bit-exact reruns
    tensorboard: bool = False  # curves and attention maps in RUN_DIR/tensorboard/
    # None: off; d: evaluate, choose and save an average of the weights, avg ← d·avg + (1−d)·w
    ema_decay: float | None = checked(None, lambda v: 0 <= v < 1, "in [0, 1)")
    keep_checkpoints: int = non_negative(0)  # keep the last N evaluations' weights (nmt average)
    valid_beam: int = checked(1, lambda v: 0 < v <= MAX_BEAM, f"in [1, {MAX_BEAM}]")  # 1: greedy
    # what chooses the best model and drives patience and lr_schedule plateau
    best_metric: Literal["bleu", "chrf", "loss"] = "bleu"


@dataclass(frozen=True)
class DecodeConfig:
    beam_size: int = checked(5, lambda v: 0 < v <= MAX_BEAM, f"in [1, {MAX_BEAM}]")  # 1: greedy
    length_penalty: float = checked(  # GNMT alpha, for length_normalization gnmt
        0.6, lambda v: 0 <= v <= MAX_LENGTH_PENALTY, f">= 0 and <= {MAX_LENGTH_PENALTY:g}"
    )
    length_normalization: Literal["none", "average", "gnmt"] = "gnmt"
    max_length_ratio: float = positive(2.0)  # output may be this many times the source...
    max_length_offset: int = non_negative(5)  # ...plus this many tokens
    min_length: int = non_negative(1)  # tokens before </s> may be produced
    batch_tokens: int = positive(8000)  # source tokens per translation batch
    # Sources longer than this many tokens are cut (counted and reported); None: never. A
    # search's time and memory grow with the source, and 300 is 3 × data.max_length's
    # default: longer than any pair such a model trained on, so a cut loses little quality.
    max_input_length: int | None = positive(300)


@dataclass(frozen=True)
class Recipe:
    data: DataConfig
    tokenizer: TokenizerConfig = TokenizerConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    decode: DecodeConfig = DecodeConfig()
    seed: int = checked(1, lambda v: 0 <= v < 2**32, "in [0, 2^32)")
    output_dir: str | None = None  # default: runs/<recipe file name>


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
    named = [item for item, key in keys if f"'{key}'" in message or message.startswith(key)]
    label = f"--set {shown(named[-1])}" if named else "--set"
    return UserError(f"{label}: {message}")


def recipe_to_dict(recipe: Recipe) -> dict[str, Any]:
    """The inverse of `recipe_from_dict`: plain data, in the same shape a user writes."""

    def convert(value: Any) -> Any:
        if isinstance(value, FilesSource):
            return value.pattern
        if dataclasses.is_dataclass(value):
            out = {f.name: convert(getattr(value, f.name)) for f in fields(value)}
            if type(value) in SOURCE_KINDS.values():
                out = {k: v for k, v in out.items() if v is not None}
            return out
        return value

    return convert(recipe)


def recipe_to_yaml(recipe: Recipe) -> str:
    return yaml.safe_dump(recipe_to_dict(recipe), sort_keys=False, allow_unicode=True)


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
        splits[key] = parse_source(value, where, f"data.alternatives.{shown_key(data.use)}.{key}")
    return dataclasses.replace(recipe, data=dataclasses.replace(data, **splits))


def check_decode(d: DecodeConfig, where: str) -> None:
    """Decode settings overridden at translation time get the recipe's rules."""
    check_fields(d, where, "decode.")
