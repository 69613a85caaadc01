"""A Hugging Face dataset read in streaming mode (`{hub: ..., streaming: true}`), offline:
`datasets.load_dataset` streams a local directory of JSON lines as it would a hub
dataset, through an `IterableDataset`.

Checked here: the streamed pairs are those of loading the split whole; the recipe parses
`streaming` and writes it back only when given (so existing recipes resolve as before);
a streamed split is read from the text, never identified as a file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nmt.data.corpus import read_corpus
from nmt.data.identity import Identity
from nmt.errors import UserError
from nmt.recipe.load import recipe_to_dict
from nmt.recipe.sources import HubSource

ROWS = [
    {"translation": {"de": "Ein Hund.", "en": "A dog."}},
    {"translation": {"de": "", "en": "empty"}},
    {"translation": {"de": "Zwei Katzen.", "en": "Two cats."}},
]


def local_hub(tmp_path: Path) -> str:
    """A directory that load_dataset reads as a dataset with a train split."""
    folder = tmp_path / "hub"
    folder.mkdir()
    lines = "".join(json.dumps(row) + "\n" for row in ROWS)
    (folder / "train.jsonl").write_text(lines, "utf-8")
    return str(folder)


def test_streaming_gives_the_pairs_of_loading_the_split_whole(tmp_path, monkeypatch):
    import datasets

    loaded: list = []
    real = datasets.load_dataset

    def spy(*args, **kwargs):
        loaded.append(result := real(*args, **kwargs))
        return result

    monkeypatch.setattr(datasets, "load_dataset", spy)
    folder = local_hub(tmp_path)
    streamed = read_corpus(HubSource(folder, "train", streaming=True), "de", "en")
    whole = read_corpus(HubSource(folder, "train"), "de", "en")
    assert isinstance(loaded[0], datasets.IterableDataset)
    assert not isinstance(loaded[1], datasets.IterableDataset)
    assert streamed == whole
    assert streamed.source == ["Ein Hund.", "Zwei Katzen."] and streamed.skipped_empty == 1


def test_streaming_is_written_back_only_when_given(tmp_path, make_recipe):
    folder = local_hub(tmp_path)
    plain = make_recipe(tmp_path / "a", f"data.train={{hub: {folder}, split: train}}")
    streamed = make_recipe(
        tmp_path / "b", f"data.train={{hub: {folder}, split: train, streaming: true}}"
    )
    assert plain.data.train == HubSource(folder, "train")
    assert streamed.data.train == HubSource(folder, "train", streaming=True)
    assert recipe_to_dict(plain)["data"]["train"] == {"hub": folder, "split": "train"}
    assert recipe_to_dict(streamed)["data"]["train"]["streaming"] is True
    assert not Identity.of(streamed).checkable  # read from the text unless data.prepared


@pytest.mark.parametrize("value", ["yes please", "3"])
def test_streaming_must_be_a_boolean(tmp_path, make_recipe, value):
    with pytest.raises(UserError, match=r"streaming"):
        make_recipe(tmp_path, f"data.train={{hub: x, split: train, streaming: {value}}}")
