"""results.json scores every line of the test set, so its BLEU compares across systems.

Checked here: a test set with an empty source line and an empty reference line is scored
on all its lines, in order (test.hyp has one line per test line, an empty source gives an
empty translation), and the score equals sacreBLEU's on test.hyp against the whole
reference file; with decode.max_input_length the cut sources are counted in results.json.
`train` returns a `TrainResults` (also `nmt.TrainResults`) whose JSON is results.json,
with the keys, in the order, results.json always had.
"""

from __future__ import annotations

import json

import nmt
from nmt.data.toy import numbers
from nmt.metrics import score
from nmt.training.results import TrainResults
from nmt.training.setup import train

# results.json's keys before TrainResults: the test scores first, then the summary
RESULTS_KEYS = [
    "bleu", "chrf", "signature", "beam_size", "decode", "test_sentences", "test_truncated",
    "test_translate_seconds", "stopped_by", "steps", "epochs", "limits", "train_seconds",
    "train_tokens_per_second", "best_step", "valid_bleu", "skipped_updates", "device",
]  # fmt: skip


def test_every_test_line_is_scored(tmp_path, make_recipe):
    pairs = numbers("test", 6)
    rows = [f"{s}\t{t}" for s, t in pairs]
    rows[2] = f"\t{pairs[2][1]}"  # no source: the translation must be empty
    rows[4] = f"{pairs[4][0]}\t"  # no reference: scored as empty
    (tmp_path / "test.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "run"
    r = train(make_recipe(out, f"data.test={{tsv: {tmp_path / 'test.tsv'}}}"), device="cpu")
    assert r.test is not None and r.test.sentences == 6
    hyps = (out / "test.hyp").read_text(encoding="utf-8").split("\n")[:-1]
    assert len(hyps) == 6 and hyps[2] == ""
    refs = [t if i != 4 else "" for i, (_, t) in enumerate(pairs)]
    assert r.test.bleu == score(hyps, refs, ["bleu"], "de")["bleu"]["score"]
    assert json.loads((out / "results.json").read_text())["test_sentences"] == 6


def test_a_decode_input_cap_is_counted_in_results(tmp_path, make_recipe):
    out = tmp_path / "run"
    r = train(make_recipe(out, "decode.max_input_length=2", "train.max_steps=2"), device="cpu")
    assert r.test is not None
    assert r.test.truncated > 0  # toy test sources are longer than two pieces
    uncapped = train(make_recipe(tmp_path / "whole", "train.max_steps=2"), device="cpu")
    assert uncapped.test is not None and uncapped.test.truncated == 0


def test_train_returns_the_typed_results_that_results_json_holds(tmp_path, make_recipe):
    out = tmp_path / "run"
    r = train(make_recipe(out, "train.max_steps=2"), device="cpu")
    assert isinstance(r, TrainResults) and nmt.TrainResults is TrainResults
    saved = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert saved == r.to_json() and list(saved) == RESULTS_KEYS
    assert saved["limits"]["max_steps"] == 2 and set(saved["limits"]) == {
        "max_steps", "max_epochs", "max_minutes", "patience"
    }  # fmt: skip
    untested = TrainResults(**{**r.__dict__, "test": None}).to_json()
    assert list(untested) == RESULTS_KEYS[8:]  # without a test split: the summary alone
