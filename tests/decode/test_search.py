"""Search: an oracle test on a scripted model, and consistency checks on a random one.

The scripted step function reads hand-written probability tables keyed by the prefix
decoded so far, so the best hypotheses and their scores can be worked out on paper:
beam sizes 1-3 with n-best lists, length normalization that changes the winner, the
stopping rule (go on while an unfinished hypothesis can still win, stop when none can),
min_length and max_lengths. On a small random model: beam size 1 equals greedy, a batch
equals each sentence alone, and attention rows are distributions over the source. Both the
scripted model and the real decoder satisfy the `StepFn` and `SearchState` protocols.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch
from helpers.search import MAX_LENGTHS, SRC_LENGTHS, source_batch, tiny_model

from nmt.decode.search import SearchState, StateT, StepFn, beam_search, gnmt_penalty, greedy_search
from nmt.model.decoder import DecoderState
from nmt.vocab import BOS, EOS, PAD, UNK

# ------------------------------------------------------------------ the scripted model

A, B = 4, 5  # the two real words of a 6-token vocabulary: PAD UNK BOS EOS A B
VOCAB = 6
Table = dict[tuple[int, ...], dict[int, float]]  # prefix (after <s>) → next-token probabilities

FALLBACK = {EOS: 0.97, A: 0.01, B: 0.01, UNK: 0.01}  # any prefix a table does not list

# Greedy takes A (0.5) then </s>: [A] = 0.2; a wider beam finds [B] = 0.3 · 0.9 = 0.27.
MAIN: Table = {
    (): {A: 0.5, B: 0.3, EOS: 0.15, UNK: 0.05},
    (A,): {EOS: 0.4, A: 0.28, B: 0.22, UNK: 0.1},
    (B,): {EOS: 0.9, A: 0.04, B: 0.04, UNK: 0.02},
}
# [] = 0.52 beats [A] = 0.48 · 0.99 on log-probability, not once normalized for length.
SHORT_OR_LONG: Table = {
    (): {EOS: 0.52, A: 0.48},
    (A,): {EOS: 0.99, A: 0.005, B: 0.003, UNK: 0.002},
}
# [] = 0.9 wins; whether [A...] (≤ 0.1) could still win depends on how long it may grow.
STOP: Table = {
    (): {EOS: 0.9, A: 0.1},
    (A,): {EOS: 0.99, A: 0.01},
}
# [] (0.5) ends first; [B] (0.2 · 0.55) ends next while [A, A] (0.3 · 0.9) is still live.
NBEST: Table = {
    (): {EOS: 0.5, A: 0.3, B: 0.2},
    (A,): {A: 0.9, EOS: 0.1},
    (B,): {EOS: 0.55, B: 0.45},
}
# </s> is always the 4th choice, so beams of up to 3 never end it before the maximum length.
ENDLESS: Table = {}
ENDLESS_FALLBACK = {A: 0.6, B: 0.3, UNK: 0.099, EOS: 0.001}


@dataclass
class PrefixState:
    """Row i holds the sentence number, then <s> and every token it has read: (N, 1 + t)."""

    prefix: torch.Tensor

    def reorder(self, index: torch.Tensor) -> PrefixState:
        return PrefixState(self.prefix.index_select(0, index))


class Scripted:
    """A step function over one table per sentence; it counts its calls."""

    def __init__(self, *tables: Table, fallback: dict[int, float] = FALLBACK):
        self.tables = tables
        self.fallback = fallback
        self.calls = 0

    def start(self) -> PrefixState:
        return PrefixState(torch.arange(len(self.tables)).unsqueeze(1))

    def __call__(self, prev: torch.Tensor, state: PrefixState):
        self.calls += 1
        prefix = torch.cat([state.prefix, prev.unsqueeze(1)], dim=1)
        probs = torch.zeros(len(prefix), VOCAB, dtype=torch.float64)
        for i, (sentence, bos, *tokens) in enumerate(prefix.tolist()):
            assert bos == BOS
            for token, p in self.tables[sentence].get(tuple(tokens), self.fallback).items():
                probs[i, token] = p
        log_probs = probs.log().float()
        assert torch.isneginf(log_probs[:, [PAD, BOS]]).all()
        return log_probs, PrefixState(prefix), None


def run_beam(model: Scripted, max_len: int | list[int], **kwargs):
    lengths = [max_len] * len(model.tables) if isinstance(max_len, int) else max_len
    return beam_search(model, model.start(), torch.tensor(lengths), **kwargs)


def run_greedy(model: Scripted, max_len: int | list[int], **kwargs):
    lengths = [max_len] * len(model.tables) if isinstance(max_len, int) else max_len
    return greedy_search(model, model.start(), torch.tensor(lengths), **kwargs)


def hyps(result) -> list[tuple[list[int], float]]:
    """The n-best list of the first sentence as (tokens, score) pairs."""
    return [(h.tokens, h.score) for h in result[0]]


def assert_hyps(result, expected: list[tuple[list[int], float]]) -> None:
    got = hyps(result)
    assert [tokens for tokens, _ in got] == [tokens for tokens, _ in expected]
    for (_, score), (_, want) in zip(got, expected, strict=True):
        assert score == pytest.approx(want, abs=1e-5)


log = math.log


def gnmt(score: float, length: int, alpha: float) -> float:
    return score / gnmt_penalty(length, alpha)


# ------------------------------------------------------------------ oracle: beam sizes


ORACLE_CASES = {
    "beam1": (dict(beam_size=1), [([A], log(0.5 * 0.4))]),
    "beam2": (dict(beam_size=2), [([B], log(0.3 * 0.9))]),
    "beam2-nbest2": (dict(beam_size=2, nbest=2), [([B], log(0.27)), ([A], log(0.2))]),
    "beam3-nbest3": (
        dict(beam_size=3, nbest=3),
        [([B], log(0.27)), ([A], log(0.2)), ([], log(0.15))],
    ),
    # A live [A, A] (0.14) could still beat [A] once averaged, so the search goes on and
    # finds it: 0.14 · 0.97 over 3 tokens ranks second.
    "beam2-nbest2-average": (
        dict(beam_size=2, nbest=2, normalization="average"),
        [([B], log(0.27) / 2), ([A, A], log(0.14 * 0.97) / 3)],
    ),
    "beam3-nbest3-average": (
        dict(beam_size=3, nbest=3, normalization="average"),
        [([B], log(0.27) / 2), ([A, A], log(0.1358) / 3), ([A, B], log(0.11 * 0.97) / 3)],
    ),
    "beam2-nbest2-gnmt": (
        dict(beam_size=2, nbest=2, normalization="gnmt", length_penalty=1.0),
        [([B], gnmt(log(0.27), 2, 1.0)), ([A], gnmt(log(0.2), 2, 1.0))],
    ),
    # min_length=1 rules out [], so the third best is [A, A].
    "beam3-nbest3-min1": (
        dict(beam_size=3, nbest=3, min_length=1),
        [([B], log(0.27)), ([A], log(0.2)), ([A, A], log(0.14 * 0.97))],
    ),
    "beam2-nbest2-min2": (
        dict(beam_size=2, nbest=2, min_length=2),
        [([A, A], log(0.14 * 0.97)), ([A, B], log(0.11 * 0.97))],
    ),
}


@pytest.mark.parametrize("kwargs, expected", ORACLE_CASES.values(), ids=ORACLE_CASES.keys())
def test_beam_search_oracle(kwargs, expected):
    assert_hyps(run_beam(Scripted(MAIN), 3, **kwargs), expected)


def test_greedy_search_oracle():
    assert_hyps(run_greedy(Scripted(MAIN), 3), [([A], log(0.2))])
    average = run_greedy(Scripted(MAIN), 3, normalization="average")
    assert_hyps(average, [([A], log(0.2) / 2)])
    gnmt_result = run_greedy(Scripted(MAIN), 3, normalization="gnmt", length_penalty=0.6)
    assert_hyps(gnmt_result, [([A], gnmt(log(0.2), 2, 0.6))])


# ------------------------------------------------------------------ oracle: length penalty


@pytest.mark.parametrize("beam_size", [1, 2])
def test_length_normalization_changes_the_winner(beam_size):
    none = run_beam(Scripted(SHORT_OR_LONG), 3, beam_size=beam_size)
    assert_hyps(none, [([], log(0.52))])

    average = run_beam(Scripted(SHORT_OR_LONG), 3, beam_size=beam_size, normalization="average")
    assert_hyps(average, [([A], log(0.48 * 0.99) / 2)])

    gnmt_result = run_beam(
        Scripted(SHORT_OR_LONG), 3, beam_size=beam_size, normalization="gnmt", length_penalty=1.0
    )
    assert_hyps(gnmt_result, [([A], gnmt(log(0.48 * 0.99), 2, 1.0))])


# ------------------------------------------------------------------ oracle: stopping rule


@pytest.mark.parametrize("normalization", ["average", "gnmt"])
def test_search_goes_on_after_the_first_finished_hypothesis_while_it_can_be_beaten(
    normalization,
):
    # Step 1 finishes [] (0.52); the live [A] (0.48) loses on log-probability but may win
    # once normalized, so a second step must run, and then [A] </s> wins.
    model = Scripted(SHORT_OR_LONG)
    result = run_beam(model, 3, beam_size=1, normalization=normalization, length_penalty=1.0)
    assert hyps(result)[0][0] == [A]
    assert model.calls == 2

    model = Scripted(SHORT_OR_LONG)  # without normalization nothing can beat [] after step 1
    assert hyps(run_beam(model, 3, beam_size=1))[0][0] == []
    assert model.calls == 1


def test_search_goes_on_while_the_nth_best_can_still_be_beaten():
    # After step 2 the finished list is [] (0.5), [B] (0.11); the live [A, A] (0.27) cannot
    # beat the best but can beat the second, so a 2-best search must take a third step.
    one = Scripted(NBEST)
    assert_hyps(run_beam(one, 5, beam_size=2, nbest=1), [([], log(0.5))])
    assert one.calls == 1

    two = Scripted(NBEST)
    result = run_beam(two, 5, beam_size=2, nbest=2)
    assert_hyps(result, [([], log(0.5)), ([A, A], log(0.3 * 0.9 * 0.97))])
    assert two.calls == 3


def test_gnmt_penalty_formula():
    # lp(Y) = ((5 + |Y|) / 6)^alpha: 1 for one token, and for alpha = 0
    assert gnmt_penalty(1, 0.6) == pytest.approx(1.0)
    assert gnmt_penalty(7, 1.0) == pytest.approx(2.0)
    assert gnmt_penalty(19, 0.5) == pytest.approx(2.0)
    assert gnmt_penalty(12, 0.0) == pytest.approx(1.0)
    lengths = torch.tensor([1.0, 7.0])
    torch.testing.assert_close(gnmt_penalty(lengths, 2.0), torch.tensor([1.0, 4.0]))


def test_search_stops_exactly_when_no_live_hypothesis_can_win():
    # [] scores log 0.9 / 1 = -0.105. A live [A] (log 0.1 = -2.303) averaged over at most
    # max_len + 1 tokens is bounded by -2.303 / 6 = -0.38 for max_len 5: stop at once; by
    # -2.303 / 31 = -0.074 for max_len 30: go on, and stop after step 2 when the best live
    # prefix has log-prob log 0.001 = -6.9 (bound -0.22).
    short = Scripted(STOP)
    assert_hyps(run_beam(short, 5, beam_size=1, normalization="average"), [([], log(0.9))])
    assert short.calls == 1

    long = Scripted(STOP)
    assert_hyps(run_beam(long, 30, beam_size=1, normalization="average"), [([], log(0.9))])
    assert long.calls == 2


# ------------------------------------------------------------------ oracle: lengths


@pytest.mark.parametrize("beam_size", [1, 2, 3])
def test_beam_search_max_lengths_force_eos(beam_size):
    max_lengths = [0, 2, 4, 1]
    model = Scripted(*[ENDLESS] * len(max_lengths), fallback=ENDLESS_FALLBACK)
    result = run_beam(model, max_lengths, beam_size=beam_size, nbest=beam_size)
    for n, nbest in zip(max_lengths, result, strict=True):
        assert nbest, "every sentence gets a hypothesis"
        assert all(len(h.tokens) == n for h in nbest)  # each ended exactly at its maximum
        assert nbest[0].tokens == [A] * n
        assert nbest[0].score == pytest.approx(n * log(0.6) + log(0.001), abs=1e-5)
    assert model.calls == max(max_lengths) + 1


def test_greedy_search_max_lengths_force_eos():
    max_lengths = [0, 2, 4, 1]
    model = Scripted(*[ENDLESS] * len(max_lengths), fallback=ENDLESS_FALLBACK)
    result = run_greedy(model, max_lengths)
    for n, (best,) in zip(max_lengths, result, strict=True):
        assert best.tokens == [A] * n
        assert best.score == pytest.approx(n * log(0.6) + log(0.001), abs=1e-5)


@pytest.mark.parametrize("min_length", [1, 2])
def test_greedy_search_min_length(min_length):
    result = run_greedy(Scripted(MAIN, STOP), 5, min_length=min_length)
    main, stop = (nbest[0] for nbest in result)
    expected_main = {1: ([A], log(0.2)), 2: ([A, A], log(0.14 * 0.97))}[min_length]
    expected_stop = {1: ([A], log(0.1 * 0.99)), 2: ([A, A], log(0.1 * 0.01 * 0.97))}[min_length]
    assert (main.tokens, stop.tokens) == (expected_main[0], expected_stop[0])
    assert main.score == pytest.approx(expected_main[1], abs=1e-5)
    assert stop.score == pytest.approx(expected_stop[1], abs=1e-5)


@pytest.mark.parametrize("beam_size", [1, 3])
def test_beam_search_min_length(beam_size):
    # Without min_length, STOP's best is [] (0.9); with it, [A] (0.1 · 0.99) and longer.
    for min_length in (1, 2):
        result = run_beam(
            Scripted(STOP), 5, beam_size=beam_size, nbest=beam_size, min_length=min_length
        )
        assert all(len(h.tokens) >= min_length for h in result[0])
    assert_hyps(run_beam(Scripted(STOP), 5, beam_size=beam_size, min_length=1), [([A], log(0.099))])


def test_batched_oracle_equals_each_table_alone():
    tables, max_lengths = [MAIN, SHORT_OR_LONG, STOP, MAIN], [3, 3, 30, 1]
    kwargs = dict(beam_size=2, nbest=2, normalization="average")
    batched = run_beam(Scripted(*tables), max_lengths, **kwargs)
    for table, n, nbest in zip(tables, max_lengths, batched, strict=True):
        alone = run_beam(Scripted(table), n, **kwargs)
        assert [h.tokens for h in nbest] == [h.tokens for h in alone[0]]
        assert [h.score for h in nbest] == pytest.approx([h.score for h in alone[0]], abs=1e-6)
    assert [h.tokens for h in batched[0]] == [[B], [A, A]]  # ORACLE_CASES above


def test_nbest_larger_than_beam_size_is_refused():
    with pytest.raises(ValueError, match="nbest"):
        run_beam(Scripted(MAIN), 3, beam_size=2, nbest=3)


# ------------------------------------------------------------------ a small random model
# (tiny_model, source_batch, SRC_LENGTHS and MAX_LENGTHS: tests/helpers/search.py)


@pytest.mark.parametrize("attention", ["luong_general", "bahdanau", "none"])
def test_beam_size_one_equals_greedy(attention):
    model = tiny_model(attention)
    src, lengths = source_batch(SRC_LENGTHS)
    state = model.encode(src, lengths)
    for min_length in (0, 2):
        greedy = greedy_search(model.step, state, MAX_LENGTHS, min_length=min_length)
        beam = beam_search(model.step, state, MAX_LENGTHS, beam_size=1, min_length=min_length)
        assert [h[0].tokens for h in beam] == [h[0].tokens for h in greedy]
        assert [h[0].score for h in beam] == pytest.approx([h[0].score for h in greedy], abs=1e-5)
        assert any(h[0].tokens for h in greedy)  # not all empty: the comparison means something


@pytest.mark.parametrize(
    "normalization, alpha, cell",
    [("none", 0.0, "lstm"), ("average", 0.0, "gru"), ("gnmt", 0.6, "lstm")],
)
def test_batched_beam_search_equals_each_sentence_alone(normalization, alpha, cell):
    model = tiny_model("luong_general", cell)
    src, lengths = source_batch(SRC_LENGTHS)
    kwargs = dict(beam_size=3, nbest=3, normalization=normalization, length_penalty=alpha)
    batched = beam_search(model.step, model.encode(src, lengths), MAX_LENGTHS, **kwargs)
    for b, n in enumerate(SRC_LENGTHS):
        state = model.encode(src[b : b + 1, :n], lengths[b : b + 1])
        alone = beam_search(model.step, state, MAX_LENGTHS[b : b + 1], **kwargs)
        assert [h.tokens for h in batched[b]] == [h.tokens for h in alone[0]]
        scores = [h.score for h in alone[0]]
        assert [h.score for h in batched[b]] == pytest.approx(scores, abs=1e-5)
        assert all(len(h.tokens) <= MAX_LENGTHS[b] for h in batched[b])


@pytest.mark.parametrize("beam_size", [1, 3])
@pytest.mark.parametrize("attention", ["luong_general", "bahdanau"])
def test_returned_attention_has_a_row_per_output_token(attention, beam_size):
    model = tiny_model(attention)
    src, lengths = source_batch(SRC_LENGTHS)
    state = model.encode(src, lengths)
    if beam_size == 1:
        result = greedy_search(model.step, state, MAX_LENGTHS, return_attention=True)
    else:
        result = beam_search(
            model.step, state, MAX_LENGTHS, beam_size, nbest=2, return_attention=True
        )
    for b, nbest in enumerate(result):
        for h in nbest:
            assert h.attention.shape == (len(h.tokens) + 1, src.size(1))
            torch.testing.assert_close(h.attention.sum(-1), torch.ones(len(h.tokens) + 1))
            assert not h.attention[:, SRC_LENGTHS[b] :].any()  # no weight on padding


# ------------------------------------------------------------------ the search protocols


def check_protocols(step: StepFn[StateT], state: StateT, rows: int) -> None:
    """A step keeps its state's type and the state reorders: all that search relies on."""
    assert isinstance(state, SearchState) and not isinstance(object(), SearchState)
    _, stepped, _ = step(torch.full((rows,), BOS), state)
    repeated = stepped.reorder(torch.arange(rows).repeat_interleave(2))
    assert type(stepped) is type(repeated) is type(state)
    log_probs, _, _ = step(torch.full((2 * rows,), BOS), repeated)
    assert log_probs.size(0) == 2 * rows


def test_scripted_model_satisfies_the_search_protocols():
    model = Scripted(MAIN, STOP)
    check_protocols(model, model.start(), rows=2)


@pytest.mark.parametrize("attention", ["luong_general", "bahdanau", "none"])
def test_decoder_state_and_step_satisfy_the_search_protocols(attention):
    model = tiny_model(attention)
    state = model.encode(*source_batch(SRC_LENGTHS))
    assert isinstance(state, DecoderState)
    check_protocols(model.step, state, rows=len(SRC_LENGTHS))
