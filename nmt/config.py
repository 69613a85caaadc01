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

from nmt.corpus import (
    SOURCE_KINDS,
    FilesSource,
    Source,
)
from nmt.errors import UserError

Cell = Literal["lstm", "gru", "rnn"]
Attention = Literal["none", "bahdanau", "luong_dot", "luong_general", "luong_concat"]


# ---------------------------------------------------------------------------- sections


@dataclass(frozen=True)
class DataConfig:
    source_lang: str
    target_lang: str
    train: Source
    valid: Source | None = None
    test: Source | None = None
    max_length: int = 100  # tokens per side after tokenization; longer training pairs are dropped
    max_ratio: float = 3.0  # longer/shorter side length ratio above which a pair is dropped
    alternatives: dict[str, dict[str, Any]] = field(default_factory=dict)
    use: str | None = None  # name of an entry in `alternatives` that replaces train/valid/test


@dataclass(frozen=True)
class TokenizerConfig:
    type: Literal["sentencepiece", "word"] = "sentencepiece"
    vocab_size: int = 8000
    joint: bool = True  # one vocabulary for both languages, or one per side
    target_vocab_size: int | None = None  # per side only; default: vocab_size
    model_type: Literal["unigram", "bpe"] = "unigram"  # SentencePiece algorithm
    character_coverage: float = 1.0  # SentencePiece: share of characters kept


@dataclass(frozen=True)
class ModelConfig:
    cell: Cell = "lstm"
    embedding_size: int = 256
    hidden_size: int = 512  # decoder state size, and the encoder's output size by default
    encoder_hidden_size: int | None = None  # per direction; default hidden_size / directions
    encoder_layers: int = 2
    decoder_layers: int = 2
    bidirectional: bool = True
    reverse_input: bool = False  # Sutskever et al. 2014: read each source sentence backwards
    attention: Attention = "luong_general"
    input_feeding: bool = True  # Luong variants: feed the previous attentional vector back
    bridge: Literal["linear", "zeros", "copy"] = "linear"  # copy: encoder final states as-is
    dropout: float = 0.3
    tie_embeddings: bool = False  # target embedding = output projection
    init_range: float = 0.1  # uniform(-r, r) for every weight, as Sutskever/Luong; 0: PyTorch's

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def encoder_size(self) -> int:
        """Per-direction hidden size of the encoder RNN."""
        return self.encoder_hidden_size or self.hidden_size // self.directions


@dataclass(frozen=True)
class TrainConfig:
    batch_tokens: int = 4096  # budget per batch: sentences × longest side, padding included
    max_epochs: int | None = 10
    max_steps: int | None = None
    max_minutes: float | None = None
    optimizer: Literal["adam", "sgd", "adadelta"] = "adam"
    learning_rate: float = 1e-3
    lr_schedule: Literal["constant", "plateau", "epoch_decay"] = "constant"
    lr_decay: float = 0.5  # multiply the rate by this when valid BLEU stalls / each epoch
    lr_patience: int = 2  # plateau: evaluations without improvement before decaying
    lr_decay_start: int = 5  # epoch_decay: decay at the end of every epoch after this many
    clip_norm: float = 5.0  # 0 disables gradient clipping
    label_smoothing: float = 0.0
    teacher_forcing: float = 1.0  # probability of feeding the gold previous token
    eval_every: int = 0  # steps between evaluations; 0: at the end of every epoch
    patience: int = 0  # evaluations without a better valid BLEU before stopping; 0: never
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16 autocast applies on CUDA only
    log_every: int = 100  # steps between progress lines


@dataclass(frozen=True)
class DecodeConfig:
    beam_size: int = 5  # 1 is greedy search
    length_penalty: float = 0.6  # GNMT alpha, used when length_normalization is gnmt
    length_normalization: Literal["none", "average", "gnmt"] = "gnmt"
    max_length_ratio: float = 2.0  # output may be this many times the source length...
    max_length_offset: int = 5  # ...plus this many tokens
    min_length: int = 1  # tokens before </s> may be produced
    batch_tokens: int = 8000  # source tokens per translation batch


@dataclass(frozen=True)
class Recipe:
    data: DataConfig
    tokenizer: TokenizerConfig = TokenizerConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    decode: DecodeConfig = DecodeConfig()
    seed: int = 1
    output_dir: str | None = None  # default: runs/<recipe file name>


# ---------------------------------------------------------------------------- loading


def load_recipe(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Read a recipe file, apply `--set key=value` overrides, check and resolve it."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such recipe file; recipes/ holds examples")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise UserError(f"{path}: not valid YAML: {_one_line(e)}") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text; save the recipe as UTF-8") from None
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
    raw = copy.deepcopy(raw)
    for item in overrides:
        _apply_override(raw, item, where)
    recipe = _build(Recipe, raw, where, "")
    recipe = _use_alternative(recipe, where)
    _validate(recipe, where)
    return recipe


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
                f"{where}: {key}: the file pattern {value!r} has no {{lang}}; write e.g. "
                "corpus/train.{lang}.gz for corpus/train.de.gz + corpus/train.en.gz, "
                "or {tsv: FILE} for a tab-separated file"
            )
        return FilesSource(value)
    if isinstance(value, dict):
        kinds = [k for k in value if k in SOURCE_KINDS]
        if len(kinds) != 1:
            raise UserError(
                f"{where}: {key}: a source mapping needs exactly one of "
                f"{', '.join(SOURCE_KINDS)} (found {', '.join(map(str, value)) or 'nothing'})"
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
        raise UserError(f"{where}: {section} must be a mapping of keys, got {raw!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    for key in raw:
        if key not in known:
            hint = difflib.get_close_matches(str(key), known, n=1)
            suggestion = f" (did you mean '{prefix}{hint[0]}'?)" if hint else ""
            raise UserError(
                f"{where}: unknown key '{prefix}{key}'{suggestion}; valid keys in {section}: "
                f"{', '.join(known)}"
            )
    values = {}
    for name, f in known.items():
        if name in raw:
            values[name] = _check(hints[name], raw[name], where, f"{prefix}{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise UserError(f"{where}: '{prefix}{name}' is required")
    return cls(**values)


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
                f"{where}: '{key}' must be one of {', '.join(map(str, args))}, got {value!r}"
            )
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise UserError(f"{where}: '{key}' must be a mapping, got {value!r}")
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
        raise UserError(f"{where}: '{key}' must be {tp.__name__}, got {value!r}")
    return float(value) if tp is float else value


def _apply_override(raw: dict, item: str, where: str) -> None:
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UserError(f"--set {item!r}: write --set section.key=value, e.g. train.max_epochs=3")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as e:
        raise UserError(f"--set {item!r}: value is not valid YAML: {_one_line(e)}") from None
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise UserError(f"--set {item!r}: '{part}' is not a section in {where}")
        node = child
    node[parts[-1]] = value


def _use_alternative(recipe: Recipe, where: str) -> Recipe:
    data = recipe.data
    if data.use is None:
        return recipe
    if data.use not in data.alternatives:
        names = ", ".join(data.alternatives) or "none defined"
        raise UserError(
            f"{where}: data.use is {data.use!r} but data.alternatives has no such entry "
            f"(defined: {names})"
        )
    chosen = data.alternatives[data.use]
    if not isinstance(chosen, dict):
        raise UserError(f"{where}: data.alternatives.{data.use} must map train/valid/test")
    splits = {}
    for key, value in chosen.items():
        if key not in ("train", "valid", "test"):
            raise UserError(
                f"{where}: unknown key 'data.alternatives.{data.use}.{key}'; "
                "valid keys: train, valid, test"
            )
        splits[key] = parse_source(value, where, f"data.alternatives.{data.use}.{key}")
    return dataclasses.replace(recipe, data=dataclasses.replace(data, **splits))


def _validate(r: Recipe, where: str) -> None:
    """Checks that involve more than one key."""
    m, t, d = r.model, r.train, r.decode

    def need(ok: bool, message: str) -> None:
        if not ok:
            raise UserError(f"{where}: {message}")

    need(r.data.source_lang != r.data.target_lang, "data.source_lang equals data.target_lang")
    need(
        r.data.max_length > 0 and r.data.max_ratio >= 1,
        "data.max_length must be > 0 and data.max_ratio >= 1",
    )
    tok = r.tokenizer
    need(
        tok.vocab_size > 4 and (tok.target_vocab_size or 5) > 4,
        "tokenizer.vocab_size (and target_vocab_size) must be above 4 (4 special symbols)",
    )
    need(
        tok.target_vocab_size is None or not tok.joint,
        "tokenizer.target_vocab_size needs tokenizer.joint: false (one vocabulary per side)",
    )
    need(0 < r.tokenizer.character_coverage <= 1, "tokenizer.character_coverage is in (0, 1]")
    for name in ("embedding_size", "hidden_size", "encoder_layers", "decoder_layers"):
        need(getattr(m, name) > 0, f"model.{name} must be positive")
    need(
        m.encoder_hidden_size is not None or m.hidden_size % m.directions == 0,
        "a bidirectional encoder splits model.hidden_size over two directions: make it even "
        "or set model.encoder_hidden_size",
    )
    need(0 <= m.dropout < 1, "model.dropout must be in [0, 1)")
    need(m.init_range >= 0, "model.init_range must be >= 0")
    need(
        m.attention != "luong_dot" or m.encoder_size * m.directions == m.hidden_size,
        f"luong_dot scores s·h need the encoder output size ({m.encoder_size * m.directions}) "
        f"to equal model.hidden_size ({m.hidden_size}); use luong_general or change the sizes",
    )
    need(
        not m.tie_embeddings or m.embedding_size == m.hidden_size,
        "model.tie_embeddings needs model.embedding_size == model.hidden_size",
    )
    need(
        m.attention != "none" or m.bridge != "zeros",
        "attention none with bridge zeros would never show the decoder the source; "
        "use bridge: linear",
    )
    need(t.batch_tokens > 0, "train.batch_tokens must be positive")
    need(
        m.bridge != "copy"
        or (
            m.encoder_layers == m.decoder_layers and m.encoder_size * m.directions == m.hidden_size
        ),
        "bridge copy hands each encoder layer's final state to the same decoder layer: it "
        "needs equal layer counts and encoder output size == model.hidden_size",
    )
    need(t.learning_rate > 0, "train.learning_rate must be positive")
    need(0 < t.teacher_forcing <= 1, "train.teacher_forcing is a probability in (0, 1]")
    need(0 <= t.label_smoothing < 1, "train.label_smoothing must be in [0, 1)")
    need(
        t.clip_norm >= 0 and t.eval_every >= 0 and t.patience >= 0 and t.log_every > 0,
        "train.clip_norm, eval_every and patience must be >= 0, log_every > 0",
    )
    need(0 < t.lr_decay < 1, "train.lr_decay must be in (0, 1)")
    need(
        t.max_epochs is not None or t.max_steps is not None or t.max_minutes is not None,
        "set at least one of train.max_epochs, train.max_steps, train.max_minutes",
    )
    check_decode(d, where)


def check_decode(d: DecodeConfig, where: str) -> None:
    """Decode settings, from a recipe or overridden at translation time (`where` says)."""
    problems = [
        (d.beam_size >= 1, "beam_size must be >= 1"),
        (d.length_penalty >= 0, "length_penalty (GNMT alpha) must be >= 0"),
        (d.max_length_ratio > 0, "max_length_ratio must be > 0"),
        (
            d.max_length_offset >= 0 and d.min_length >= 0,
            "max_length_offset and min_length must be >= 0",
        ),
        (d.batch_tokens > 0, "batch_tokens must be positive"),
    ]
    for ok, message in problems:
        if not ok:
            raise UserError(f"{where}: decode.{message}")


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())
