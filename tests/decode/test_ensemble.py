"""Ensemble decoding (nmt.decode.ensemble): the mean of the members' probabilities at every step.

Checked: on stub members with fixed distributions, a step gives log of the mean of their
softmaxes (-inf where all forbid a token), the mean attention of the members that have
some, and a state whose reorder reorders every member; an ensemble of a model with
itself gives exactly that model's hypotheses, scores and attention (greedy, beam, n-best;
fp32, bf16 and int8), through search and through `Translator.load`; beam size 1 equals
greedy for an ensemble of different architectures; the teacher-forced ensemble log-
probabilities (perplexity) equal the ones search steps through; the CLI translates,
scores and measures perplexity with two --model directories (a Luong LSTM and a Bahdanau
GRU trained on the same data); models that do not share their tokenizers or target
vocabulary give one UserError naming both directories.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from helpers.cli import set_args
from helpers.search import MAX_LENGTHS, SRC_LENGTHS, source_batch
from helpers.search import tiny_model as search_model
from torch import nn

from nmt.cli.main import app
from nmt.data.tokenizer import SentencePieceTokenizer, TargetSubset, WordTokenizer
from nmt.data.toy import numbers
from nmt.decode.ensemble import Ensemble, EnsembleState, attends, vocabulary_difference
from nmt.decode.search import SearchState, beam_search, greedy_search
from nmt.decode.translate import Translator
from nmt.errors import UserError
from nmt.model.seq2seq import Seq2Seq
from nmt.report.evaluation import file_perplexity
from nmt.vocab import BOS, EOS, PAD, SPECIALS, UNK

PAIRS = numbers("test", 6)
LINES = [en for en, _ in PAIRS]

# ------------------------------------------------------------------ stub members

A, B = 4, 5  # PAD UNK BOS EOS A B


@dataclass
class Rows:
    """Which table row each search row reads."""

    rows: torch.Tensor

    def reorder(self, index: torch.Tensor) -> Rows:
        return Rows(self.rows.index_select(0, index))


class Fixed(nn.Module):
    """A member whose next-token distributions are the rows of a table: row r at step r
    (the last row from then on), whatever the tokens."""

    def __init__(self, table: list[dict[int, float]], attention: list[float] | None = None):
        super().__init__()
        probs = torch.zeros(len(table), 6, dtype=torch.float64)
        for r, row in enumerate(table):
            for token, p in row.items():
                probs[r, token] = p
        self.log_probs = probs.log().float()
        self.attention = None if attention is None else torch.tensor([attention])

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> Rows:
        return Rows(torch.arange(len(self.log_probs)))

    def step(self, prev: torch.Tensor, state: Rows):
        attn = None if self.attention is None else self.attention.expand(len(prev), -1)
        following = Rows((state.rows + 1).clamp(max=len(self.log_probs) - 1))
        return self.log_probs[state.rows], following, attn


FIRST = [{UNK: 0.1, EOS: 0.2, A: 0.6, B: 0.1}, {EOS: 0.9, A: 0.1}]
SECOND = [{UNK: 0.1, EOS: 0.4, A: 0.2, B: 0.3}, {EOS: 0.3, B: 0.7}]


def test_a_step_is_log_of_the_mean_of_the_softmaxes():
    ensemble = Ensemble([Fixed(FIRST), Fixed(SECOND)])
    state = ensemble.encode(torch.zeros(2, 1), torch.ones(2))
    log_probs, _, attention = ensemble.step(torch.full((2,), BOS), state)
    # by hand: row 0 = (0.1+0.1)/2, (0.2+0.4)/2, (0.6+0.2)/2, (0.1+0.3)/2 for UNK EOS A B
    expected = torch.full((2, 6), float("-inf"))
    expected[0, [UNK, EOS, A, B]] = torch.tensor([0.1, 0.3, 0.4, 0.2]).log()
    expected[1, [EOS, A, B]] = torch.tensor([0.6, 0.05, 0.35]).log()
    torch.testing.assert_close(log_probs, expected)
    assert torch.isneginf(log_probs[:, [PAD, BOS]]).all()
    assert torch.isneginf(log_probs[1, UNK])  # both members forbid it
    assert log_probs.exp().sum(-1).tolist() == pytest.approx([1.0, 1.0])
    assert attention is None  # neither member attends


def test_reorder_reorders_every_member():
    ensemble = Ensemble([Fixed(FIRST), Fixed(SECOND)])
    state = ensemble.encode(torch.zeros(2, 1), torch.ones(2))
    assert isinstance(state, SearchState) and isinstance(state, EnsembleState)
    before, _, _ = ensemble.step(torch.full((2,), BOS), state)
    index = torch.tensor([1, 0, 1])
    moved = state.reorder(index)
    assert [s.rows.tolist() for s in moved.states] == [[1, 0, 1], [1, 0, 1]]
    after, _, _ = ensemble.step(torch.full((3,), BOS), moved)
    torch.testing.assert_close(after, before[index])


def test_attention_is_the_mean_over_the_members_that_attend():
    members = [Fixed(FIRST, [0.5, 0.5, 0.0]), Fixed(SECOND), Fixed(FIRST, [0.1, 0.9, 0.0])]
    ensemble = Ensemble(members)
    state = ensemble.encode(torch.zeros(2, 1), torch.ones(2))
    _, _, attention = ensemble.step(torch.full((2,), BOS), state)
    torch.testing.assert_close(attention, torch.tensor([[0.3, 0.7, 0.0]] * 2))


def test_beam_search_on_stub_members_finds_the_mixtures_best():
    # The mixture: step 0 A 0.4, </s> 0.3, B 0.2; then </s> 0.6, B 0.35, A 0.05. So []
    # = 0.3 beats [A] = 0.4 · 0.6 = 0.24, and the best live [A, B] (0.14) cannot catch up,
    # although FIRST alone would say [A] (0.6 · 0.9 = 0.54).
    ensemble = Ensemble([Fixed(FIRST), Fixed(SECOND)])
    state = Rows(torch.zeros(1, dtype=torch.long))
    start = EnsembleState((state, state))
    found = beam_search(ensemble.step, start, torch.tensor([3]), beam_size=2, nbest=2)
    assert [h.tokens for h in found[0]] == [[], [A]]
    assert [h.score for h in found[0]] == pytest.approx([math.log(0.3), math.log(0.24)], abs=1e-6)


# ------------------------------------------------------------------ small random models


def tiny_model(attention: str = "luong_general", cell: str = "lstm", size: int = 16) -> Seq2Seq:
    return search_model(attention, cell, size, seed=None)  # members differ from each other


def search(model, beam_size: int, **kwargs):
    state = model.encode(*source_batch(SRC_LENGTHS))
    if beam_size == 1:
        return greedy_search(model.step, state, MAX_LENGTHS, **kwargs)
    return beam_search(model.step, state, MAX_LENGTHS, beam_size, **kwargs)


@pytest.mark.parametrize("beam_size, nbest", [(1, 1), (4, 3)])
def test_an_ensemble_of_a_model_with_itself_is_that_model(beam_size, nbest):
    torch.manual_seed(0)
    model = tiny_model()
    kwargs = dict(return_attention=True, normalization="gnmt", length_penalty=0.6)
    if beam_size > 1:
        kwargs["nbest"] = nbest
    alone = search(model, beam_size, **kwargs)
    twice = search(Ensemble([model, model]), beam_size, **kwargs)
    for a, b in zip(alone, twice, strict=True):
        assert len(a) == len(b) == nbest
        assert [h.tokens for h in a] == [h.tokens for h in b]
        assert [h.score for h in a] == [h.score for h in b]  # exactly, not nearly
        for ha, hb in zip(a, b, strict=True):
            assert torch.equal(ha.attention, hb.attention)
    assert any(h[0].tokens for h in alone)  # not all empty: the comparison means something


def mixed_ensemble() -> Ensemble:
    torch.manual_seed(1)
    members = [tiny_model("luong_general", "lstm"), tiny_model("bahdanau", "gru", 12)]
    return Ensemble(members + [tiny_model("none", "rnn", 10)]).eval()


def test_beam_size_one_equals_greedy_for_an_ensemble():
    ensemble = mixed_ensemble()
    for min_length in (0, 2):
        greedy = search(ensemble, 1, min_length=min_length)
        state = ensemble.encode(*source_batch(SRC_LENGTHS))
        beam = beam_search(ensemble.step, state, MAX_LENGTHS, 1, min_length=min_length)
        assert [h[0].tokens for h in beam] == [h[0].tokens for h in greedy]
        assert [h[0].score for h in beam] == pytest.approx([h[0].score for h in greedy], abs=1e-5)
    assert any(h[0].tokens for h in greedy)


def test_an_ensembles_attention_rows_are_distributions_over_the_source():
    found = search(mixed_ensemble(), 3, nbest=2, return_attention=True)
    for b, nbest in enumerate(found):
        for h in nbest:
            assert h.attention.shape == (len(h.tokens) + 1, max(SRC_LENGTHS))
            torch.testing.assert_close(h.attention.sum(-1), torch.ones(len(h.tokens) + 1))
            assert not h.attention[:, SRC_LENGTHS[b] :].any()  # no weight on padding


def test_teacher_forced_log_probs_equal_the_search_steps():
    # Perplexity (loss.mean_nll through Ensemble.forward) scores each reference token with
    # the same mixture that search steps through.
    ensemble = mixed_ensemble()
    src, lengths = source_batch(SRC_LENGTHS)
    g = torch.Generator().manual_seed(2)
    tgt_in = torch.cat([torch.full((5, 1), BOS), torch.randint(4, 10, (5, 6), generator=g)], 1)
    forced = ensemble(src, lengths, tgt_in)  # (B, T, V)
    state = ensemble.encode(src, lengths)
    for t in range(tgt_in.size(1)):
        stepped, state, _ = ensemble.step(tgt_in[:, t], state)
        torch.testing.assert_close(forced[:, t], stepped, atol=1e-5, rtol=0)
    positions = torch.ones_like(tgt_in, dtype=torch.bool)
    positions[0, 3:] = False
    torch.testing.assert_close(
        ensemble(src, lengths, tgt_in, positions=positions), forced[positions]
    )


def test_attends():
    assert attends(mixed_ensemble()) and attends(tiny_model()) and not attends(tiny_model("none"))
    assert not attends(Ensemble([tiny_model("none"), tiny_model("none", "gru")]))


# ------------------------------------------------------------------ trained models


@pytest.fixture(scope="module")
def bahdanau_dir(tmp_path_factory, runner, quickstart, tiny_overrides) -> Path:
    """A Bahdanau GRU trained on the shared model's data with its tokenizer settings, so
    its tokenizers are the shared (Luong LSTM) model's: a valid ensemble partner."""
    out = tmp_path_factory.mktemp("ensemble") / "bahdanau"
    overrides = [
        *tiny_overrides,
        "model.attention=bahdanau",
        "model.cell=gru",
        "model.hidden_size=24",
    ]
    args = ["train", str(quickstart), *set_args(overrides), "--output-dir", str(out)]
    result = runner.invoke(app, [*args, "--device", "cpu"])
    assert result.exit_code == 0, result.output
    return out


def texts(found) -> list[list[tuple[str, float]]]:
    return [[(t.text, t.score) for t in hyps] for hyps in found]


@pytest.mark.parametrize("precision", ["fp32", "bf16", "int8"])
def test_a_translator_of_a_model_with_itself_is_that_model(model_dir, precision):
    alone = Translator.load(model_dir, "cpu", precision)
    twice = Translator.load([model_dir, model_dir], "cpu", precision)
    assert isinstance(twice.model, Ensemble) and twice.size == 2
    if precision == "int8":  # every member quantized
        assert all(
            type(m.decoder.output).__module__.startswith("torch.ao") for m in twice.model.members
        )
    for beam_size, nbest in [(1, 1), (4, 3)]:
        a = alone.search(LINES, nbest=nbest, attention=True, beam_size=beam_size)
        b = twice.search(LINES, nbest=nbest, attention=True, beam_size=beam_size)
        assert texts(a) == texts(b)  # scores exactly equal too
        assert [[t.attention for t in h] for h in a] == [[t.attention for t in h] for h in b]


def test_a_list_of_one_directory_is_the_model_itself(model_dir):
    one = Translator.load([model_dir], "cpu")
    assert isinstance(one.model, Seq2Seq) and one.size == 1
    assert one.translate(LINES) == Translator.load(model_dir, "cpu").translate(LINES)
    with pytest.raises(UserError, match="no model directory"):
        Translator.load([], "cpu")


@pytest.mark.slow
def test_an_ensemble_of_two_architectures_translates(model_dir, bahdanau_dir):
    ensemble = Translator.load([model_dir, bahdanau_dir], "cpu")
    wirings = {m.decoder.wiring.query for m in ensemble.model.members}
    assert wirings == {"current", "previous"}  # Luong and Bahdanau
    for beam_size in (1, 3):
        found = ensemble.search(LINES, nbest=1, attention=True, beam_size=beam_size)
        assert len(found) == len(LINES) and all(found)
        for (best,) in found:
            assert len(best.attention) == len(best.target_pieces) + 1
            assert all(sum(row) == pytest.approx(1.0, abs=1e-4) for row in best.attention)
    # the decode settings are the first model's recipe's, overrides aside
    assert ensemble.recipe == Translator.load(model_dir, "cpu").recipe
    assert ensemble.decode_config(beam_size=2).beam_size == 2


@pytest.fixture
def corpus_files(tmp_path) -> tuple[Path, Path]:
    src, ref = tmp_path / "test.en", tmp_path / "test.de"
    src.write_text("".join(f"{en}\n" for en, _ in PAIRS), encoding="utf-8")
    ref.write_text("".join(f"{de}\n" for _, de in PAIRS), encoding="utf-8")
    return src, ref


def test_ensemble_perplexity_is_at_most_its_members_mean(model_dir, bahdanau_dir, corpus_files):
    # -log((p1 + p2) / 2) ≤ (-log p1 - log p2) / 2 for every token (log is concave), so
    # over the same tokens the ensemble's cross-entropy is at most its members' mean.
    luong, bahdanau = (Translator.load(d, "cpu") for d in (model_dir, bahdanau_dir))
    both = Translator.load([model_dir, bahdanau_dir], "cpu")
    ce = [file_perplexity(t, *corpus_files)["cross_entropy"] for t in (luong, bahdanau, both)]
    assert ce[2] <= (ce[0] + ce[1]) / 2 + 1e-4
    assert ce[2] != ce[0] and ce[2] != ce[1]
    itself = file_perplexity(Translator.load([model_dir, model_dir], "cpu"), *corpus_files)
    assert itself["cross_entropy"] == pytest.approx(ce[0], abs=2e-4)


def test_cli_translate_and_evaluate_with_two_models(
    runner, model_dir, bahdanau_dir, corpus_files, tmp_path
):
    src, ref = corpus_files
    expected = Translator.load([model_dir, bahdanau_dir], "cpu").translate(LINES)
    models = ["--model", str(model_dir), "-m", str(bahdanau_dir), "--device", "cpu"]
    attn = tmp_path / "attn.jsonl"
    result = runner.invoke(app, ["translate", str(src), *models, "--attention-out", str(attn)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == expected
    assert "ensemble of 2 models" in result.stderr
    assert len(attn.read_text().splitlines()) == len(LINES)

    out = tmp_path / "hyp.de"
    args = ["--source", str(src), "--reference", str(ref), "--json", "--output", str(out)]
    result = runner.invoke(app, ["evaluate", "bleu", *models, *args])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ensemble"] == [str(model_dir), str(bahdanau_dir)]
    assert out.read_text().splitlines() == expected

    args = ["--source", str(src), "--reference", str(ref), "--json"]
    result = runner.invoke(app, ["evaluate", "perplexity", *models, *args])
    assert result.exit_code == 0, result.output
    both = Translator.load([model_dir, bahdanau_dir], "cpu")
    expected = file_perplexity(both, src, ref)["cross_entropy"]
    assert json.loads(result.stdout)["cross_entropy"] == expected


# ------------------------------------------------------------------ what cannot be ensembled


def other_spm() -> bytes:
    """A SentencePiece model with nmt's specials, trained on other text."""
    lines = [f"{a} {b} banana apple cherry" for a, b in numbers("train", 200)]
    return SentencePieceTokenizer.train(lines, 90).to_bytes()


def other_tokenizer(model_dir: Path) -> None:
    """Give a model directory another SentencePiece model (and no target subset, whose ids
    the new model would not have)."""
    (model_dir / "spm.model").write_bytes(other_spm())
    (model_dir / "target_vocab.txt").unlink()


BREAKAGES = {
    "target_vocab.txt": (
        lambda d: (d / "target_vocab.txt").write_text(
            "".join((d / "target_vocab.txt").read_text().splitlines(keepends=True)[:-1])
        ),
        "target vocabularies (target_vocab.txt) differ",
    ),
    "no target_vocab.txt": (
        lambda d: (d / "target_vocab.txt").unlink(),
        "only the first restricts its target vocabulary",
    ),
    "spm.model": (lambda d: other_tokenizer(d), "source tokenizers differ"),
}


@pytest.mark.parametrize("broken", list(BREAKAGES))
def test_models_with_other_vocabularies_are_refused(model_dir, copy_model, broken):
    other = copy_model("other")
    breaks, what = BREAKAGES[broken]
    breaks(other)
    with pytest.raises(
        UserError, match=re.escape(f"--model {model_dir} and --model {other} cannot")
    ) as caught:
        Translator.load([model_dir, other], "cpu")
    message = str(caught.value)
    assert f"--model {model_dir} and --model {other} cannot be ensembled" in message
    assert what in message


def test_the_cli_names_both_directories(runner, model_dir, copy_model, corpus_files):
    other = copy_model("other")
    other_tokenizer(other)
    args = [str(corpus_files[0]), "-m", str(model_dir), "-m", str(other), "--device", "cpu"]
    result = runner.invoke(app, ["translate", *args])
    assert result.exit_code == 1
    assert result.stdout == "" and "Traceback" not in result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and str(model_dir) in line and str(other) in line


def test_vocabulary_difference_of_word_tokenizers():
    words = WordTokenizer([*SPECIALS, "a", "b"])
    more = WordTokenizer([*SPECIALS, "a", "b", "c"])
    spm_tok = SentencePieceTokenizer(other_spm())
    assert vocabulary_difference((words, words), (words, words)) == ""
    assert "different kinds" in vocabulary_difference((words, words), (spm_tok, spm_tok))
    assert "source tokenizers differ" in vocabulary_difference((words, words), (more, words))
    assert "target tokenizers differ" in vocabulary_difference((words, words), (words, more))
    subset, other_subset = TargetSubset(more, [4]), TargetSubset(more, [5])
    found = vocabulary_difference((words, subset), (words, other_subset))
    assert "target vocabularies (target_vocab.txt) differ" in found
    assert "only the second" in vocabulary_difference((words, more), (words, subset))
