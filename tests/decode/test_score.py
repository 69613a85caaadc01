"""Scoring given translations (`Translator.score`, nmt.decode.scoring.sentence_log_probs,
`nmt evaluate score`): teacher-forced log p(target | source), </s> counted.

Checked on the shared tiny model of conftest.py: the score of the model's own greedy
output (ids: the tiny model's text rarely re-encodes to the same pieces) equals the score
greedy search gave it (length normalization none); a batch scores as each pair alone;
the mean is the sum over the token count; an ensemble of a model with itself scores as the
model; mismatched counts and empty lines are one-line UserErrors; the CLI prints one
score per line (sum, --normalize mean, --json records) and names the file of an empty line.
"""

from __future__ import annotations

import json

import pytest
from helpers.cli import assert_user_error, write_lines

from nmt.cli.main import app
from nmt.data.toy import numbers
from nmt.decode.scoring import sentence_log_probs
from nmt.decode.translate import Translator, decode_ids
from nmt.errors import UserError

PAIRS = numbers("test", 8)
SOURCES = [src for src, _ in PAIRS]
TARGETS = [tgt for _, tgt in PAIRS]


@pytest.fixture(scope="module")
def translator(model_dir) -> Translator:
    return Translator.load(model_dir, "cpu")


def test_own_greedy_output_scores_as_greedy_search_scored_it(translator):
    settings = translator.decode_config(beam_size=1, length_normalization="none")
    src_ids = translator.encode(SOURCES)
    found = decode_ids(translator.model, src_ids, settings, translator.device)
    outputs = [hyps[0].tokens for hyps in found]
    scored = sentence_log_probs(translator.model, src_ids, outputs, 8000, translator.device)
    for hyps, out, (total, tokens) in zip(found, outputs, scored, strict=True):
        assert tokens == len(out) + 1
        assert total == pytest.approx(hyps[0].score, abs=1e-4)

    # Translator.score is these sums for text: the references, encoded as it encodes them
    refs = translator.tgt_tokenizer.encode(TARGETS)
    by_ids = sentence_log_probs(translator.model, src_ids, refs, 8000, translator.device)
    assert translator.score(SOURCES, TARGETS) == pytest.approx([t for t, _ in by_ids], abs=1e-5)


def test_a_batch_scores_as_each_pair_alone(translator):
    together = translator.score(SOURCES, TARGETS)
    alone = [translator.score([s], [t])[0] for s, t in zip(SOURCES, TARGETS, strict=True)]
    assert together == pytest.approx(alone, abs=1e-4)
    assert all(s < 0 for s in together)
    assert len(set(together)) > 1  # not one number for all


def test_normalize_gives_the_mean_per_token(translator):
    sums = translator.score(SOURCES, TARGETS)
    means = translator.score(SOURCES, TARGETS, normalize=True)
    counts = [len(ids) + 1 for ids in translator.tgt_tokenizer.encode(TARGETS)]
    assert means == pytest.approx([s / c for s, c in zip(sums, counts, strict=True)])


def test_an_ensemble_of_a_model_with_itself_scores_as_the_model(translator, model_dir):
    pair = Translator.load([model_dir, model_dir], "cpu")
    assert pair.size == 2
    assert pair.score(SOURCES, TARGETS) == pytest.approx(
        translator.score(SOURCES, TARGETS), abs=1e-4
    )


@pytest.mark.parametrize(
    ("sources", "targets", "message"),
    [
        (SOURCES[:2], TARGETS[:3], "2 source lines but 3 target lines"),
        ([SOURCES[0], "  "], TARGETS[:2], "source line 2 is empty"),
        (SOURCES[:3], [TARGETS[0], TARGETS[1], ""], "target line 3 is empty"),
    ],
)
def test_pairs_that_cannot_be_scored_are_refused(translator, sources, targets, message):
    with pytest.raises(UserError, match=message):
        translator.score(sources, targets)


def test_cli_prints_one_score_per_line(runner, model_dir, translator, tmp_path):
    src = write_lines(tmp_path / "s.en", SOURCES)
    tgt = write_lines(tmp_path / "t.de", TARGETS)
    args = ["evaluate", "score", "--model", str(model_dir), "--source", str(src)]
    args += ["--target", str(tgt), "--device", "cpu"]
    sums = runner.invoke(app, args)
    assert sums.exit_code == 0, sums.output
    assert [float(x) for x in sums.stdout.split("\n")[:-1]] == pytest.approx(
        translator.score(SOURCES, TARGETS), abs=1e-4
    )
    means = runner.invoke(app, [*args, "--normalize"])
    assert [float(x) for x in means.stdout.split("\n")[:-1]] == pytest.approx(
        translator.score(SOURCES, TARGETS, normalize=True), abs=1e-4
    )
    records = runner.invoke(app, [*args, "--json"])
    rows = [json.loads(line) for line in records.stdout.splitlines()]
    assert len(rows) == len(SOURCES)
    for row in rows:
        assert row["mean"] == pytest.approx(row["sum"] / row["tokens"], abs=1e-3)


def test_cli_scores_an_ensemble(runner, model_dir, translator, tmp_path):
    src = write_lines(tmp_path / "s.en", SOURCES)
    tgt = write_lines(tmp_path / "t.de", TARGETS)
    result = runner.invoke(
        app,
        ["evaluate", "score", "--model", str(model_dir), "--model", str(model_dir)]
        + ["--source", str(src), "--target", str(tgt), "--device", "cpu"],
    )
    assert result.exit_code == 0, result.output
    assert [float(x) for x in result.stdout.split("\n")[:-1]] == pytest.approx(
        translator.score(SOURCES, TARGETS), abs=1e-3
    )


@pytest.mark.parametrize(
    ("targets", "fragments"),
    [
        (TARGETS[:-1], ["has 8 lines but", "has 7", "line-aligned"]),
        ([*TARGETS[:-1], ""], ["--target", "t.de line 8 is empty"]),
    ],
)
def test_cli_refuses_files_that_cannot_be_scored(runner, model_dir, tmp_path, targets, fragments):
    src = write_lines(tmp_path / "s.en", SOURCES)
    tgt = write_lines(tmp_path / "t.de", targets)
    result = runner.invoke(
        app,
        ["evaluate", "score", "--model", str(model_dir), "--source", str(src)]
        + ["--target", str(tgt), "--device", "cpu"],
    )
    assert_user_error(result, *fragments)
