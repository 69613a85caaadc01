"""The runtime translates as PyTorch does: on a tiny random model of every architecture,
its fp32 greedy and beam-5 outputs (n-best included) equal nmt.Translator's line for
line, with scores within 1e-4; attention weights too."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow  # exports models: seconds each

pytest.importorskip("onnxruntime")

from helpers.exporting import ARCHITECTURES, exported, random_model_dir, sources  # noqa: E402

from nmt.decode.translate import Translator  # noqa: E402
from nmt.export.write import export_model  # noqa: E402
from nmt_runtime import Translator as RuntimeTranslator  # noqa: E402

TOLERANCE = 1e-4
TIE = 4e-6  # a float32 ulp at |score| 32: the same sum, ordered otherwise


def assert_same(want, got, attention=False):
    """Two Translators' search results: equal texts and pieces, scores within TOLERANCE.

    The one allowed difference is an exact tie: two different hypotheses of the very same
    float32 score, which PyTorch's topk may order either way (a barely trained model that
    writes "▁" over and over puts "i" at any position for the same score)."""
    assert len(want) == len(got)
    for line, (w, g) in enumerate(zip(want, got, strict=True)):
        assert len(w) == len(g), f"line {line}"
        for rank, (a, b) in enumerate(zip(w, g, strict=True)):
            assert abs(a.score - b.score) <= TOLERANCE, f"line {line}: {a.score} vs {b.score}"
            if a.target_pieces != b.target_pieces:
                assert abs(a.score - b.score) <= TIE, f"line {line}, rank {rank}: {a} vs {b}"
                continue
            assert (a.text, a.source_pieces) == (b.text, b.source_pieces)
            if attention:
                assert len(a.attention) == len(b.attention)
                for x, y in zip(a.attention, b.attention, strict=True):
                    assert max(abs(p - q) for p, q in zip(x, y, strict=True)) <= TOLERANCE


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_greedy_and_beam_equal_pytorch_on_every_architecture(name):
    run, out = exported(name)
    torch_side = Translator.load(run, "cpu")
    runtime = RuntimeTranslator.load(out, threads=1)
    lines = sources()
    attends = "attention=none" not in " ".join(ARCHITECTURES[name])
    want = torch_side.search(lines, beam_size=1, attention=attends)
    assert_same(want, runtime.search(lines, beam_size=1, attention=attends), attends)
    want = torch_side.search(lines, nbest=5, beam_size=5, attention=attends)
    got = runtime.search(lines, nbest=5, beam_size=5, attention=attends)
    assert_same(want, got, attends)
    assert all(len(found) == 5 for line, found in zip(lines, got, strict=True) if line)


@pytest.mark.parametrize(
    "options",
    [
        {"beam_size": 3, "length_normalization": "none"},
        {"beam_size": 4, "length_normalization": "average", "min_length": 4},
        {"beam_size": 5, "length_normalization": "gnmt", "length_penalty": 1.0},
        {"beam_size": 2, "max_length_ratio": 0.5, "max_length_offset": 1},
        {"beam_size": 5, "batch_tokens": 7},  # one sentence per batch
    ],
)
def test_decode_settings_give_the_same_output(options):
    run, out = exported("gru_bahdanau")
    lines = sources()
    want = Translator.load(run, "cpu").search(lines, nbest=2, **options)
    assert_same(want, RuntimeTranslator.load(out).search(lines, nbest=2, **options))


def test_an_exported_ensemble_equals_the_pytorch_ensemble(tmp_path):
    runs = [
        random_model_dir(tmp_path / "a", seed=1),
        random_model_dir(tmp_path / "b", "model.cell=gru", "model.attention=none", seed=2),
    ]
    export_model(runs, tmp_path / "x")
    lines = sources(8)
    torch_side = Translator.load(runs, "cpu")
    runtime = RuntimeTranslator.load(tmp_path / "x")
    for beam in (1, 5):
        assert_same(
            torch_side.search(lines, nbest=beam, beam_size=beam),
            runtime.search(lines, nbest=beam, beam_size=beam),
        )


def test_a_trained_model_translates_the_same(model_dir, tmp_path):
    """The quickstart recipe shrunk and trained a few steps: it writes </s> on its own, at
    lengths of its own, so the beam's finishing and early stop run as in real use."""
    export_model([model_dir], tmp_path / "x")
    lines = sources(40)
    torch_side = Translator.load(model_dir, "cpu")
    runtime = RuntimeTranslator.load(tmp_path / "x")
    for beam in (1, 5):
        want = torch_side.search(lines, nbest=beam, beam_size=beam)
        assert_same(want, runtime.search(lines, nbest=beam, beam_size=beam))


def test_a_step_graph_without_top_k_translates_the_same():
    """Exports from before top_k (log_probs only) still work, ranked in numpy, and both
    paths write the same; the top_k path is the one a new export takes."""
    import dataclasses

    _, out = exported("lstm_luong_general")
    lines = sources()
    ranked = RuntimeTranslator.load(out, threads=1)
    assert all(m.graphs.top_k for m in ranked.models)
    old = RuntimeTranslator.load(out, threads=1)
    for model in old.models:
        model.graphs = dataclasses.replace(model.graphs, top_k=False)
    for options in ({"beam_size": 5, "nbest": 3}, {"beam_size": 4, "min_length": 4}):
        want = old.search(lines, **options)
        got = ranked.search(lines, **options)
        assert [[h.text for h in hs] for hs in want] == [[h.text for h in hs] for hs in got]
        assert [[h.score for h in hs] for hs in want] == [[h.score for h in hs] for hs in got]
