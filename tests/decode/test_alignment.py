"""Word alignments from attention (nmt.decode.alignment, `nmt translate --alignments`, the
`alignment` of a Translation and of the JSON API).

Checked: pieces map to their whitespace words (SentencePiece's "▁" marks, a bare "▁"
no word's; a word tokenizer's words); on constructed attention matrices, a monotone and
a reversing one over pieces give the known word alignment, a word's pieces pooling
their attention and the </s> row left out; on the shared tiny model, every
translation's alignment has one pair per output word, with indices inside both
sentences, and the CLI writes it after a tab (with --nbest too); a tiny attention model
trained for seconds on a monotone task (words copied in capitals) aligns most words
i-i; an attention-less model is refused in one line (an exported directory:
tests/export); the JSON API returns it on request only.
"""

from __future__ import annotations

import random

import pytest
from helpers.cli import assert_user_error, translate, write_lines

from nmt.data.toy import numbers
from nmt.decode.alignment import pharaoh, piece_words, word_alignment
from nmt.decode.translate import Translator

LINES = [src for src, _ in numbers("test", 6)]


def test_pieces_map_to_their_words():
    pieces = ["▁three", "▁hund", "red", "▁for", "ty", "-", "two", "▁dogs", "▁", "."]
    assert piece_words(pieces, marked=True) == [0, 1, 1, 2, 2, 2, 2, 3, None, 4]
    assert piece_words(["▁", "▁", "▁a", "▁"], marked=True) == [None, None, 0, None]
    assert piece_words(["an", "▁odd", "start"], marked=True) == [0, 1, 1]  # first: a word
    assert piece_words(["drei", "Hunde"], marked=False) == [0, 1]
    assert piece_words([], marked=True) == []


def one_hot(rows: int, columns: int, hot: list[int]) -> list[list[float]]:
    """Attention rows with 0.7 on the hot column and the rest spread evenly."""
    rest = 0.3 / (columns - 1)
    return [[0.7 if c == hot[r] else rest for c in range(columns)] for r in range(rows)]


def test_a_monotone_attention_gives_the_diagonal():
    # source words: "drei" "rote" "Hunde" cut as ▁drei ▁ro te ▁Hunde → pieces 0 1 1 2
    src = piece_words(["▁drei", "▁ro", "te", "▁Hunde"], marked=True)
    # target words: "three" "red" "dogs" as ▁three ▁re d ▁dogs, plus the </s> row
    tgt = piece_words(["▁three", "▁re", "d", "▁dogs"], marked=True)
    attention = one_hot(5, 4, [0, 1, 2, 3, 0])  # the </s> row looks back at word 0
    alignment = word_alignment(attention, src, tgt)
    assert alignment == [(0, 0), (1, 1), (2, 2)]
    assert pharaoh(alignment) == "0-0 1-1 2-2"


def test_a_reversing_attention_gives_the_anti_diagonal():
    src = piece_words(["a", "b", "c", "d"], marked=False)
    tgt = piece_words(["▁w", "x", "▁y", "▁z"], marked=True)  # 3 words
    attention = one_hot(5, 4, [3, 3, 1, 0, 2])
    assert word_alignment(attention, src, tgt) == [(3, 0), (1, 1), (0, 2)]


def test_pieces_of_a_word_pool_their_attention():
    # source word 1 has two pieces with 0.3 each: together (0.6) they beat word 0's 0.4
    src = [0, 1, 1]
    assert word_alignment([[0.4, 0.3, 0.3], [1, 0, 0]], src, [0]) == [(1, 0)]
    assert word_alignment([[1.0]], [0], []) == []  # an empty output: nothing to align


@pytest.fixture(scope="module")
def translator(model_dir) -> Translator:
    return Translator.load(model_dir, "cpu")


@pytest.mark.parametrize("beam_size", [1, 3])
def test_every_output_word_is_aligned_inside_both_sentences(translator, beam_size):
    found = translator.search(LINES, nbest=1, attention=True, beam_size=beam_size)
    for line, (best,) in zip(LINES, found, strict=True):
        out_words = len(best.text.split())
        assert [j for _, j in best.alignment] == list(range(out_words))
        assert all(0 <= i < len(line.split()) for i, _ in best.alignment)
    assert translator.search(LINES[:1])[0][0].alignment is None  # only with attention


def test_the_cli_writes_alignments_after_a_tab(runner, model_dir, translator, tmp_path):
    src = write_lines(tmp_path / "in.txt", [LINES[0], "", LINES[1]])
    result = translate(runner, model_dir, str(src), "--alignments", "--beam", "3")
    assert result.exit_code == 0, result.output
    rows = [row.split("\t") for row in result.stdout.splitlines()]
    assert [len(row) for row in rows] == [2, 2, 2]
    expected = translator.search([LINES[0], "", LINES[1]], attention=True, beam_size=3)
    assert rows[1] == ["", ""]
    for row, found in zip([rows[0], rows[2]], [expected[0], expected[2]], strict=True):
        assert row == [found[0].text, pharaoh(found[0].alignment)]

    nbest = translate(runner, model_dir, str(src), "--alignments", "--beam", "3", "--nbest", "2")
    assert nbest.exit_code == 0, nbest.output
    assert all(len(row.split("\t")) == 4 for row in nbest.stdout.splitlines())


def copy_task(path, size: int, seed: int):
    """A TSV of a monotone task: each word written in capitals, in order (i-i alignment)."""
    rng = random.Random(seed)
    words = "alpha beta gamma delta eps zeta eta theta iota kappa lam mu".split()
    rows = []
    for _ in range(size):
        line = [rng.choice(words) for _ in range(rng.randint(3, 7))]
        rows.append(f"{' '.join(line)}\t{' '.join(w.upper() for w in line)}\n")
    path.write_text("".join(rows), encoding="utf-8")
    return path


def test_a_trained_model_aligns_a_monotone_task_monotonically(runner, quickstart, tmp_path):
    from helpers.cli import set_args

    from nmt.cli.main import app

    data = {split: copy_task(tmp_path / f"{split}.tsv", n, seed) for split, n, seed in
            [("train", 2000, 0), ("valid", 20, 1), ("test", 20, 2)]}  # fmt: skip
    overrides = [f"data.{split}={{tsv: {path}}}" for split, path in data.items()]
    overrides += ["tokenizer.type=word", "model.embedding_size=32", "model.hidden_size=32"]
    overrides += ["train.batch_tokens=500", "train.max_steps=800", "train.max_epochs=100"]
    overrides += ["train.eval_every=1000", "train.log_every=1000"]
    model = tmp_path / "copy"
    trained = runner.invoke(
        app, ["train", str(quickstart), *set_args(overrides), "--output-dir", str(model)]
    )
    assert trained.exit_code == 0, trained.output
    sources = [row.split("\t")[0] for row in data["test"].read_text().splitlines()]
    src = write_lines(tmp_path / "in.txt", sources)
    result = translate(runner, model, str(src), "--alignments", "--greedy")
    assert result.exit_code == 0, result.output
    pairs = [
        tuple(map(int, pair.split("-")))
        for row in result.stdout.splitlines()
        for pair in row.split("\t")[1].split()
    ]
    assert len(pairs) >= 3 * len(sources)
    assert sum(i == j for i, j in pairs) >= 0.8 * len(pairs)  # most words: i-i


def test_an_attention_less_model_is_refused(runner, quickstart, tmp_path, tiny_overrides):
    from helpers.cli import set_args

    from nmt.cli.main import app

    model = tmp_path / "bare"
    overrides = [*tiny_overrides, "model.attention=none", "train.max_steps=2"]
    trained = runner.invoke(
        app, ["train", str(quickstart), *set_args(overrides), "--output-dir", str(model)]
    )
    assert trained.exit_code == 0, trained.output
    src = write_lines(tmp_path / "in.txt", LINES[:1])
    result = translate(runner, model, str(src), "--alignments")
    assert_user_error(result, "--alignments come from the attention", "model.attention none")


def test_the_json_api_returns_it_on_request(model_dir, translator):
    pytest.importorskip("fastapi")
    from helpers.serving import post, running

    from nmt.serve.engine import TorchEngine
    from nmt_runtime.serve.app import create_app
    from nmt_runtime.serve.limits import Limits

    limits = Limits(max_chars=200, max_tokens=30, max_texts=8, max_body_bytes=5000)
    with running(create_app([TorchEngine.load(model_dir, device="cpu")], limits)) as address:
        status, data = post(address, "/api/translate", {"text": LINES[:2], "alignment": True})
        assert status == 200
        expected = translator.search(LINES[:2], attention=True)
        got = [t["alignment"] for t in data["translations"]]
        assert got == [pharaoh(f[0].alignment) for f in expected]
        assert all(t["attention"] is None for t in data["translations"])  # not asked
        status, data = post(address, "/api/translate", {"text": LINES[:1]})
        assert data["translations"][0]["alignment"] is None
