"""A split in several files (nmt.data.globbed): a glob per language or per TSV/JSONL file.

Checked here: parallel files matched by what their wildcards matched, read in sorted
order, the same pairs as the files one after the other; a file without its partner, and
a glob that matches nothing, are one-line UserErrors naming them; a TSV glob; a path that
exists as written is that file even with glob characters in its name; a prepared
dataset's manifest identifies every file of a glob, and a changed one is refused.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nmt.data.corpus import read_corpus
from nmt.data.dataset import prepare_dataset
from nmt.data.identity import Identity
from nmt.errors import UserError
from nmt.recipe.sources import FilesSource, TsvSource
from nmt.training.setup import train


def write(path: Path, lines: list[str]) -> None:
    path.write_text("".join(f"{x}\n" for x in lines), "utf-8")


def parts(directory: Path, n: int = 3, size: int = 2) -> list[tuple[str, str]]:
    """part-0.{de,en} ... part-(n-1): `size` pairs each, written out of name order."""
    pairs = []
    for i in reversed(range(n)):
        de = [f"de {i} {j}" for j in range(size)]
        en = [f"en {i} {j}" for j in range(size)]
        write(directory / f"part-{i}.de", de)
        write(directory / f"part-{i}.en", en)
        pairs[:0] = list(zip(de, en, strict=True))
    return pairs


def test_a_glob_reads_each_pair_of_files_in_name_order(tmp_path):
    expected = parts(tmp_path)
    corpus = read_corpus(FilesSource(f"{tmp_path}/part-*.{{lang}}"), "de", "en")
    assert list(zip(corpus.source, corpus.target, strict=True)) == expected
    assert corpus.origin == f"{tmp_path}/part-*.{{lang}} (3 pairs of files)"  # a short log line


def test_files_are_matched_by_their_wildcards_not_their_position(tmp_path):
    write(tmp_path / "a-1.de", ["eins"])
    write(tmp_path / "b-2.de", ["zwei"])
    write(tmp_path / "a-1.en", ["one"])
    write(tmp_path / "b-2.en", ["two"])
    corpus = read_corpus(FilesSource(f"{tmp_path}/?-[0-9].{{lang}}"), "de", "en")
    assert list(zip(corpus.source, corpus.target, strict=True)) == [
        ("eins", "one"),
        ("zwei", "two"),
    ]


def test_a_file_without_its_partner_is_refused_by_name(tmp_path):
    parts(tmp_path)
    write(tmp_path / "part-7.de", ["sieben"])
    with pytest.raises(UserError, match=r"part-7\.de has no en file \(named by data\.train"):
        read_corpus(FilesSource(f"{tmp_path}/part-*.{{lang}}"), "de", "en", "data.train")


def test_a_glob_matching_nothing_is_refused(tmp_path):
    with pytest.raises(UserError, match=r"nothing-\*\.de: no file matches \(named by data\.train"):
        read_corpus(FilesSource(f"{tmp_path}/nothing-*.{{lang}}"), "de", "en", "data.train")


def test_a_tsv_glob_reads_every_file(tmp_path):
    write(tmp_path / "b.tsv", ["zwei\ttwo"])
    write(tmp_path / "a.tsv", ["eins\tone"])
    corpus = read_corpus(TsvSource(f"{tmp_path}/*.tsv"), "de", "en")
    assert corpus.source == ["eins", "zwei"] and corpus.target == ["one", "two"]
    assert corpus.origin == f"{tmp_path}/*.tsv (2 files)"


def test_a_path_that_exists_is_that_file_even_with_glob_characters(tmp_path):
    write(tmp_path / "x[1].de", ["eins"])
    write(tmp_path / "x[1].en", ["one"])
    write(tmp_path / "x1.de", ["falsch"])
    write(tmp_path / "x1.en", ["wrong"])
    corpus = read_corpus(FilesSource(f"{tmp_path}/x[1].{{lang}}"), "de", "en")
    assert corpus.source == ["eins"]


def test_the_manifest_identifies_every_file_of_a_glob(tmp_path, make_recipe):
    for i in range(2):
        write(tmp_path / f"part-{i}.en", [f"a b c {j} {i}" for j in range(40)])
        write(tmp_path / f"part-{i}.de", [f"x y z {j} {i}" for j in range(40)])
    data = tmp_path / "data"
    pattern = f"{tmp_path}/part-*.{{lang}}"
    recipe = make_recipe(tmp_path / "m", f"data.train={pattern}", f"data.prepared={data}")
    prepare_dataset(recipe, data)
    inputs = [i["path"] for i in Identity.of(recipe).inputs if i["split"] == "train"]
    names = [
        f"part-{i}.{lang}"
        for i in range(2)
        for lang in (recipe.data.source_lang, recipe.data.target_lang)
    ]
    assert inputs == [str(tmp_path / name) for name in names]
    os.utime(tmp_path / "part-1.de", ns=(1, 1))
    with pytest.raises(UserError, match=r"its input .*part-1\.de has changed"):
        train(recipe, "cpu")
