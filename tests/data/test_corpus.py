"""Parallel corpora (nmt.data.corpus): every source kind read into stripped, non-empty pairs.

Checked here: plain and gzipped parallel files (gzip found by its magic bytes, not the
name); misaligned, missing and non-UTF-8 files give a `UserError` naming the file(s), the
counts or the line; empty pairs are skipped and counted; TSV and JSONL (flat and nested
"translation") with their per-line errors; `datasets` directories written by
`save_to_disk` (DatasetDict and single Dataset, flat and nested columns, split choice); an
unreachable hub dataset fails fast offline with a hint to use local files; toy sources;
`keep_empty=True` keeping empty pairs in place for every source kind; `read_aligned`'s
`purpose` refusing empty files; and `length_filter`'s counts.
"""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

import pytest

from nmt.data import toy
from nmt.data.corpus import length_filter, read_aligned, read_corpus, read_lines
from nmt.errors import UserError
from nmt.recipe.sources import (
    DatasetDirSource,
    FilesSource,
    HubSource,
    JsonlSource,
    ToySource,
    TsvSource,
)

DE = ["Ein Hund schläft.", "Zwei Katzen laufen.", "Grüße aus Köln."]
EN = ["A dog sleeps.", "Two cats run.", "Greetings from Cologne."]


def write_pair(tmp_path: Path, stem: str, de: list[str], en: list[str], gz: bool = False) -> str:
    """Write stem.de / stem.en (gzipped if asked) and return the {lang} pattern."""
    suffix = ".gz" if gz else ""
    for lang, lines in (("de", de), ("en", en)):
        data = "".join(f"{line}\n" for line in lines).encode("utf-8")
        path = tmp_path / f"{stem}.{lang}{suffix}"
        path.write_bytes(gzip.compress(data) if gz else data)
    return str(tmp_path / f"{stem}.{{lang}}{suffix}")


def message_of(source, src="de", tgt="en", key="data.train") -> str:
    # one line, as every UserError is; each caller checks the words it expects
    with pytest.raises(UserError, match=r"\A[^\n]+\Z") as e:
        read_corpus(source, src, tgt, key)
    return str(e.value)


# ---------------------------------------------------------------------------- plain files


@pytest.mark.parametrize("gz", [False, True])
def test_parallel_files(tmp_path, gz):
    pattern = write_pair(tmp_path, "train", DE, EN, gz=gz)
    corpus = read_corpus(FilesSource(pattern), "de", "en")
    assert corpus.source == DE and corpus.target == EN
    assert len(corpus) == 3 and corpus.skipped_empty == 0


def test_direction_follows_the_languages(tmp_path):
    pattern = write_pair(tmp_path, "train", DE, EN)
    corpus = read_corpus(FilesSource(pattern), "en", "de")
    assert corpus.source == EN and corpus.target == DE


def test_lines_are_stripped(tmp_path):
    pattern = write_pair(tmp_path, "t", ["  a b \t", "c\r"], ["\tx  ", " y"])
    corpus = read_corpus(FilesSource(pattern), "de", "en")
    assert corpus.source == ["a b", "c"] and corpus.target == ["x", "y"]


def test_gzip_is_detected_by_magic_bytes_not_name(tmp_path):
    (tmp_path / "t.de").write_bytes(gzip.compress(b"Hallo\nWelt\n"))
    (tmp_path / "t.en.gz").write_bytes(b"Hello\nworld\n")  # named .gz, not gzipped
    assert read_lines(tmp_path / "t.de") == ["Hallo", "Welt"]
    assert read_lines(tmp_path / "t.en.gz") == ["Hello", "world"]


def test_windows_line_endings_and_no_final_newline(tmp_path):
    (tmp_path / "t.de").write_bytes(b"eins\r\nzwei")
    assert read_lines(tmp_path / "t.de") == ["eins", "zwei"]


def test_misaligned_files_name_both_files_and_counts(tmp_path):
    pattern = write_pair(tmp_path, "train", DE, EN[:2], gz=True)
    message = message_of(FilesSource(pattern))
    assert str(tmp_path / "train.de.gz") in message and str(tmp_path / "train.en.gz") in message
    assert "3" in message and "2" in message


def test_missing_file_is_named(tmp_path):
    (tmp_path / "t.de").write_text("a\n")
    message = message_of(FilesSource(str(tmp_path / "t.{lang}")), key="data.valid")
    assert str(tmp_path / "t.en") in message and "data.valid" in message


def test_non_utf8_names_file_and_line(tmp_path):
    (tmp_path / "t.de").write_bytes("ok\nGrüße\n".encode())
    (tmp_path / "t.en").write_bytes(b"fine\nna\xefve caf\xe9\n")  # latin-1
    message = message_of(FilesSource(str(tmp_path / "t.{lang}")))
    assert f"{tmp_path / 't.en'}:2" in message
    assert "UTF-8" in message


def test_non_utf8_inside_gzip_names_the_line(tmp_path):
    (tmp_path / "t.de").write_bytes(gzip.compress(b"a\nb\nc\xff\n"))
    with pytest.raises(UserError, match=r"t\.de:3"):
        read_lines(tmp_path / "t.de")


def test_empty_pairs_are_skipped_and_counted(tmp_path):
    de = ["eins", "", "drei", "   ", "", "sechs"]
    en = ["one", "two", "", "four", "", "six"]
    corpus = read_corpus(FilesSource(write_pair(tmp_path, "t", de, en)), "de", "en")
    assert corpus.source == ["eins", "sechs"] and corpus.target == ["one", "six"]
    assert corpus.skipped_empty == 4


# ---------------------------------------------------------------------------- tsv


def test_tsv(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("Hallo\tHello\n Welt \t world \n\n", encoding="utf-8")
    corpus = read_corpus(TsvSource(str(path)), "de", "en")
    assert corpus.source == ["Hallo", "Welt"] and corpus.target == ["Hello", "world"]
    assert corpus.skipped_empty == 1


def test_tsv_gzipped(tmp_path):
    path = tmp_path / "t.tsv.gz"
    path.write_bytes(gzip.compress(b"a\tb\nc\td\n"))
    corpus = read_corpus(TsvSource(str(path)), "de", "en")
    assert corpus.source == ["a", "c"] and corpus.target == ["b", "d"]


@pytest.mark.parametrize("bad", ["one column only", "a\tb\tc"])
def test_tsv_wrong_column_count_names_file_and_line(tmp_path, bad):
    path = tmp_path / "t.tsv"
    path.write_text(f"a\tb\nc\td\n{bad}\n", encoding="utf-8")
    message = message_of(TsvSource(str(path)))
    assert f"{path}:3" in message


def test_tsv_pair_with_one_empty_side_is_skipped(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("Hallo\tHello\nleer\t\n\tempty\n", encoding="utf-8")
    corpus = read_corpus(TsvSource(str(path)), "de", "en")
    assert corpus.source == ["Hallo"] and corpus.skipped_empty == 2


def test_tsv_missing_file(tmp_path):
    assert str(tmp_path / "no.tsv") in message_of(TsvSource(str(tmp_path / "no.tsv")))


# ---------------------------------------------------------------------------- jsonl


def write_jsonl(path: Path, rows: list) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")


def test_jsonl_flat_and_nested(tmp_path):
    path = tmp_path / "t.jsonl"
    write_jsonl(
        path,
        [
            {"de": " Grüße ", "en": "Greetings", "id": 7},
            {"translation": {"de": "Hund", "en": "dog"}},
            {"de": "", "en": "nothing"},
            {"de": None, "en": "null"},
        ],
    )
    with path.open("a") as f:
        f.write("\n")  # blank lines are not rows
    corpus = read_corpus(JsonlSource(str(path)), "de", "en")
    assert corpus.source == ["Grüße", "Hund"] and corpus.target == ["Greetings", "dog"]
    assert corpus.skipped_empty == 2


def test_jsonl_row_without_the_language_names_the_line(tmp_path):
    path = tmp_path / "t.jsonl"
    write_jsonl(path, [{"de": "a", "en": "b"}, {"de": "c", "fr": "d"}])
    message = message_of(JsonlSource(str(path)))
    assert f"{path}:2" in message
    assert "'en'" in message and "fr" in message


def test_jsonl_row_that_is_not_an_object(tmp_path):
    path = tmp_path / "t.jsonl"
    write_jsonl(path, [{"de": "a", "en": "b"}, ["a", "b"]])
    assert f"{path}:2" in message_of(JsonlSource(str(path)))


def test_jsonl_invalid_json_names_the_line(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"de": "a", "en": "b"}\n\n{"de": "c", "en": \n', encoding="utf-8")
    message = message_of(JsonlSource(str(path)))
    assert f"{path}:3" in message and "JSON" in message


# ---------------------------------------------------------------------------- datasets


@pytest.fixture(scope="module")
def datasets_module():
    return pytest.importorskip("datasets")


ROWS_DE = ["eins", "zwei", "drei"]
ROWS_EN = ["one", "two", "three"]


def flat(ds, de, en):
    return ds.Dataset.from_dict({"de": de, "en": en, "extra": list(range(len(de)))})


def nested(ds, de, en):
    return ds.Dataset.from_dict(
        {"translation": [{"de": a, "en": b} for a, b in zip(de, en, strict=True)]}
    )


@pytest.mark.parametrize("make", [flat, nested])
def test_dataset_dict_split_is_chosen(tmp_path, datasets_module, make):
    ds = datasets_module
    saved = ds.DatasetDict(
        train=make(ds, ROWS_DE, ROWS_EN), validation=make(ds, ["vier", ""], ["four", "x"])
    )
    saved.save_to_disk(str(tmp_path / "ds"))
    train = read_corpus(DatasetDirSource(str(tmp_path / "ds"), "train"), "de", "en")
    assert train.source == ROWS_DE and train.target == ROWS_EN
    valid = read_corpus(DatasetDirSource(str(tmp_path / "ds"), "validation"), "en", "de")
    assert valid.source == ["four"] and valid.target == ["vier"]
    assert valid.skipped_empty == 1


def test_dataset_dict_wrong_or_missing_split_lists_splits(tmp_path, datasets_module):
    ds = datasets_module
    saved = ds.DatasetDict(train=flat(ds, ROWS_DE, ROWS_EN), test=flat(ds, ["a"], ["b"]))
    saved.save_to_disk(str(tmp_path / "ds"))
    for split in ("valid", None):
        message = message_of(DatasetDirSource(str(tmp_path / "ds"), split), key="data.valid")
        assert "train" in message and "test" in message and "data.valid.split" in message


def test_dataset_dict_with_one_split_needs_no_split(tmp_path, datasets_module):
    ds = datasets_module
    ds.DatasetDict(only=nested(ds, ROWS_DE, ROWS_EN)).save_to_disk(str(tmp_path / "ds"))
    corpus = read_corpus(DatasetDirSource(str(tmp_path / "ds")), "de", "en")
    assert corpus.source == ROWS_DE


@pytest.mark.parametrize("make", [flat, nested])
def test_single_dataset(tmp_path, datasets_module, make):
    make(datasets_module, ROWS_DE, ROWS_EN).save_to_disk(str(tmp_path / "ds"))
    corpus = read_corpus(DatasetDirSource(str(tmp_path / "ds")), "de", "en")
    assert corpus.source == ROWS_DE and corpus.target == ROWS_EN
    message = message_of(DatasetDirSource(str(tmp_path / "ds"), "train"))
    assert "without splits" in message and "data.train.split" in message


def test_dataset_without_the_languages_names_the_row(tmp_path, datasets_module):
    ds = datasets_module
    ds.Dataset.from_dict({"fr": ["un"], "en": ["one"]}).save_to_disk(str(tmp_path / "ds"))
    message = message_of(DatasetDirSource(str(tmp_path / "ds")))
    assert "row 1" in message and "'de'" in message


def test_dataset_dir_missing_or_not_a_dataset(tmp_path, datasets_module):
    message = message_of(DatasetDirSource(str(tmp_path / "none")))
    assert str(tmp_path / "none") in message
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "file.txt").write_text("x")
    assert str(tmp_path / "junk") in message_of(DatasetDirSource(str(tmp_path / "junk")))


def test_unreachable_hub_dataset_suggests_local_files(tmp_path, monkeypatch, datasets_module):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    # The libraries read the variables when imported, which may have happened already.
    monkeypatch.setattr(datasets_module.config, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets_module.config, "HF_DATASETS_OFFLINE", True, raising=False)
    monkeypatch.setattr(
        datasets_module.config, "HF_DATASETS_CACHE", tmp_path / "hf" / "datasets", raising=False
    )
    hub = pytest.importorskip("huggingface_hub")
    monkeypatch.setattr(hub.constants, "HF_HUB_OFFLINE", True, raising=False)

    start = time.monotonic()
    source = HubSource("nmt-tests/no-such-dataset-for-tests", "train")
    message = message_of(source, key="data.train")
    assert time.monotonic() - start < 10
    assert "data.train" in message and "nmt-tests/no-such-dataset-for-tests" in message
    assert "local files" in message and "dataset_dir" in message


# ---------------------------------------------------------------------------- toy


def test_toy_source():
    corpus = read_corpus(ToySource("numbers", "valid", 25), "en", "de")
    assert len(corpus) == 25 and corpus.skipped_empty == 0
    assert corpus.origin == "toy:numbers"
    assert all(s and t for s, t in zip(corpus.source, corpus.target, strict=True))


def test_unknown_toy_task_lists_known_ones():
    message = message_of(ToySource("letters", "train", 5))
    assert "letters" in message and "numbers" in message and "data.train" in message


def test_unknown_toy_split():
    message = message_of(ToySource("numbers", "dev", 5))
    assert "train" in message and "valid" in message and "test" in message


# ---------------------------------------------------------------------------- keep_empty

GAPS = [("eins", "one"), ("", "two"), ("drei", ""), ("", ""), ("fünf", "five")]
GAP_DE, GAP_EN = [d for d, _ in GAPS], [e for _, e in GAPS]
KINDS = ["files", "gzip", "tsv", "jsonl", "dataset_dir", "hub", "toy"]


def gaps_source(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A source of each kind holding GAPS: pairs with an empty side between full ones."""
    rows = [{"de": d, "en": e} for d, e in GAPS]
    if kind in ("files", "gzip"):
        return FilesSource(write_pair(tmp_path, "t", GAP_DE, GAP_EN, gz=kind == "gzip"))
    if kind == "tsv":
        (tmp_path / "t.tsv").write_text("".join(f"{d}\t{e}\n" for d, e in GAPS), "utf-8")
        return TsvSource(str(tmp_path / "t.tsv"))
    if kind == "jsonl":
        write_jsonl(tmp_path / "t.jsonl", rows)
        return JsonlSource(str(tmp_path / "t.jsonl"))
    if kind == "toy":
        monkeypatch.setitem(toy.TASKS, "numbers", lambda split, size: list(GAPS))
        return ToySource("numbers", "test")
    datasets = pytest.importorskip("datasets")
    if kind == "dataset_dir":
        datasets.Dataset.from_dict({"de": GAP_DE, "en": GAP_EN}).save_to_disk(str(tmp_path / "ds"))
        return DatasetDirSource(str(tmp_path / "ds"))
    (tmp_path / "hub").mkdir()  # datasets.load_dataset on a local directory: the hub code path
    write_jsonl(tmp_path / "hub" / "test.jsonl", [{"translation": r} for r in rows])
    return HubSource(str(tmp_path / "hub"), "test")


@pytest.mark.parametrize("kind", KINDS)
def test_keep_empty_keeps_every_pair_in_order(tmp_path, monkeypatch, kind):
    source = gaps_source(kind, tmp_path, monkeypatch)
    kept = read_corpus(source, "de", "en", "data.test", keep_empty=True)
    assert kept.source == GAP_DE and kept.target == GAP_EN
    assert len(kept) == len(GAPS) and kept.skipped_empty == 0
    skipped = read_corpus(source, "de", "en", "data.test")
    assert skipped.source == ["eins", "fünf"] and skipped.target == ["one", "five"]
    assert skipped.skipped_empty == 3
    assert kept.origin == skipped.origin


def test_read_aligned_with_a_purpose_refuses_empty_files(tmp_path):
    (tmp_path / "hyp").write_text("", encoding="utf-8")
    (tmp_path / "ref").write_text("", encoding="utf-8")
    assert read_aligned(tmp_path / "hyp", tmp_path / "ref") == ([], [])
    with pytest.raises(UserError, match="hyp is empty: nothing to score"):
        read_aligned(tmp_path / "hyp", tmp_path / "ref", purpose="score")


# ---------------------------------------------------------------------------- length filter


def test_length_filter_counts():
    src = [3, 10, 2, 1, 5, 8, 2, 0]
    tgt = [3, 2, 12, 4, 5, 8, 6, 3]
    found = length_filter(src, tgt, max_length=8, max_ratio=3.0)
    # 1, 2: longer than 8; 3: 4 > 3 × 1; 5: exactly 8 is allowed; 6: exactly 3 × 2 is allowed;
    # 7: a side with no tokens can be neither encoded nor scored.
    assert found.keep == [0, 4, 5, 6]
    assert (found.empty, found.too_long, found.bad_ratio) == (1, 2, 1)


def test_length_filter_too_long_wins_over_ratio():
    found = length_filter([20], [1], max_length=10, max_ratio=2.0)
    assert found.keep == [] and found.too_long == 1 and found.bad_ratio == 0


def test_length_filter_without_limits_drops_only_empty_sides():
    found = length_filter([0, 500, 1, 3], [2, 1, 0, 3])
    assert found.keep == [1, 3] and found.empty == 2


def test_length_filter_needs_equal_lengths():
    with pytest.raises(ValueError, match=r"zip\(\) argument 2 is shorter than argument 1"):
        length_filter([1, 2], [1], max_length=5, max_ratio=2.0)
