"""Recipe limits (nmt.recipe.load, nmt.recipe.reading): values a recipe must not be able to hold.

Checked here: a YAML alias bomb ("billion laughs") in a recipe file, in a `--set` value
and in a model directory's recipe.yaml is refused in bounded time, naming where it was,
and so are self-referencing aliases, deep nesting and huge files; any value quoted in an
error message is cut short; inf and NaN (however written) are refused for every ruled
float key; `decode.beam_size` has an upper bound, at translation time too;
`model.input_feeding` against the attention; the rules of the newer train/decode keys;
layer counts, sizes and the parameter count a recipe describes (also in a model
directory's edited recipe.yaml), and a learning rate the optimizer's float32 can hold.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import time
import typing
from pathlib import Path

import pytest
from helpers.checkout import RECIPES

from nmt.cli.main import app
from nmt.decode.translate import Translator
from nmt.errors import UserError
from nmt.recipe.fields import MAX_LEARNING_RATE, MAX_PARAMETERS
from nmt.recipe.load import load_recipe, override_decode, recipe_from_dict
from nmt.recipe.reading import MAX_BYTES, MAX_NODES, MAX_SHOWN, check_size, shown
from nmt.recipe.schema import (
    MAX_BEAM,
    DataConfig,
    DecodeConfig,
    ModelConfig,
    TokenizerConfig,
    TrainConfig,
)

MINIMAL = """\
data:
  source_lang: de
  target_lang: en
  train: corpus/train.{lang}.gz
"""

# Nine levels of nine aliases each: 9^9 ≈ 387 million strings once expanded.
LAUGHS = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"] + [
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)
]
BOMB = "{" + ", ".join(LAUGHS) + "}"  # one YAML flow mapping: a recipe value or a --set
SECONDS = 5  # a refusal takes milliseconds; expanding the bomb would take hours


def minimal(**sections: dict) -> dict:
    raw: dict = {"data": {"source_lang": "de", "target_lang": "en", "train": "c/t.{lang}"}}
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return raw


def refusal(load: typing.Callable[[], object]) -> str:
    """The UserError message of `load()`, asserted to come within `SECONDS`."""
    start = time.perf_counter()
    # one line, as every UserError is; each caller checks the words it expects
    with pytest.raises(UserError, match=r"\A[^\n]+\Z") as caught:
        load()
    assert time.perf_counter() - start < SECONDS
    message = str(caught.value)
    assert "\n" not in message and len(message) < 400, message
    return message


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------- size


@pytest.mark.parametrize(
    "text",
    [
        f"  use: {BOMB}\n",  # data.use, before the other data keys
        f"  alternatives: {BOMB}\n",
        f"model:\n  cell: {BOMB}\n",
        f"seed: {BOMB}\n",
        "\n".join(LAUGHS) + "\n",  # the anchors as unknown top-level keys
    ],
    ids=["data.use", "data.alternatives", "model.cell", "seed", "top-level"],
)
def test_alias_bomb_in_a_recipe_file(tmp_path, text):
    recipe = MINIMAL.replace("data:\n", "data:\n" + text) if text[0] == " " else MINIMAL + text
    path = write(tmp_path / "bomb.yaml", recipe)
    message = refusal(lambda: load_recipe(path))
    assert str(path) in message and f"more than {MAX_NODES} values" in message
    assert "alias" in message


def test_alias_bomb_in_a_set_value(tmp_path):
    path = write(tmp_path / "recipe.yaml", MINIMAL)
    item = f"model.cell={BOMB}"
    message = refusal(lambda: load_recipe(path, [item]))
    assert message.startswith("--set 'model.cell={a0: &a0") and "values" in message
    assert str(path) not in message  # the file is fine; the --set is at fault


def test_alias_bomb_in_a_model_directory_recipe(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    write(model / "recipe.yaml", MINIMAL + f"seed: {BOMB}\n")
    assert str(model / "recipe.yaml") in refusal(lambda: load_recipe(model / "recipe.yaml"))
    message = refusal(lambda: Translator.load(model, "cpu"))  # what nmt translate does
    assert str(model / "recipe.yaml") in message


def test_nmt_train_refuses_an_alias_bomb_in_a_real_process(tmp_path):
    path = write(tmp_path / "bomb.yaml", MINIMAL + f"seed: {BOMB}\n")
    nmt = Path(sys.executable).parent / "nmt"
    done = subprocess.run(
        [str(nmt), "train", str(path), "--output-dir", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=120,  # a hang fails here instead of eating the machine's memory
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: ") and len(done.stderr.splitlines()) == 1
    assert str(path) in done.stderr and not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("seed: &a [*a]\n", "levels deep"),  # an alias inside its own anchor
        ("seed: " + "[" * 50 + "]" * 50 + "\n", "levels deep"),
        ("seed: " + "[" * 20000 + "]" * 20000 + "\n", "nested too deeply"),  # PyYAML recursion
        ("seed: [" + ", ".join(["1"] * (MAX_NODES + 1)) + "]\n", "values"),
    ],
    ids=["self-alias", "nested-50", "nested-20000", "long-list"],
)
def test_other_shapes_too_big_for_a_recipe(tmp_path, text, words):
    path = write(tmp_path / "r.yaml", MINIMAL + text)
    message = refusal(lambda: load_recipe(path))
    assert str(path) in message and words in message


@pytest.mark.parametrize(
    ("value", "words"),
    [("9" * 5000, "4300 digits"), ("2024-02-30", "day is out of range")],
    ids=["5000-digit-int", "bad-date"],
)
def test_yaml_values_pyyaml_cannot_build(tmp_path, value, words):
    path = write(tmp_path / "r.yaml", MINIMAL + f"seed: {value}\n")
    message = refusal(lambda: load_recipe(path))
    assert message.startswith(f"{path}: not valid YAML: ") and words in message
    message = refusal(lambda: load_recipe(write(tmp_path / "ok.yaml", MINIMAL), [f"seed={value}"]))
    assert message.startswith("--set 'seed=") and words in message


def test_a_huge_recipe_file(tmp_path):
    path = write(tmp_path / "r.yaml", MINIMAL + "#" * MAX_BYTES + "\n")
    assert "too large" in refusal(lambda: load_recipe(path))


def test_size_check_counts_aliases_each_time_and_lets_real_recipes_through():
    shared = list(range(100))
    check_size({"a": shared}, "r")  # 1 mapping + 1 key + 1 list + 100 ints
    with pytest.raises(UserError, match="more than"):
        check_size({str(i): shared for i in range(MAX_NODES // 100)}, "r")
    for path in RECIPES.glob("*.yaml"):
        load_recipe(path)  # every shipped recipe is far below the limits


# ---------------------------------------------------------------------------- shown values


def test_long_string_in_a_wrong_type_error_is_cut():
    message = refusal(lambda: recipe_from_dict(minimal(model={"hidden_size": "y" * 100_000})))
    assert "'model.hidden_size' must be int" in message
    assert "yyyy...yyyy" in message and message.count("y") < MAX_SHOWN


@pytest.mark.parametrize(
    "raw",
    [
        minimal(model={"cell": "z" * 100_000}),  # outside a Literal
        minimal(data={"train": "z" * 100_000}),  # a file pattern without {lang}
        minimal(data={"alternatives": ["z" * 100_000] * 1000}),  # not a mapping
        minimal(**{"z" * 100_000: {}}),  # an unknown key
        minimal(data={"use": "z" * 100_000, "alternatives": {"z" * 9000: {}}}),
        minimal(decode={"beam_size": 10**5000}),  # repr() of this int raises in Python
    ],
    ids=["literal", "pattern", "mapping", "key", "use", "huge-int"],
)
def test_any_value_in_an_error_is_cut(raw):
    assert len(refusal(lambda: recipe_from_dict(raw, "my.yaml"))) < 300


def test_shown_is_bounded_for_every_kind_of_value():
    nested = [[["w" * 500] * 50] * 50] * 50
    for value in ("v" * 10**6, nested, {i: nested for i in range(50)}, 10**5000, 1.5):
        assert len(shown(value)) <= MAX_SHOWN
    assert shown("short") == "'short'" and shown([1, 2]) == "[1, 2]"
    assert shown(10**100 - 1) == "<an integer of 100 digits>"


def test_a_huge_integer_for_a_float_key_is_refused():
    message = refusal(lambda: recipe_from_dict(minimal(train={"learning_rate": 10**400})))
    assert "'train.learning_rate' must be a finite number" in message


# ---------------------------------------------------------------------------- finite numbers

SECTIONS = {"data": DataConfig, "tokenizer": TokenizerConfig, "model": ModelConfig}
SECTIONS |= {"train": TrainConfig, "decode": DecodeConfig}
FLOAT_KEYS = [
    f"{section}.{f.name}"
    for section, cls in SECTIONS.items()
    for f in dataclasses.fields(cls)
    if typing.get_type_hints(cls)[f.name] in (float, float | None)
]


def test_every_float_key_has_a_rule():
    assert "train.learning_rate" in FLOAT_KEYS and "decode.max_length_ratio" in FLOAT_KEYS
    for key in FLOAT_KEYS:
        section, name = key.split(".")
        (f,) = [f for f in dataclasses.fields(SECTIONS[section]) if f.name == name]
        assert "test" in f.metadata, key  # the finite check comes with a field's rule


@pytest.mark.parametrize("key", FLOAT_KEYS)
@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan", "1e999", "'inf'", "'nan'"])
def test_non_finite_numbers_are_refused_for_every_float_key(tmp_path, key, value):
    path = write(tmp_path / "r.yaml", MINIMAL)
    message = refusal(lambda: load_recipe(path, [f"{key}={value}"]))
    assert f"'{key}' must be a finite number" in message


@pytest.mark.parametrize(
    "text", ["learning_rate: .inf", "max_minutes: .Inf", "clip_norm: 1.0e+400", "lr_decay: .NaN"]
)
def test_non_finite_numbers_in_a_recipe_file(tmp_path, text):
    path = write(tmp_path / "r.yaml", MINIMAL + f"train:\n  {text}\n")
    message = refusal(lambda: load_recipe(path))
    assert str(path) in message and f"'train.{text.split(':')[0]}'" in message


@pytest.mark.parametrize("name", ["length_penalty", "max_length_ratio"])
@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_non_finite_decode_settings_at_translation_time(name, value):
    with pytest.raises(UserError, match=f"'decode.{name}' must be a finite number"):
        override_decode(DecodeConfig(), {name: value}, "decode options")


def test_large_finite_numbers_still_pass():
    recipe = recipe_from_dict(minimal(train={"max_minutes": 1e300, "learning_rate": "1e-3"}))
    assert recipe.train.max_minutes == 1e300 and recipe.train.learning_rate == 0.001


# ---------------------------------------------------------------------------- beam size


def test_beam_size_upper_bound():
    assert recipe_from_dict(minimal(decode={"beam_size": MAX_BEAM})).decode.beam_size == MAX_BEAM
    message = refusal(lambda: recipe_from_dict(minimal(decode={"beam_size": MAX_BEAM + 1})))
    assert f"'decode.beam_size' must be in [1, {MAX_BEAM}], got {MAX_BEAM + 1}" in message


def test_beam_size_bound_holds_at_translation_time(model_dir, runner, tmp_path):
    translator = Translator.load(model_dir, "cpu")
    with pytest.raises(UserError, match=r"'decode.beam_size' must be in \[1, 100\]"):
        translator.decode_config(beam_size=100_000)
    assert translator.decode_config(beam_size=MAX_BEAM).beam_size == MAX_BEAM
    source = write(tmp_path / "in.en", "one red dog sleeps\n")
    args = [str(source), "--model", str(model_dir), "--device", "cpu", "--beam", "100000"]
    result = runner.invoke(app, ["translate", *args])
    assert result.exit_code == 1 and result.stdout == ""
    last = result.stderr.strip().splitlines()[-1]
    assert last == "error: --beam 100000: give a beam of 1 (greedy) to 100"  # the flag typed


# ---------------------------------------------------------------------------- input feeding


@pytest.mark.parametrize("attention", ["bahdanau", "none"])
def test_explicit_input_feeding_needs_luong(attention):
    raw = minimal(model={"attention": attention, "input_feeding": True})
    message = refusal(lambda: recipe_from_dict(raw, "my.yaml"))
    assert "model.input_feeding" in message and attention in message and "my.yaml" in message


@pytest.mark.parametrize(
    ("attention", "input_feeding", "feeds"),
    [
        ("luong_general", None, True),
        ("luong_dot", None, True),
        ("luong_concat", True, True),
        ("luong_general", False, False),
        ("luong_concat", False, False),
        ("bahdanau", None, False),
        ("bahdanau", False, False),
        ("none", None, False),
    ],
)
def test_feeds_input(attention, input_feeding, feeds):
    model = {"attention": attention, "input_feeding": input_feeding, "bidirectional": False}
    recipe = recipe_from_dict(minimal(model=model))
    assert recipe.model.input_feeding is input_feeding
    assert recipe.model.feeds_input is feeds


# ---------------------------------------------------------------------------- newer keys


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("train.save_every", -1, "must be >= 0"),
        ("train.save_every", 2.5, "must be int"),
        ("train.skip_nonfinite", "yes", "must be bool"),
        ("train.skip_nonfinite", 1, "must be bool"),
        ("train.deterministic", "true", "must be bool"),
        ("decode.max_input_length", 0, "must be > 0"),
        ("decode.max_input_length", -5, "must be > 0"),
        ("decode.max_input_length", "long", "must be int"),
    ],
)
def test_newer_keys_refuse_bad_values(key, value, words):
    section, name = key.split(".")
    message = refusal(lambda: recipe_from_dict(minimal(**{section: {name: value}}), "my.yaml"))
    assert f"'{key}' {words}" in message


def test_max_input_length_is_on_by_default_and_null_turns_it_off(tmp_path):
    # A source of a million characters must not run for minutes: a cap by default.
    assert recipe_from_dict(minimal()).decode.max_input_length == 300
    off = recipe_from_dict(minimal(decode={"max_input_length": None}))
    assert off.decode.max_input_length is None
    # recipe.yaml files saved before: one without the key gets the new default; one that
    # names null (nmt wrote every key, so every older model directory's does) keeps it off.
    saved = write(tmp_path / "recipe.yaml", MINIMAL + "decode:\n  beam_size: 5\n")
    assert load_recipe(saved).decode.max_input_length == 300
    write(saved, MINIMAL + "decode:\n  beam_size: 5\n  max_input_length: null\n")
    assert load_recipe(saved).decode.max_input_length is None


def test_newer_keys_accept_good_values():
    train = {"save_every": 0, "skip_nonfinite": True, "deterministic": True}
    recipe = recipe_from_dict(minimal(train=train, decode={"max_input_length": None}))
    assert recipe.train.skip_nonfinite and recipe.train.deterministic
    assert recipe.decode.max_input_length is None
    recipe = recipe_from_dict(minimal(train={"save_every": 50}, decode={"max_input_length": 7}))
    assert recipe.train.save_every == 50 and recipe.decode.max_input_length == 7


# ---------------------------------------------------------------------------- model size


@pytest.mark.parametrize(
    ("key", "value", "rule"),
    [
        ("encoder_layers", 100_000_000, "in [1, 16]"),  # built for minutes before
        ("decoder_layers", 17, "in [1, 16]"),
        ("hidden_size", 10**12, "in [1, 16384]"),  # an allocation traceback before
        ("embedding_size", 16385, "in [1, 16384]"),
        ("encoder_hidden_size", 10**6, "in [1, 16384]"),
    ],
)
def test_layer_counts_and_sizes_are_bounded(tmp_path, key, value, rule):
    path = write(tmp_path / "r.yaml", MINIMAL)
    message = refusal(lambda: load_recipe(path, [f"model.{key}={value}"]))
    assert message.startswith(f"--set 'model.{key}={value}': 'model.{key}' must be {rule}")
    assert message.endswith(f"got {value}")


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("model.hidden_size=16000", "model.hidden_size"),  # each key within its own bound
        ("tokenizer.vocab_size=100000000", "tokenizer.vocab_size"),
    ],
)
def test_a_model_past_the_parameter_limit_is_refused_before_it_is_built(tmp_path, override, key):
    path = write(tmp_path / "r.yaml", MINIMAL)
    message = refusal(lambda: load_recipe(path, ["model.hidden_size=32", override]))
    assert message.startswith(f"--set {override!r}: the model would have ")  # the one in effect
    assert f"more than the {MAX_PARAMETERS:.0e}" in message and f"'{key}'" in message


def test_a_model_directory_whose_recipe_was_edited_huge_is_refused(copy_model, runner, tmp_path):
    model = copy_model()
    recipe = model / "recipe.yaml"
    source = write(tmp_path / "in.en", "one red dog sleeps\n")
    text = recipe.read_text(encoding="utf-8")
    for edit in ["hidden_size: 16000", "hidden_size: 1000000000000", "encoder_layers: 100000"]:
        key = edit.split(":")[0]
        recipe.write_text(re.sub(rf"(?m)^  {key}: .*$", f"  {edit}", text), encoding="utf-8")
        message = refusal(lambda: Translator.load(model, "cpu"))  # serve and evaluate too
        assert message.startswith(f"{recipe}: ") and f"'model.{key}'" in message
        start = time.perf_counter()
        result = runner.invoke(app, ["translate", str(source), "--model", str(model)])
        assert result.exit_code == 1 and result.stdout == "", result.output
        assert time.perf_counter() - start < SECONDS
        assert result.stderr.startswith(f"error: {recipe}: ") and result.stderr.count("\n") == 1


@pytest.mark.parametrize("rate", [3e38, 1e38, "3.5e38"])
def test_a_learning_rate_float32_cannot_hold_is_refused(tmp_path, rate):
    path = write(tmp_path / "r.yaml", MINIMAL)
    message = refusal(lambda: load_recipe(path, [f"train.learning_rate={rate}"]))
    assert f"'train.learning_rate' must be in (0, {MAX_LEARNING_RATE:g}]" in message
    assert "float32" in message
    assert recipe_from_dict(minimal(train={"learning_rate": MAX_LEARNING_RATE}))
