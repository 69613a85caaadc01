"""Recipes (nmt.recipe.load): YAML → checked, frozen dataclasses.

Checked here: a minimal recipe gets every default; each corpus-source syntax parses to its
dataclass; unknown keys, wrong types and missing keys are `UserError`s that name the key
and the file (and suggest the close match and the valid keys); `--set` overrides get the
same checks; cross-key checks; `data.alternatives` + `data.use`; the YAML round trip;
the default `output_dir`; unreadable recipe files; and every recipe shipped in recipes/.
"""

from __future__ import annotations

import dataclasses
import re
import textwrap
from pathlib import Path

import pytest
import yaml
from helpers.checkout import RECIPES

from nmt.errors import UserError
from nmt.recipe.load import load_recipe, recipe_from_dict, recipe_to_dict, recipe_to_yaml
from nmt.recipe.schema import (
    DataConfig,
    DecodeConfig,
    ModelConfig,
    Recipe,
    TokenizerConfig,
    TrainConfig,
)
from nmt.recipe.sources import (
    DatasetDirSource,
    FilesSource,
    HubSource,
    JsonlSource,
    ToySource,
    TsvSource,
)

MINIMAL = """\
data:
  source_lang: de
  target_lang: en
  train: corpus/train.{lang}.gz
"""


def write(tmp_path: Path, text: str, name: str = "recipe.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def minimal(**sections: dict) -> dict:
    """The minimal recipe as plain data, with extra sections merged in."""
    raw: dict = {"data": {"source_lang": "de", "target_lang": "en", "train": "c/t.{lang}"}}
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return raw


def error_of(raw: dict, overrides: tuple[str, ...] = ()) -> str:
    # one line, as every UserError is; each caller checks the words it expects
    with pytest.raises(UserError, match=r"\A[^\n]+\Z") as e:
        recipe_from_dict(raw, "my.yaml", overrides)
    return str(e.value)


# ---------------------------------------------------------------------------- defaults


def test_minimal_recipe_gets_all_defaults(tmp_path):
    recipe = load_recipe(write(tmp_path, MINIMAL))
    assert recipe.data == DataConfig("de", "en", FilesSource("corpus/train.{lang}.gz"))
    assert recipe.data.valid is None and recipe.data.test is None
    assert recipe.tokenizer == TokenizerConfig()
    assert recipe.model == ModelConfig()
    assert recipe.train == TrainConfig()
    assert recipe.decode == DecodeConfig()
    assert recipe.seed == 1


def test_recipe_is_frozen(tmp_path):
    recipe = load_recipe(write(tmp_path, MINIMAL))
    with pytest.raises(
        dataclasses.FrozenInstanceError, match="cannot assign to field 'hidden_size'"
    ):
        recipe.model.hidden_size = 3  # type: ignore[misc]


def test_output_dir_defaults_to_runs_and_recipe_stem(tmp_path):
    recipe = load_recipe(write(tmp_path, MINIMAL, "my_model.yaml"))
    assert Path(recipe.output_dir) == Path("runs") / "my_model"


def test_explicit_output_dir_is_kept(tmp_path):
    recipe = load_recipe(write(tmp_path, MINIMAL + "output_dir: elsewhere/x\n"))
    assert recipe.output_dir == "elsewhere/x"


def test_empty_sections_mean_defaults():
    recipe = recipe_from_dict({**minimal(), "model": None, "train": None})
    assert recipe.model == ModelConfig() and recipe.train == TrainConfig()


def test_int_is_accepted_for_float_and_stored_as_float():
    recipe = recipe_from_dict(minimal(train={"learning_rate": 1, "clip_norm": 2}))
    assert recipe.train.learning_rate == 1.0 and isinstance(recipe.train.learning_rate, float)
    assert isinstance(recipe.train.clip_norm, float)


def test_optional_int_accepts_null():
    recipe = recipe_from_dict(minimal(train={"max_epochs": None, "max_steps": 50}))
    assert recipe.train.max_epochs is None and recipe.train.max_steps == 50


# ---------------------------------------------------------------------------- sources


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("corpus/train.{lang}.gz", FilesSource("corpus/train.{lang}.gz")),
        ({"tsv": "corpus/train.tsv"}, TsvSource("corpus/train.tsv")),
        ({"jsonl": "corpus/train.jsonl"}, JsonlSource("corpus/train.jsonl")),
        ({"hub": "org/name", "split": "train"}, HubSource("org/name", "train")),
        (
            {"hub": "wmt16", "split": "validation", "config": "de-en"},
            HubSource("wmt16", "validation", "de-en"),
        ),
        ({"dataset_dir": "saved/ds", "split": "test"}, DatasetDirSource("saved/ds", "test")),
        ({"dataset_dir": "saved/ds"}, DatasetDirSource("saved/ds", None)),
        ({"toy": "numbers", "split": "valid", "size": 30}, ToySource("numbers", "valid", 30)),
        ({"toy": "numbers", "split": "train"}, ToySource("numbers", "train", None)),
    ],
)
def test_every_source_syntax_parses(value, expected):
    raw = minimal()
    raw["data"].update(train=value, valid=value, test=value)
    data = recipe_from_dict(raw).data
    assert data.train == expected and type(data.train) is type(expected)
    assert data.valid == expected and data.test == expected


def test_sources_in_yaml_flow_syntax(tmp_path):
    recipe = load_recipe(
        write(
            tmp_path,
            """\
            data:
              source_lang: en
              target_lang: de
              train: {tsv: corpus/train.tsv}
              valid: {hub: bentrevett/multi30k, split: validation}
              test: {toy: numbers, split: test, size: 20}
            """,
        )
    )
    assert recipe.data.train == TsvSource("corpus/train.tsv")
    assert recipe.data.valid == HubSource("bentrevett/multi30k", "validation")
    assert recipe.data.test == ToySource("numbers", "test", 20)


def test_file_pattern_without_lang_is_an_error():
    raw = minimal()
    raw["data"]["train"] = "corpus/train.de.gz"
    message = error_of(raw)
    assert "data.train" in message and "{lang}" in message


@pytest.mark.parametrize(
    "value",
    [{"tsv": "a.tsv", "jsonl": "a.jsonl"}, {"split": "train"}, {}],
)
def test_source_mapping_needs_exactly_one_kind(value):
    raw = minimal()
    raw["data"]["train"] = value
    message = error_of(raw)
    assert "data.train" in message
    for kind in ("tsv", "jsonl", "hub", "dataset_dir", "toy"):
        assert kind in message


@pytest.mark.parametrize("value", [5, ["a", "b"], True])
def test_source_of_wrong_type_is_an_error(value):
    raw = minimal()
    raw["data"]["train"] = value
    assert "data.train" in error_of(raw)


def test_hub_source_without_split_is_required_error():
    raw = minimal()
    raw["data"]["train"] = {"hub": "org/name"}
    assert "'data.train.split' is required" in error_of(raw)


# ---------------------------------------------------------------------------- unknown keys


def test_unknown_top_level_key(tmp_path):
    path = write(tmp_path, MINIMAL + "modle:\n  cell: gru\n")
    with pytest.raises(UserError, match="^" + re.escape(f"{path}: unknown key 'modle'")) as e:
        load_recipe(path)
    message = str(e.value)
    assert str(path) in message
    assert "'modle'" in message
    assert "did you mean 'model'" in message
    for key in ("data", "tokenizer", "model", "train", "decode", "seed", "output_dir"):
        assert key in message


def test_unknown_key_in_section(tmp_path):
    path = write(tmp_path, MINIMAL + "train:\n  max_epoch: 3\n")
    with pytest.raises(
        UserError, match="^" + re.escape(f"{path}: unknown key 'train.max_epoch'")
    ) as e:
        load_recipe(path)
    message = str(e.value)
    assert str(path) in message
    assert "'train.max_epoch'" in message
    assert "did you mean 'train.max_epochs'" in message
    valid = message.split("valid keys", 1)[1]
    for f in dataclasses.fields(TrainConfig):
        assert f.name in valid


def test_unknown_key_in_source_mapping(tmp_path):
    text = MINIMAL.replace("corpus/train.{lang}.gz", "{hub: org/name, splt: train}")
    path = write(tmp_path, text)
    with pytest.raises(UserError, match="^" + re.escape(f"{path}: ")) as e:
        load_recipe(path)
    message = str(e.value)
    assert str(path) in message
    assert "'data.train.splt'" in message
    assert "did you mean 'data.train.split'" in message
    assert "hub" in message and "config" in message


def test_unknown_key_without_close_match_still_lists_valid_keys():
    message = error_of(minimal(decode={"zzzzzz": 1}))
    assert "'decode.zzzzzz'" in message and "did you mean" not in message
    assert "beam_size" in message and "length_penalty" in message


# ---------------------------------------------------------------------------- types


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("train", "max_epochs", "3"),  # str for int
        ("model", "hidden_size", "big"),
        ("model", "bidirectional", 1),  # int for bool
        ("tokenizer", "joint", "yes please"),
        ("train", "batch_tokens", True),  # bool for int
        ("train", "learning_rate", False),  # bool for float
        ("train", "learning_rate", "fast"),
        ("model", "hidden_size", 1.5),  # float for int
        ("model", "cell", "transformer"),  # outside a Literal
        ("model", "attention", "Bahdanau"),
        ("tokenizer", "model_type", "wordpiece"),
        ("data", "source_lang", 7),
    ],
)
def test_wrong_type_names_the_key(section, key, value):
    message = error_of(minimal(**{section: {key: value}}))
    assert "my.yaml" in message
    assert f"'{section}.{key}'" in message


def test_literal_error_lists_the_choices():
    message = error_of(minimal(model={"cell": "transformer"}))
    assert "lstm" in message and "gru" in message and "rnn" in message


def test_section_that_is_not_a_mapping():
    raw = minimal()
    raw["model"] = [1, 2]
    assert "model" in error_of(raw)


def test_recipe_that_is_not_a_mapping(tmp_path):
    path = write(tmp_path, "- a\n- b\n")
    with pytest.raises(UserError, match="mapping"):
        load_recipe(path)


# ---------------------------------------------------------------------------- required keys


@pytest.mark.parametrize("key", ["source_lang", "target_lang", "train"])
def test_missing_required_data_key(key):
    raw = minimal()
    del raw["data"][key]
    message = error_of(raw)
    assert f"'data.{key}'" in message and "required" in message


def test_missing_data_section(tmp_path):
    path = write(tmp_path, "model:\n  cell: gru\n")
    with pytest.raises(UserError, match="'data' is required") as e:
        load_recipe(path)
    assert "'data'" in str(e.value) and "required" in str(e.value)


def test_empty_recipe_file_asks_for_data(tmp_path):
    with pytest.raises(UserError, match="'data' is required"):
        load_recipe(write(tmp_path, ""))


# ---------------------------------------------------------------------------- overrides


def test_overrides_apply(tmp_path):
    path = write(tmp_path, MINIMAL)
    recipe = load_recipe(path, ["train.max_epochs=3", "data.train={tsv: x.tsv}"])
    assert recipe.train.max_epochs == 3
    assert recipe.data.train == TsvSource("x.tsv")


def test_override_creates_missing_section_and_keeps_others(tmp_path):
    path = write(tmp_path, MINIMAL + "train:\n  batch_tokens: 123\n")
    recipe = load_recipe(path, ["decode.beam_size=1", "train.learning_rate=0.5"])
    assert recipe.decode.beam_size == 1
    assert recipe.train.batch_tokens == 123 and recipe.train.learning_rate == 0.5


def test_override_wins_over_file_and_later_override_wins(tmp_path):
    path = write(tmp_path, MINIMAL + "seed: 4\n")
    assert load_recipe(path, ["seed=5"]).seed == 5
    assert load_recipe(path, ["seed=5", "seed=6"]).seed == 6


def test_override_does_not_change_the_input_dict():
    raw = minimal(train={"max_epochs": 2})
    recipe_from_dict(raw, "r", ["train.max_epochs=9"])
    assert raw["train"]["max_epochs"] == 2


def test_override_is_type_checked(tmp_path):
    path = write(tmp_path, MINIMAL)
    with pytest.raises(UserError, match="'train.max_epochs'"):
        load_recipe(path, ["train.max_epochs=three"])
    with pytest.raises(UserError, match="'model.bidirectional'"):
        load_recipe(path, ["model.bidirectional=1"])


def test_override_with_misspelled_key(tmp_path):
    path = write(tmp_path, MINIMAL)
    with pytest.raises(UserError, match=re.escape("did you mean 'train.max_epochs'")) as e:
        load_recipe(path, ["train.max_epoch=3"])
    assert "did you mean 'train.max_epochs'" in str(e.value)


@pytest.mark.parametrize("item", ["train.max_epochs", "=3", ""])
def test_override_without_key_or_equals_is_an_error(tmp_path, item):
    path = write(tmp_path, MINIMAL)
    with pytest.raises(UserError, match="--set"):
        load_recipe(path, [item])


def test_override_into_a_non_section(tmp_path):
    path = write(tmp_path, MINIMAL + "seed: 2\n")
    with pytest.raises(UserError, match="--set 'seed.x=3'"):
        load_recipe(path, ["seed.x=3"])
    with pytest.raises(UserError, match="--set 'data.train.tsv=x'"):
        load_recipe(path, ["data.train.tsv=x"])


def test_override_with_invalid_yaml_value(tmp_path):
    path = write(tmp_path, MINIMAL)
    with pytest.raises(UserError, match="--set"):
        load_recipe(path, ["data.train={tsv: [x"])


# ---------------------------------------------------------------------------- cross-key checks


@pytest.mark.parametrize(
    ("model", "words"),
    [
        ({"attention": "luong_dot", "encoder_hidden_size": 100, "hidden_size": 128}, "luong_dot"),
        (
            {"attention": "luong_dot", "bidirectional": False, "hidden_size": 64},
            None,  # fine: encoder 64 = decoder 64
        ),
        ({"tie_embeddings": True, "embedding_size": 64, "hidden_size": 128}, "tie_embeddings"),
        ({"tie_embeddings": True, "embedding_size": 128, "hidden_size": 128}, None),
        ({"attention": "none", "bridge": "zeros"}, "bridge"),
        ({"attention": "none", "bridge": "linear"}, None),
        ({"hidden_size": 129, "bidirectional": True}, "hidden_size"),
        ({"hidden_size": 129, "bidirectional": False}, None),
        ({"hidden_size": 129, "bidirectional": True, "encoder_hidden_size": 64}, None),
        ({"dropout": 1.0}, "dropout"),
        ({"hidden_size": 0}, "hidden_size"),
    ],
)
def test_model_cross_key_checks(model, words):
    raw = minimal(model=model)
    if words is None:
        recipe_from_dict(raw)
    else:
        assert words in error_of(raw)


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (minimal(data={"target_lang": "de"}), "source_lang"),
        (minimal(tokenizer={"vocab_size": 4}), "vocab_size"),
        (minimal(train={"max_epochs": None}), "max_epochs"),
        (minimal(train={"teacher_forcing": 0.0}), "teacher_forcing"),
        (minimal(train={"lr_decay": 1.0}), "lr_decay"),
        (minimal(decode={"beam_size": 0}), "beam_size"),
        (minimal(data={"max_ratio": 0.5}), "max_ratio"),
    ],
)
def test_other_cross_key_checks(raw, words):
    assert words in error_of(raw)


def test_luong_dot_error_gives_both_sizes():
    message = error_of(
        minimal(model={"attention": "luong_dot", "encoder_hidden_size": 100, "hidden_size": 128})
    )
    assert "200" in message and "128" in message


def test_encoder_size_defaults_to_half_the_hidden_size_when_bidirectional():
    assert recipe_from_dict(minimal(model={"hidden_size": 128})).model.encoder_size == 64
    one_way = recipe_from_dict(minimal(model={"hidden_size": 128, "bidirectional": False}))
    assert one_way.model.encoder_size == 128


# ---------------------------------------------------------------------------- alternatives

ALTERNATIVES = """\
data:
  source_lang: de
  target_lang: en
  train: {hub: org/name, split: train}
  valid: {hub: org/name, split: validation}
  test: {hub: org/name, split: test}
  alternatives:
    local:
      train: corpus/train.{lang}.gz
      valid: {tsv: corpus/valid.tsv}
    tiny:
      train: {toy: numbers, split: train, size: 10}
"""


def test_alternatives_unused_leave_sources_alone(tmp_path):
    recipe = load_recipe(write(tmp_path, ALTERNATIVES))
    assert recipe.data.train == HubSource("org/name", "train")


def test_use_replaces_the_named_splits(tmp_path):
    recipe = load_recipe(write(tmp_path, ALTERNATIVES), ["data.use=local"])
    assert recipe.data.train == FilesSource("corpus/train.{lang}.gz")
    assert recipe.data.valid == TsvSource("corpus/valid.tsv")
    assert recipe.data.test == HubSource("org/name", "test")  # not named by the alternative
    tiny = load_recipe(write(tmp_path, ALTERNATIVES), ["data.use=tiny"])
    assert tiny.data.train == ToySource("numbers", "train", 10)


def test_unknown_use_lists_the_alternatives(tmp_path):
    path = write(tmp_path, ALTERNATIVES)
    with pytest.raises(
        UserError, match=re.escape("--set 'data.use=locl': data.use is 'locl'")
    ) as e:
        load_recipe(path, ["data.use=locl"])
    message = str(e.value)  # the file is fine: the --set is named, not the file
    assert message.startswith("--set 'data.use=locl': data.use is 'locl'")
    assert "local" in message and "tiny" in message


def test_use_without_alternatives():
    with pytest.raises(UserError, match="data.use"):
        recipe_from_dict(minimal(data={"use": "local"}))


def test_alternative_with_unknown_split_name(tmp_path):
    path = write(tmp_path, ALTERNATIVES.replace("      valid:", "      dev:"))
    with pytest.raises(UserError, match="data.alternatives.local.dev"):
        load_recipe(path, ["data.use=local"])


def test_alternative_sources_are_checked(tmp_path):
    path = write(tmp_path, ALTERNATIVES.replace("corpus/train.{lang}.gz", "corpus/train.gz"))
    with pytest.raises(UserError, match="data.alternatives.local.train"):
        load_recipe(path, ["data.use=local"])


# ---------------------------------------------------------------------------- round trip


def test_yaml_round_trip_of_defaults(tmp_path):
    recipe = load_recipe(write(tmp_path, MINIMAL))
    again = recipe_from_dict(yaml.safe_load(recipe_to_yaml(recipe)))
    assert again == recipe


def test_yaml_round_trip_of_every_source_and_non_defaults(tmp_path):
    recipe = load_recipe(
        write(tmp_path, ALTERNATIVES),
        [
            "data.use=local",
            "data.test={dataset_dir: saved/ds, split: test}",
            "model.cell=gru",
            "model.encoder_hidden_size=100",
            "model.tie_embeddings=true",
            "model.embedding_size=512",
            "train.max_steps=77",
            "train.max_minutes=1.5",
            "decode.length_normalization=average",
            "seed=9",
            "output_dir=out/x",
        ],
    )
    text = recipe_to_yaml(recipe)
    again = recipe_from_dict(yaml.safe_load(text))
    assert again == recipe
    assert isinstance(recipe.data.train, FilesSource)
    assert recipe_to_dict(again)["data"]["train"] == "corpus/train.{lang}.gz"


@pytest.mark.parametrize(
    "source",
    [
        {"hub": "wmt16", "split": "train", "config": "de-en"},
        {"toy": "numbers", "split": "valid", "size": 5},
        {"jsonl": "x.jsonl"},
    ],
)
def test_round_trip_keeps_source_kind(source):
    raw = minimal()
    raw["data"]["train"] = source
    recipe = recipe_from_dict(raw)
    assert recipe_to_dict(recipe)["data"]["train"] == source
    assert recipe_from_dict(yaml.safe_load(recipe_to_yaml(recipe))) == recipe


def test_to_dict_is_plain_data():
    dumped = recipe_to_dict(recipe_from_dict(minimal()))
    assert set(dumped) == {f.name for f in dataclasses.fields(Recipe)}
    yaml.safe_dump(dumped)  # only plain types, else safe_dump raises


# ---------------------------------------------------------------------------- files


def test_missing_recipe_file(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(UserError, match=re.escape(f"{path}: no such recipe file")) as e:
        load_recipe(path)
    assert str(path) in str(e.value)


def test_invalid_yaml(tmp_path):
    path = write(tmp_path, "data: [unclosed\n  model: {\n")
    with pytest.raises(UserError, match=re.escape(f"{path}: not valid YAML")) as e:
        load_recipe(path)
    assert str(path) in str(e.value) and "YAML" in str(e.value)


def test_recipe_not_utf8(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(MINIMAL.encode() + "# Gr\xfc\xdfe\n".encode("latin-1"))
    with pytest.raises(UserError, match=re.escape(f"{path}: not UTF-8 text")) as e:
        load_recipe(path)
    assert str(path) in str(e.value)


@pytest.mark.parametrize("path", sorted(RECIPES.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_recipes_load(path):
    recipe = load_recipe(path)
    assert Path(recipe.output_dir) == Path("runs") / path.stem
    assert recipe_from_dict(yaml.safe_load(recipe_to_yaml(recipe))) == recipe
    for name in recipe.data.alternatives:
        load_recipe(path, [f"data.use={name}"])


def test_there_are_shipped_recipes():
    assert list(RECIPES.glob("*.yaml"))


def test_exponent_without_dot_is_a_float(tmp_path):
    path = write(tmp_path, MINIMAL + "train:\n  learning_rate: 1e-3\n")
    assert load_recipe(path).train.learning_rate == pytest.approx(0.001)


@pytest.mark.parametrize(
    ("override", "key", "rule"),
    [
        ("seed=-1", "seed", "in [0, 2^32)"),
        ("train.max_steps=0", "train.max_steps", "> 0"),
        ("train.max_minutes=-1", "train.max_minutes", "> 0"),
        ("model.encoder_hidden_size=-4", "model.encoder_hidden_size", "in [1, 16384]"),
        ("model.encoder_hidden_size=0", "model.encoder_hidden_size", "in [1, 16384]"),
        ("train.lr_patience=-1", "train.lr_patience", ">= 0"),
        ("decode.length_penalty=-0.5", "decode.length_penalty", ">= 0"),
        ("decode.length_penalty=1e308", "decode.length_penalty", ">= 0 and <= 10"),
        ("train.teacher_forcing=0", "train.teacher_forcing", "in (0, 1]"),
    ],
)
def test_each_key_has_its_own_rule(tmp_path, override, key, rule):
    path = write(tmp_path, MINIMAL)
    with pytest.raises(UserError, match=re.escape(f"'{key}' must be {rule}")) as caught:
        load_recipe(path, [override])
    assert f"'{key}' must be {rule}" in str(caught.value)


@pytest.mark.parametrize("override", ["train.patience=3", "train.lr_schedule=plateau"])
def test_watching_valid_bleu_needs_a_valid_split(tmp_path, override):
    with pytest.raises(UserError, match="set data.valid"):
        load_recipe(write(tmp_path, MINIMAL), [override])


def test_a_yaml_boolean_where_a_string_belongs_gets_a_hint(tmp_path):
    with pytest.raises(UserError, match="quote it"):
        load_recipe(write(tmp_path, MINIMAL), ["data.source_lang=no"])
