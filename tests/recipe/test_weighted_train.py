"""A weighted data.train (nmt.recipe.load.parse_train, nmt.recipe.sources.WeightedSources).

Checked here: a list of {corpus: SOURCE, weight: W} parses, each corpus any source kind,
weight 1 when not written; it round-trips through YAML; through `--set` and
data.alternatives too; every wrong entry (an empty list, no corpus, weight 0, negative,
infinite or not a number, a misspelt key, a bare source, a list for data.valid) is one
UserError line naming the entry's key and the fix.
"""

from __future__ import annotations

import pytest
import yaml

from nmt.errors import UserError
from nmt.recipe.load import recipe_from_dict, recipe_to_dict, recipe_to_yaml
from nmt.recipe.sources import (
    FilesSource,
    HubSource,
    TsvSource,
    WeightedCorpus,
    WeightedSources,
    train_corpora,
)

TWO = [
    {"corpus": "europarl/train.{lang}.gz", "weight": 3},
    {"corpus": {"tsv": "crawl/part-*.tsv"}},
]


def recipe_with(train, **data):
    raw = {"data": {"source_lang": "de", "target_lang": "en", "train": train, **data}}
    return recipe_from_dict(raw, "my.yaml")


def error_of(train, overrides: tuple[str, ...] = (), **data) -> str:
    raw = {"data": {"source_lang": "de", "target_lang": "en", "train": train, **data}}
    with pytest.raises(UserError, match=r"\A[^\n]+\Z") as e:  # one line
        recipe_from_dict(raw, "my.yaml", overrides)
    return str(e.value)


def test_a_list_of_weighted_corpora_parses():
    train = recipe_with(TWO).data.train
    assert train == WeightedSources(
        (
            WeightedCorpus(FilesSource("europarl/train.{lang}.gz"), 3.0),
            WeightedCorpus(TsvSource("crawl/part-*.tsv"), 1.0),  # weight 1 unless written
        )
    )
    assert [c.weight for c in train_corpora(train)] == [3.0, 1.0]
    assert train_corpora(FilesSource("a.{lang}")) == [WeightedCorpus(FilesSource("a.{lang}"))]


def test_any_source_kind_is_a_corpus():
    hub = {"hub": "wmt16", "split": "train", "config": "de-en", "streaming": True}
    train = recipe_with([{"corpus": hub, "weight": 0.5}]).data.train
    assert train.corpora[0].corpus == HubSource("wmt16", "train", "de-en", True)


def test_round_trip_through_yaml():
    recipe = recipe_with(TWO)
    assert recipe_to_dict(recipe)["data"]["train"] == [
        {"corpus": "europarl/train.{lang}.gz", "weight": 3.0},
        {"corpus": {"tsv": "crawl/part-*.tsv"}, "weight": 1.0},
    ]
    assert recipe_from_dict(yaml.safe_load(recipe_to_yaml(recipe))) == recipe


def test_set_and_alternatives_take_a_list():
    raw = {"data": {"source_lang": "de", "target_lang": "en", "train": "a.{lang}"}}
    recipe = recipe_from_dict(
        raw, "my.yaml", ["data.train=[{corpus: {tsv: a.tsv}, weight: 2}, {corpus: {tsv: b.tsv}}]"]
    )
    assert [c.weight for c in recipe.data.train.corpora] == [2.0, 1.0]
    chosen = recipe_with("x.{lang}", alternatives={"local": {"train": TWO}}, use="local")
    assert chosen.data.train == recipe_with(TWO).data.train


@pytest.mark.parametrize(
    ("train", "expected"),
    [
        ([], "data.train is an empty list; name at least one corpus"),
        (
            [TWO[0], {"weight": 2}],
            r"data.train\[1\] names no corpus \(found: weight\); write \{corpus: SOURCE",
        ),
        ([{"corpus": "a.{lang}", "weight": 0}], r"'data.train\[0\].weight' must be > 0, got 0"),
        ([{"corpus": "a.{lang}", "weight": -2}], r"'data.train\[0\].weight' must be > 0, got -2"),
        (
            [TWO[0], {"corpus": "a.{lang}", "weight": "heavy"}],
            r"'data.train\[1\].weight' must be float, got 'heavy'",
        ),
        (
            [{"corpus": "a.{lang}", "weight": float("inf")}],
            r"'data.train\[0\].weight' must be a finite number \(> 0\), got inf",
        ),
        (
            [{"corpus": "a.{lang}", "wieght": 2}],
            r"unknown key 'data.train\[0\].wieght' \(did you mean 'data.train\[0\].weight'\?\)",
        ),
        (["a.{lang}"], r"data.train\[0\] must be a mapping \{corpus: SOURCE, weight: W\}"),
        ([{"corpus": "a.txt"}], r"data.train\[0\].corpus: the file pattern 'a.txt' has no"),
    ],
)
def test_a_wrong_entry_is_one_line_naming_it(train, expected):
    raw = {"data": {"source_lang": "de", "target_lang": "en", "train": train}}
    with pytest.raises(UserError, match=rf"\Amy.yaml: [^\n]*{expected}[^\n]*\Z"):
        recipe_from_dict(raw, "my.yaml")


def test_only_data_train_may_be_a_list():
    message = error_of("a.{lang}", valid=TWO)
    assert message == (
        "my.yaml: data.valid: only data.train may be a list of weighted corpora; give one "
        "source here, e.g. corpus/valid.{lang}"
    )


def test_a_bad_weight_from_set_names_the_override():
    message = error_of("a.{lang}", ("data.train=[{corpus: {tsv: a.tsv}, weight: 0}]",))
    assert message.startswith("--set 'data.train=[{corp")  # the override, shortened
    assert message.endswith("]': 'data.train[0].weight' must be > 0, got 0.0")
