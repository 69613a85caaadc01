"""UNK replacement (nmt.decode.unk: `decode.replace_unk`, `nmt translate --replace-unk`,
`--unk-dictionary`, the JSON API's `replace_unk`).

Checked: on hand-made attention and ids, each <unk> becomes the source word of highest
attention, as the line has it (a word the model read as <unk> too), a dictionary entry
wins when there is one, other words and outputs without <unk> are untouched, and with
SentencePiece the whole word holding the <unk> piece is replaced; the dictionary file's
format (blank lines, first entry, one-line errors naming the line); replace_unk off
searches exactly as before (no attention searched, the same texts); on a tiny word-level
model with a capped vocabulary, trained in seconds: the CLI replaces every <unk> by the
source word `--alignments` gives it and nothing else, `--unk-dictionary` entries, `nmt
evaluate bleu --replace-unk`, n-best lists, an ensemble, constraints, the JSON API and
LibreTranslate's route (the recipe's setting); refusals in one line: a missing or
malformed dictionary, a dictionary without --replace-unk, an attention-less model (an
exported directory: tests/export and tests/serve).
"""

from __future__ import annotations

import json

import pytest
from helpers.cli import assert_user_error, set_args, translate, write_lines

from nmt.cli.main import app
from nmt.data.tokenizer import WordTokenizer
from nmt.data.toy import numbers
from nmt.decode.alignment import piece_words
from nmt.decode.translate import Translator
from nmt.decode.unk import UnkReplacer, read_dictionary
from nmt.errors import UserError
from nmt.recipe.load import load_recipe
from nmt.vocab import SPECIALS, UNK

LINES = [src for src, _ in numbers("test", 8)]


def rows(n_source: int, peaks: list[int]) -> list[list[float]]:
    """Attention rows, one per peak: 0.6 on the peak's column, the rest spread evenly."""
    rest = 0.4 / (n_source - 1)
    return [[0.6 if c == peak else rest for c in range(n_source)] for peak in peaks]


SRC = WordTokenizer([*SPECIALS, "ein", "Hund", "namens"])
TGT = WordTokenizer([*SPECIALS, "a", "dog", "named"])
LINE = "ein Hund namens Bello bellt"  # Bello and bellt are <unk> to the model


def ids(*words: str) -> list[int]:
    return [UNK if w == "<unk>" else TGT.index[w] for w in words]


def test_each_unk_becomes_the_source_word_of_highest_attention():
    target = ids("a", "dog", "named", "<unk>", "<unk>")
    src_pieces = SRC.pieces(SRC.encode([LINE])[0])
    assert src_pieces == ["ein", "Hund", "namens", "<unk>", "<unk>"]
    replacer = UnkReplacer(SRC, TGT)
    attention = rows(5, [0, 1, 2, 4, 3, 0])  # the <unk>s attend to bellt, then Bello
    text = replacer.text(TGT.decode([target])[0], LINE, target, attention, src_pieces)
    assert text == "a dog named bellt Bello"
    attention = rows(5, [0, 1, 2, 3, 1, 0])  # an <unk> may copy a word the model knows
    assert replacer.text("x", LINE, target, attention, src_pieces) == "a dog named Bello Hund"


def test_a_dictionary_entry_wins_and_other_words_are_untouched():
    target = ids("a", "<unk>", "named", "<unk>")
    src_pieces = SRC.pieces(SRC.encode([LINE])[0])
    attention = rows(5, [0, 1, 2, 3, 4])
    replacer = UnkReplacer(SRC, TGT, {"Hund": "hound", "Katze": "cat"})
    # "Hund" has an entry; "Bello" has none and is copied; a, named stay as written
    text = replacer.text("a <unk> named <unk>", LINE, target, attention, src_pieces)
    assert text == "a hound named Bello"
    no_unk = ids("a", "dog", "named")
    written = TGT.decode([no_unk])[0]
    assert replacer.text(written, LINE, no_unk, rows(5, [0, 1, 2, 3]), src_pieces) is written


def test_sentencepiece_replaces_the_whole_word_holding_the_unk(translator):
    src_tok, tgt_tok = translator.src_tokenizer, translator.tgt_tokenizer
    line = "we see Bello cats"
    src_ids = src_tok.encode([line])[0]
    src_pieces = src_tok.pieces(src_ids)
    src_words = piece_words(src_pieces, marked=True)
    first_piece = {w: i for i, w in reversed(list(enumerate(src_words))) if w is not None}
    assert len(first_piece) == 4
    # "wir" "sehen<unk>" "Katzen": the <unk> piece (no "▁") continues the word "sehen"
    head, tail = tgt_tok.encode(["wir sehen"])[0], tgt_tok.encode(["Katzen"])[0]
    target = [*head, UNK, *tail]
    tgt_words = piece_words(tgt_tok.pieces(target), marked=True)
    assert tgt_words[len(head)] == 1 and max(w for w in tgt_words if w is not None) == 2
    assert tgt_tok.decode([target])[0] != "wir sehen Katzen"  # SentencePiece writes " ⁇ "
    source_of = {0: 0, 1: 2, 2: 3}  # wir ← we, sehen<unk> ← Bello, Katzen ← cats
    peaks = [0 if w is None else first_piece[source_of[w]] for w in tgt_words]  # None: "▁"
    attention = rows(len(src_ids), [*peaks, 0])
    text = UnkReplacer(src_tok, tgt_tok).text("", line, target, attention, src_pieces)
    assert text == "wir Bello Katzen"
    dictionary = UnkReplacer(src_tok, tgt_tok, {"Bello": "Bello!"})
    assert dictionary.text("", line, target, attention, src_pieces) == "wir Bello! Katzen"


def test_the_dictionary_file_format(tmp_path):
    path = tmp_path / "dict.tsv"
    path.write_text("Hund\thound\n\nHund\tdog\r\nKatze\t  cat \n", encoding="utf-8")
    assert dict(read_dictionary(str(path))) == {"Hund": "hound", "Katze": "cat"}
    for bad, number in [("Hund hound\n", 1), ("a\tb\nx\ty\tz\n", 2), ("a b\tc\n", 1),
                        ("\tc\n", 1), ("Hund\t \n", 1), ("Katze\tbig cat\n", 1)]:  # fmt: skip
        path.write_text(bad, encoding="utf-8")  # a new size or time: read again
        with pytest.raises(UserError, match=rf"dict.tsv line {number}: .* is not source_word"):
            read_dictionary(str(path))
    path.write_bytes(b"Hund\t\xff\n")
    with pytest.raises(UserError, match=r"dict.tsv: not UTF-8 text"):
        read_dictionary(str(path))
    with pytest.raises(UserError, match=r"unk dictionary .*missing.tsv: no such file"):
        read_dictionary(str(tmp_path / "missing.tsv"))


@pytest.fixture(scope="module")
def translator(model_dir) -> Translator:
    return Translator.load(model_dir, "cpu")


def test_off_searches_exactly_as_before(translator):
    settings = translator.decode_config(beam_size=3)
    before = translator.search_ids(translator.encode(LINES), settings, nbest=2)
    for replace_unk in (None, False):
        found = translator.search(LINES, nbest=2, beam_size=3, replace_unk=replace_unk)
        assert [[t.text for t in f] for f in found] == [[t.text for t in f] for f in before]
        assert all(t.attention is None for f in found for t in f)  # none searched
    assert translator.translate(LINES, beam_size=3) == [f[0].text for f in before]


@pytest.fixture(scope="module")
def word_model(runner, quickstart, tmp_path_factory, tiny_overrides):
    """A tiny word-level model whose vocabulary (40 words for both languages) leaves most
    German number words <unk>: trained for seconds, it writes <unk> often."""
    model = tmp_path_factory.mktemp("unk") / "words"
    overrides = [*tiny_overrides, "tokenizer.type=word", "tokenizer.vocab_size=40"]
    overrides += ["train.max_steps=120", "train.eval_every=200", "train.log_every=200"]
    trained = runner.invoke(
        app, ["train", str(quickstart), *set_args(overrides), "--output-dir", str(model)]
        + ["--device", "cpu"],
    )  # fmt: skip
    assert trained.exit_code == 0, trained.output
    return model


def test_the_cli_replaces_each_unk_by_its_aligned_source_word(runner, word_model, tmp_path):
    src = write_lines(tmp_path / "in.txt", [*LINES, "", "one hundred zebras"])
    plain = translate(runner, word_model, str(src), "--alignments")
    assert plain.exit_code == 0, plain.output
    replaced = translate(runner, word_model, str(src), "--replace-unk")
    assert replaced.exit_code == 0, replaced.output
    assert "<unk> replaced" in replaced.stderr
    unks = 0
    lines = src.read_text(encoding="utf-8").splitlines()
    for line, row, out in zip(lines, plain.stdout.splitlines(), replaced.stdout.splitlines(),
                              strict=True):  # fmt: skip
        text, alignment = row.split("\t")
        source_of = {j: i for i, j in (map(int, p.split("-")) for p in alignment.split())}
        expected = [
            line.split()[source_of[j]] if word == "<unk>" else word
            for j, word in enumerate(text.split())
        ]
        assert out.split() == expected
        unks += text.split().count("<unk>")
    assert unks >= 5  # the capped vocabulary made the test mean something
    assert "<unk>" not in replaced.stdout
    both = translate(runner, word_model, str(src), "--replace-unk", "--alignments")
    assert [row.split("\t") for row in both.stdout.splitlines()] == [  # word for word
        [out, row.split("\t")[1]]
        for out, row in zip(replaced.stdout.splitlines(), plain.stdout.splitlines(), strict=True)
    ]


def test_a_dictionary_entry_replaces_instead(runner, word_model, tmp_path):
    src = write_lines(tmp_path / "in.txt", LINES)
    words = sorted({w for line in LINES for w in line.split()})
    dictionary = write_lines(tmp_path / "dict.tsv", [f"{w}\t[{w}]" for w in words[::2]])
    copied = translate(runner, word_model, str(src), "--replace-unk")
    looked_up = translate(
        runner, word_model, str(src), "--replace-unk", "--unk-dictionary", str(dictionary)
    )
    assert looked_up.exit_code == 0, looked_up.output
    entries = {w: f"[{w}]" for w in words[::2]}
    used = 0
    for a, b in zip(copied.stdout.splitlines(), looked_up.stdout.splitlines(), strict=True):
        for x, y in zip(a.split(), b.split(), strict=True):
            assert y == entries.get(x, x) or y == x
            used += y != x
    assert used > 0


def test_evaluate_bleu_and_the_python_api_replace_alike(runner, word_model, tmp_path):
    src = write_lines(tmp_path / "in.txt", LINES)
    ref = write_lines(tmp_path / "ref.txt", [de for _, de in numbers("test", 8)])
    hyp = tmp_path / "hyp.txt"
    args = ["evaluate", "bleu", "--model", str(word_model), "--source", str(src)]
    args += ["--reference", str(ref), "--replace-unk", "--output", str(hyp), "--json"]
    done = runner.invoke(app, [*args, "--device", "cpu", "--metrics", "bleu"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["decode"]["replace_unk"] is True
    translator = Translator.load(word_model, "cpu")
    hyps = translator.translate(LINES, replace_unk=True)
    assert hyp.read_text(encoding="utf-8").splitlines() == hyps
    assert hyps != translator.translate(LINES)  # there were <unk>s to replace
    nbest = translator.search(LINES, nbest=3, beam_size=3, replace_unk=True)
    assert all("<unk>" not in t.text.split() for found in nbest for t in found)
    streamed = [f[0].text for f in translator.stream(iter(LINES), chunk=3, replace_unk=True)]
    assert streamed == hyps
    ensemble = Translator.load([word_model, word_model], "cpu")  # mean attention: the same
    assert ensemble.translate(LINES, replace_unk=True) == hyps


def test_the_json_api_takes_it(word_model):
    """The moved server (nmt_runtime.serve with a TorchEngine): `replace_unk` replaces as
    the Translator does, with constraints too, and returns no attention unasked."""
    pytest.importorskip("fastapi")
    from helpers.serving import post, running

    from nmt.serve.engine import TorchEngine
    from nmt_runtime.serve.app import create_app
    from nmt_runtime.serve.limits import Limits

    translator = Translator.load(word_model, "cpu")
    wanted = [[w] for w in known_words(translator)[: len(LINES)]]
    limits = Limits(max_chars=200, max_tokens=30, max_texts=8, max_body_bytes=5000)
    with running(create_app([TorchEngine.load(word_model, device="cpu")], limits)) as address:
        status, data = post(address, "/api/translate", {"text": LINES, "replace_unk": True})
        assert status == 200, data
        assert [t["text"] for t in data["translations"]] == translator.translate(
            LINES, replace_unk=True
        )
        assert all(t["attention"] is None for t in data["translations"])  # not asked
        status, data = post(address, "/api/translate", {"text": LINES})
        assert [t["text"] for t in data["translations"]] == translator.translate(LINES)
        body = {"text": LINES, "replace_unk": True, "beam_size": 3, "constraints": wanted}
        status, data = post(address, "/api/translate", body)
        assert status == 200, data
        assert [t["text"] for t in data["translations"]] == translator.translate(
            LINES, replace_unk=True, beam_size=3, constraints=wanted
        )


def test_the_server_follows_the_recipe_and_libretranslate_too(word_model, tmp_path):
    """A recipe with decode.replace_unk (and a dictionary) replaces for LibreTranslate's
    route, which has no such field, and for the JSON API unless it says replace_unk false;
    replace_unk false turns the recipe's off, dictionary and all; a recipe's missing
    dictionary stops `nmt serve` at load, not every request."""
    pytest.importorskip("fastapi")
    import shutil

    import yaml
    from helpers.serving import post, running

    from nmt.serve.engine import TorchEngine
    from nmt_runtime.serve.app import create_app

    words = sorted({w for line in LINES for w in line.split()})
    dictionary = write_lines(tmp_path / "dict.tsv", [f"{w}\t[{w}]" for w in words[::2]])
    model = tmp_path / "replacing"
    shutil.copytree(word_model, model)
    recipe = yaml.safe_load((model / "recipe.yaml").read_text(encoding="utf-8"))
    recipe["decode"] |= {"replace_unk": True, "unk_dictionary": str(dictionary)}
    (model / "recipe.yaml").write_text(yaml.safe_dump(recipe), encoding="utf-8")
    translator = Translator.load(word_model, "cpu")
    replaced = translator.translate(LINES, replace_unk=True, unk_dictionary=str(dictionary))
    assert replaced != translator.translate(LINES, replace_unk=True)  # the entries were used
    engine = TorchEngine.load(model, device="cpu")
    pair = {"source": engine.source, "target": engine.target}
    with running(create_app([engine])) as address:
        status, libre = post(address, "/translate", {"q": LINES, **pair})
        assert status == 200, libre
        status, data = post(address, "/api/translate", {"text": LINES})
        status, off = post(address, "/api/translate", {"text": LINES, "replace_unk": False})
    assert libre["translatedText"] == [t["text"] for t in data["translations"]] == replaced
    assert [t["text"] for t in off["translations"]] == translator.translate(LINES)
    assert engine.translator.translate(LINES, replace_unk=False) == translator.translate(LINES)
    dictionary.unlink()
    with pytest.raises(UserError, match=r"^unk dictionary .*dict.tsv: no such file"):
        TorchEngine.load(model, device="cpu")


def known_words(translator: Translator) -> list[str]:
    """The toy task's target words that `translator`'s target vocabulary can write."""
    words = sorted({w for _, tgt in numbers("train", 300) for w in tgt.split()})
    ids = translator.tgt_tokenizer.encode(words)
    return [w for w, x in zip(words, ids, strict=True) if UNK not in x]


def test_replacement_composes_with_constraints(word_model):
    """A constrained search keeps its attention: its outputs hold their phrases, and each
    <unk> becomes the source word that output's alignment gives it, as unconstrained."""
    translator = Translator.load(word_model, "cpu")
    wanted = [[w] for w in known_words(translator)[: len(LINES)]]
    assert len(wanted) == len(LINES)
    options = {"beam_size": 3, "constraints": wanted}
    plain = translator.search(LINES, attention=True, **options)
    replaced = translator.search(LINES, replace_unk=True, **options)
    unks = 0
    for line, phrases, [before], [after] in zip(LINES, wanted, plain, replaced, strict=True):
        source_of = {j: i for i, j in before.alignment or []}
        expected = [
            line.split()[source_of[j]] if word == "<unk>" else word
            for j, word in enumerate(before.text.split())
        ]
        assert after.text.split() == expected
        assert phrases[0] in after.text.split()
        unks += before.text.split().count("<unk>")
    assert unks >= 3  # there were <unk>s to replace in constrained outputs


def test_mistakes_are_refused_in_one_line(runner, word_model, tmp_path):
    src = write_lines(tmp_path / "in.txt", LINES[:2])
    missing = tmp_path / "none.tsv"
    result = translate(runner, word_model, str(src), "--replace-unk", "--unk-dictionary",
                       str(missing))  # fmt: skip
    assert_user_error(result, f"--unk-dictionary {missing}: no such file", "<TAB>")
    bad = write_lines(tmp_path / "bad.tsv", ["Hund\thound", "Katze cat"])
    result = translate(runner, word_model, str(src), "--replace-unk", "--unk-dictionary", str(bad))
    assert_user_error(result, "bad.tsv line 2: 'Katze cat' is not source_word<TAB>target_word")
    result = translate(runner, word_model, str(src), "--unk-dictionary", str(bad))
    assert_user_error(result, f"--unk-dictionary {bad}", "add --replace-unk")


def test_an_attention_less_model_is_refused_in_one_line(translator, quickstart):
    class NoAttention:  # what attends() sees of an attention-less model
        decoder = None

    bare = Translator.__new__(Translator)
    bare.__dict__.update(translator.__dict__, model=NoAttention())
    with pytest.raises(UserError, match=r"--replace-unk copies .* this model has none"):
        bare.search_settings(replace_unk=True)
    bare.search_settings(replace_unk=False)  # none asked: fine
    with pytest.raises(UserError, match="decode.replace_unk copies .* model.attention none"):
        load_recipe(quickstart, ["model.attention=none", "decode.replace_unk=true"])
    with pytest.raises(UserError, match="decode.unk_dictionary is read only when"):
        load_recipe(quickstart, ["decode.unk_dictionary=dict.tsv"])
