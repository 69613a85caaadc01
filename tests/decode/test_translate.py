"""Translator: a model directory + lines of text → translations (nmt.decode.translate).

Checked on the shared tiny model of conftest.py (it translates badly, so nothing here
compares with a reference): output i answers input i; empty and blank lines give ""
without disturbing the others; a batch decodes exactly as each line alone, greedy and
beam; n-best lists have n entries sorted by score, and nbest > beam is a UserError; long
lines are translated whole up to decode.max_input_length (300 tokens by default), which
cuts longer ones and counts and locates them; attention
has one row per target piece plus </s>, one column per source piece, rows summing to 1;
the beam_size and length_penalty overrides take effect; loading a directory that is not
a model directory, or a file, is a UserError.
"""

from __future__ import annotations

import dataclasses
import math
import re
import shutil

import pytest

import nmt.decode.translate
from nmt.data.toy import numbers
from nmt.decode.translate import Translator
from nmt.errors import UserError

LINES = [src for src, _ in numbers("test", 6)]


@pytest.fixture(scope="module")
def translator(model_dir) -> Translator:
    return Translator.load(model_dir, "cpu")


@pytest.fixture
def fresh_translator(model_dir) -> Translator:
    """A translator of its own, for tests that read its `truncated` counter."""
    return Translator.load(model_dir, "cpu")


def test_lines_of_different_lengths():
    # The properties below only mean something if the batch mixes lengths.
    assert len({len(line.split()) for line in LINES}) > 2


@pytest.mark.parametrize("beam_size", [1, 3])
def test_output_order_follows_input_order(translator, beam_size):
    forward = translator.translate(LINES, beam_size=beam_size)
    backward = translator.translate(LINES[::-1], beam_size=beam_size)
    assert len(forward) == len(LINES)
    assert backward[::-1] == forward
    # the tiny model's outputs (pieces, which may detokenize to "") differ in length
    found = translator.search(LINES, beam_size=beam_size)
    assert len({len(f[0].target_pieces) for f in found}) > 1


@pytest.mark.parametrize("beam_size", [1, 3])
def test_empty_and_blank_lines_give_empty_strings(translator, beam_size):
    alone = translator.translate(LINES[:2], beam_size=beam_size)
    mixed = translator.translate(["", LINES[0], "   ", LINES[1], ""], beam_size=beam_size)
    assert mixed == ["", alone[0], "", alone[1], ""]
    assert translator.translate([""], beam_size=beam_size) == [""]
    assert translator.translate([], beam_size=beam_size) == []
    assert translator.search(["", LINES[0]], beam_size=beam_size)[0] == []


@pytest.mark.parametrize("beam_size", [1, 4])
def test_batched_decoding_equals_one_line_at_a_time(translator, beam_size):
    nbest = min(beam_size, 2)
    batched = translator.search(LINES, nbest=nbest, beam_size=beam_size)
    for line, together in zip(LINES, batched, strict=True):
        (alone,) = translator.search([line], nbest=nbest, beam_size=beam_size)
        assert [t.text for t in together] == [t.text for t in alone]
        assert [t.target_pieces for t in together] == [t.target_pieces for t in alone]
        assert [t.score for t in together] == pytest.approx([t.score for t in alone], abs=1e-3)


def test_nbest_returns_n_translations_sorted_by_score(translator):
    found = translator.search(LINES, nbest=3, beam_size=4)
    assert len(found) == len(LINES)
    for hyps in found:
        assert len(hyps) == 3
        scores = [h.score for h in hyps]
        assert scores == sorted(scores, reverse=True)
        assert all(math.isfinite(s) and s <= 0 for s in scores)
        # distinct hypotheses, not one repeated
        assert len({tuple(h.target_pieces) for h in hyps}) == 3
    # the first of the n best is the 1-best translation
    assert [h[0].text for h in found] == translator.translate(LINES, beam_size=4)


def test_nbest_wider_than_the_beam_is_a_user_error(translator):
    with pytest.raises(UserError, match="--nbest 4"):
        translator.search(LINES[:1], nbest=4, beam_size=3)
    with pytest.raises(UserError, match="--nbest 2 needs a beam at least that wide"):
        translator.search(LINES[:1], nbest=2, beam_size=1)


def test_long_lines_are_translated_whole(fresh_translator):
    # data.max_length filters training pairs; it must not cut what users translate.
    limit = fresh_translator.recipe.data.max_length
    phrase = "three hundred forty-two red dogs sleep"
    per_phrase = len(fresh_translator.src_tokenizer.encode([phrase])[0])
    long_line = " ".join([phrase] * (limit // per_phrase + 1))
    pieces = len(fresh_translator.src_tokenizer.encode([long_line])[0])
    assert limit < pieces <= fresh_translator.recipe.decode.max_input_length
    found = fresh_translator.search([LINES[0], long_line], beam_size=1)
    assert len(found[1][0].source_pieces) == pieces
    assert fresh_translator.truncated == 0


def test_a_very_long_line_is_cut_by_default_and_located(model_without_cap_key):
    # A million characters with beam 5 ran for minutes and took gigabytes: by default a
    # source is cut to decode.max_input_length tokens, and the line is counted and named.
    translator = Translator.load(model_without_cap_key, "cpu")
    cap = translator.recipe.decode.max_input_length
    assert cap == 300
    huge = " ".join(["three hundred forty-two red dogs sleep"] * 25_000)  # ~1M characters
    lines = [LINES[0], huge, "", LINES[1], huge]
    found = translator.search(lines, beam_size=1)
    short = [len(ids) for ids in translator.src_tokenizer.encode(LINES[:2])]
    sizes = [len(f[0].source_pieces) if f else 0 for f in found]
    assert sizes == [short[0], cap, 0, short[1], cap]
    assert translator.truncated == 2 and translator.truncated_lines == [1, 4]
    translator.search([huge], beam_size=1)  # a second call counts on
    assert translator.truncated == 3 and translator.truncated_lines == [1, 4, 5]


def test_translator_remembers_a_bounded_number_of_cut_lines(fresh_translator, monkeypatch):
    monkeypatch.setattr(nmt.decode.translate, "CUT_LINES_KEPT", 3)
    long_line = " ".join(["three hundred forty-two red dogs sleep"] * 4)
    fresh_translator.encode([long_line] * 5, limit=2)
    assert fresh_translator.truncated == 5 and fresh_translator.truncated_lines == [0, 1, 2]


def test_max_input_length_cuts_long_lines_and_counts_them(fresh_translator):
    long_line = " ".join(["three hundred forty-two red dogs sleep"] * 4)
    short = len(fresh_translator.src_tokenizer.encode([LINES[0]])[0])
    cap = short + 1
    found = fresh_translator.search([LINES[0], long_line, long_line], max_input_length=cap)
    assert fresh_translator.truncated == 2
    assert len(found[1][0].source_pieces) == cap
    assert len(found[0][0].source_pieces) == short
    fresh_translator.translate([long_line, LINES[0]], beam_size=1, max_input_length=cap)
    assert fresh_translator.truncated == 3  # a running count
    fresh_translator.translate([long_line], beam_size=1)  # no cap: nothing cut
    assert fresh_translator.truncated == 3


def check_attention(translation):
    rows = translation.attention
    assert rows is not None
    assert len(rows) == len(translation.target_pieces) + 1  # pieces, then </s>
    for row in rows:
        assert len(row) == len(translation.source_pieces)
        assert sum(row) == pytest.approx(1.0, abs=1e-4)
        assert all(w >= 0 for w in row)


@pytest.mark.parametrize("beam_size", [1, 3])
def test_attention_of_one_line(translator, beam_size):
    (found,) = translator.search([LINES[0]], attention=True, beam_size=beam_size)
    check_attention(found[0])


@pytest.mark.parametrize("beam_size", [1, 3])
def test_attention_in_a_batch_has_one_column_per_source_piece(translator, beam_size):
    found = translator.search(LINES, attention=True, beam_size=beam_size)
    for hyps in found:
        check_attention(hyps[0])


def test_no_attention_unless_asked(translator):
    (found,) = translator.search(LINES[:1], beam_size=3)
    assert found[0].attention is None


def test_beam_size_override_takes_effect(translator):
    assert translator.recipe.decode.beam_size == 5
    assert len(translator.search(LINES[:1], nbest=5)[0]) == 5  # the recipe's beam
    with pytest.raises(UserError, match="--nbest 5 needs a beam at least that wide"):
        translator.search(LINES[:1], nbest=5, beam_size=2)
    assert translator.decode_config(beam_size=2).beam_size == 2
    assert translator.decode_config(beam_size=None).beam_size == 5  # None: keep the recipe's


def test_a_decode_config_given_as_settings_is_searched_with(translator):
    settings = dataclasses.replace(translator.recipe.decode, beam_size=3, length_penalty=1.0)
    given = translator.search(LINES[:2], nbest=3, settings=settings)
    named = translator.search(LINES[:2], nbest=3, beam_size=3, length_penalty=1.0)
    assert [[(t.text, t.score) for t in f] for f in given] == [
        [(t.text, t.score) for t in f] for f in named
    ]
    assert translator.translate(LINES[:2], settings=settings) == [f[0].text for f in named]
    # a keyword puts its value into the settings given; None keeps theirs
    assert translator.decode_config(settings, beam_size=2) == dataclasses.replace(
        settings, beam_size=2
    )
    assert translator.decode_config(settings, beam_size=None) == settings


def test_a_misnamed_or_mistyped_decode_keyword_names_itself(translator):
    with pytest.raises(UserError, match=r"unknown key 'decode.beam'.*'decode.beam_size'"):
        translator.translate(LINES[:1], beam=3)
    with pytest.raises(UserError, match=r"'decode.beam_size' must be int, got '3'"):
        translator.search(LINES[:1], beam_size="3")
    with pytest.raises(UserError, match=r"'decode.length_normalization' must be one of"):
        translator.decode_config(length_normalization="gmnt")


def test_length_penalty_override_takes_effect(translator):
    # Greedy search picks the same tokens whatever alpha; GNMT normalization then divides
    # the summed log-probability by ((5 + length) / 6) ** alpha, </s> counted.
    (raw,) = translator.search(LINES[:1], beam_size=1, length_penalty=0.0)
    (scaled,) = translator.search(LINES[:1], beam_size=1, length_penalty=1.0)
    assert raw[0].target_pieces == scaled[0].target_pieces
    length = len(raw[0].target_pieces) + 1
    assert scaled[0].score == pytest.approx(raw[0].score / ((5 + length) / 6), rel=1e-4)
    assert translator.recipe.decode.length_normalization == "gnmt"


def test_load_a_directory_that_is_not_a_model_dir(tmp_path):
    with pytest.raises(UserError, match="not a model directory"):
        Translator.load(tmp_path, "cpu")
    with pytest.raises(UserError, match="not a model directory"):
        Translator.load(tmp_path / "missing", "cpu")


def test_load_a_file_says_a_model_is_a_directory(model_dir):
    # `--model runs/x/recipe.yaml` is a common slip: the answer names it and the directory.
    recipe = model_dir / "recipe.yaml"
    with pytest.raises(UserError, match="^" + re.escape(f"--model {recipe} is a file")) as refused:
        Translator.load(recipe, "cpu")
    assert str(refused.value) == (
        f"--model {recipe} is a file, not a model directory: --model wants the directory "
        f"that nmt train wrote (holding recipe.yaml and model.safetensors), e.g. {model_dir}"
    )


def test_load_a_model_dir_without_weights(model_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    (broken / "model.safetensors").unlink()
    with pytest.raises(UserError, match="model.safetensors"):
        Translator.load(broken, "cpu")


def test_stream_equals_search_and_reads_lazily(translator):
    lines = [en for en, _ in numbers("test", 5)] + [""]
    consumed = []

    def source():
        for line in lines:
            consumed.append(line)
            yield line

    stream = translator.stream(source(), chunk=2, nbest=2, beam_size=3)
    first = next(stream)
    assert len(consumed) == 2  # only the first chunk has been read
    rest = list(stream)
    expected = translator.search(lines, nbest=2, beam_size=3)
    assert [[t.text for t in f] for f in [first, *rest]] == [[t.text for t in f] for f in expected]


def test_stream_checks_its_request_before_reading(translator):
    def source():
        raise AssertionError("read before the request was checked")
        yield ""

    with pytest.raises(UserError, match="--nbest 3"):
        next(translator.stream(source(), nbest=3, beam_size=1))


def test_a_recipe_edited_to_a_huge_model_is_refused_before_allocating_it(copy_model):
    # 8192-wide LSTMs pass the recipe check (1 billion parameters, nmt.recipe.size) but
    # would take 4 GB; the safetensors header is read first. A width past the recipe's
    # bound (test_config_limits) is refused before even that.
    run_dir = copy_model()
    recipe = run_dir / "recipe.yaml"
    recipe.write_text(recipe.read_text().replace("hidden_size: 32", "hidden_size: 8192"))
    with pytest.raises(UserError, match="do not fit the model its recipe.yaml describes"):
        Translator.load(run_dir, "cpu")
