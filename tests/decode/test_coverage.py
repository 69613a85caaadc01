"""The coverage penalty (decode.coverage_penalty, Wu et al. 2016's β): finished hypotheses
rank by their normalized score plus β · Σ_i log min(Σ_j p_ij, 1) over the source.

Checked: the formula on a hand-made attention matrix, padding columns left out; on a
scripted step with attention, β > 0 changes the winner to the hypothesis that covers the
source, with the score worked out on paper (beam and greedy); β = 0 gives exactly the
search without it (the shared model, greedy and beam, scores and attention); the
attention-less refusals (search, Translator, recipe rule) and the flag's range check; the
summary line names it; nmt evaluate bleu takes it and reports it; the JSON API takes it.
"""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch
from helpers.cli import assert_user_error, translate, write_lines

from nmt.data.toy import numbers
from nmt.decode.search import beam_search, coverage_penalty, greedy_search
from nmt.decode.translate import Translator
from nmt.errors import UserError
from nmt.recipe.load import load_recipe
from nmt.vocab import BOS, EOS

LINES = [src for src, _ in numbers("test", 6)]
A, B = 4, 5
VOCAB = 6


def test_the_formula_on_a_hand_made_attention_matrix():
    # two hypotheses' attention, (target steps, source): rows sum to 1
    first = torch.tensor([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]])
    second = torch.tensor([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]])  # its source has 2 tokens
    coverage = torch.stack([first.sum(0), second.sum(0)])  # (2, 3): [1.4, .6, 1.0], [1, 1, 0]
    got = coverage_penalty(coverage, torch.tensor([3, 2]), 0.4)
    want_first = 0.4 * (math.log(1.0) + math.log(0.6) + math.log(1.0))
    assert got.tolist() == pytest.approx([want_first, 0.0], abs=1e-6)  # padding left out
    assert coverage_penalty(coverage, torch.tensor([3, 2]), 0.0).tolist() == [0.0, 0.0]
    # a source token with no attention at all: very low, not -inf
    assert math.isfinite(float(coverage_penalty(torch.tensor([[2.0, 0.0]]), torch.tensor([2]), 1)))


class Attending:
    """A scripted step over one sentence of two source tokens: the next-token probabilities
    and the attention depend on the previous token (see ATTENTION and PROBS)."""

    ATTENTION = {BOS: [0.9, 0.1], A: [0.1, 0.9], B: [0.5, 0.5]}
    PROBS = {BOS: {EOS: 0.5, A: 0.4, B: 0.1}, A: {EOS: 0.9, A: 0.05, B: 0.05}}
    FALLBACK = {EOS: 0.9, A: 0.05, B: 0.05}

    def __call__(self, prev: torch.Tensor, state):
        probs = torch.zeros(len(prev), VOCAB, dtype=torch.float64)
        attention = torch.zeros(len(prev), 2)
        for i, token in enumerate(prev.tolist()):
            for t, p in self.PROBS.get(token, self.FALLBACK).items():
                probs[i, t] = p
            attention[i] = torch.tensor(self.ATTENTION.get(token, [0.5, 0.5]))
        return probs.log().float(), state, attention


@dataclasses.dataclass
class Rows:
    n: int

    def reorder(self, index: torch.Tensor) -> Rows:
        return Rows(len(index))


def search(beam: int, beta: float, **kwargs):
    args = Attending(), Rows(1), torch.tensor([4])
    options = {"normalization": "none", "min_length": 0, "coverage_beta": beta, **kwargs}
    options["src_lengths"] = torch.tensor([2])
    if beam == 1:
        return greedy_search(*args, **options)[0]
    return beam_search(*args, beam, nbest=2, **options)[0]


def test_a_coverage_penalty_prefers_the_hypothesis_that_covers_the_source():
    # [] = 0.5 but attended [0.9, 0.1]; [A] = 0.4 · 0.9 and attended [1.0, 1.0]
    empty_cp = 0.5 * (math.log(0.9) + math.log(0.1))
    without = search(3, 0.0)
    assert [h.tokens for h in without] == [[], [A]]
    assert [h.score for h in without] == pytest.approx([math.log(0.5), math.log(0.36)])
    penalized = search(3, 0.5)
    assert [h.tokens for h in penalized] == [[A], []]
    assert [h.score for h in penalized] == pytest.approx(
        [math.log(0.36), math.log(0.5) + empty_cp], abs=1e-5
    )
    (greedy,) = search(1, 0.5)  # greedy chooses as before; its score has the term
    assert greedy.tokens == [] and greedy.score == pytest.approx(math.log(0.5) + empty_cp)


def test_a_step_without_attention_is_refused_by_search():
    def no_attention(prev, state):
        log_probs, state, _ = Attending()(prev, state)
        return log_probs, state, None

    for run in (greedy_search, lambda *a, **k: beam_search(*a, 2, **k)):
        with pytest.raises(ValueError, match="a coverage penalty needs attention"):
            run(no_attention, Rows(1), torch.tensor([3]), coverage_beta=0.2,
                src_lengths=torch.tensor([2]))  # fmt: skip


@pytest.fixture(scope="module")
def translator(model_dir) -> Translator:
    return Translator.load(model_dir, "cpu")


@pytest.mark.parametrize("beam_size", [1, 4])
def test_beta_zero_is_the_search_without_it(translator, beam_size):
    plain = translator.search(LINES, nbest=1, attention=True, beam_size=beam_size)
    zero = translator.search(
        LINES, nbest=1, attention=True, beam_size=beam_size, coverage_penalty=0.0
    )
    assert plain == zero  # texts, scores and attention, exactly
    some = translator.search(LINES, beam_size=beam_size, coverage_penalty=1.0)
    assert [f[0].score for f in some] != [f[0].score for f in plain]  # it does take effect
    assert all(f[0].score <= p[0].score + 1e-6 for f, p in zip(some, plain, strict=True))


def test_an_attention_less_model_is_refused_in_one_line(translator, quickstart, tmp_path):
    class NoAttention:  # what attends() sees of an attention-less model
        decoder = None

    bare = Translator.__new__(Translator)
    bare.__dict__.update(translator.__dict__, model=NoAttention())
    with pytest.raises(UserError, match=r"--coverage-penalty 0.2 .* has none .*give 0"):
        bare.search_settings(coverage_penalty=0.2)
    bare.search_settings(coverage_penalty=0.0)  # none asked: fine

    overrides = ["model.attention=none", "decode.coverage_penalty=0.2"]
    with pytest.raises(UserError, match="decode.coverage_penalty .* model.attention none"):
        load_recipe(quickstart, overrides)


def test_the_flag_is_checked_and_shown(runner, model_dir, tmp_path):
    src = write_lines(tmp_path / "in.txt", LINES[:2])
    result = translate(runner, model_dir, str(src), "--coverage-penalty", "-1")
    assert_user_error(result, "--coverage-penalty -1.0", "give 0 to 10")
    result = translate(runner, model_dir, str(src), "--coverage-penalty", "0.3")
    assert result.exit_code == 0, result.output
    assert "coverage penalty 0.3" in result.stderr
    assert len(result.stdout.splitlines()) == 2


def test_the_json_api_takes_it(model_dir, translator):
    pytest.importorskip("fastapi")
    from helpers.serving import post, running

    from nmt.serve.engine import TorchEngine
    from nmt_runtime.serve.app import create_app
    from nmt_runtime.serve.limits import Limits

    limits = Limits(max_chars=200, max_tokens=30, max_texts=8, max_body_bytes=5000)
    with running(create_app([TorchEngine.load(model_dir, device="cpu")], limits)) as address:
        body = {"text": LINES, "beam_size": 3, "coverage_penalty": 1.0}
        status, data = post(address, "/api/translate", body)
        assert status == 200
        expected = translator.search(LINES, beam_size=3, coverage_penalty=1.0)
        assert [t["score"] for t in data["translations"]] == pytest.approx(
            [f[0].score for f in expected], abs=1e-4
        )
        status, data = post(address, "/api/translate", {"text": LINES, "coverage_penalty": -1})
        assert status == 422 or status == 400, data


def test_evaluate_bleu_takes_it_and_reports_it(runner, model_dir, tmp_path):
    from nmt.cli.main import app

    pairs = numbers("test", 4)
    src = write_lines(tmp_path / "s.en", [s for s, _ in pairs])
    ref = write_lines(tmp_path / "r.de", [t for _, t in pairs])
    args = ["evaluate", "bleu", "--model", str(model_dir), "--source", str(src)]
    args += ["--reference", str(ref), "--device", "cpu", "--json"]
    with_it = runner.invoke(app, [*args, "--coverage-penalty", "0.3"])
    assert with_it.exit_code == 0, with_it.output
    assert json.loads(with_it.stdout)["decode"]["coverage_penalty"] == 0.3
    without = runner.invoke(app, args)
    assert "coverage_penalty" not in json.loads(without.stdout)["decode"]  # 0: not shown
