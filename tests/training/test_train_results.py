"""results.json scores every line of the test set, so its BLEU compares across systems.

Checked here: a test set with an empty source line and an empty reference line is scored
on all its lines, in order (test.hyp has one line per test line, an empty source gives an
empty translation), and the score equals sacreBLEU's on test.hyp against the whole
reference file; with decode.max_input_length the cut sources are counted in results.json.
"""

from __future__ import annotations

import json

from nmt.data.toy import numbers
from nmt.metrics import score
from nmt.training.setup import train


def test_every_test_line_is_scored(tmp_path, make_recipe):
    pairs = numbers("test", 6)
    rows = [f"{s}\t{t}" for s, t in pairs]
    rows[2] = f"\t{pairs[2][1]}"  # no source: the translation must be empty
    rows[4] = f"{pairs[4][0]}\t"  # no reference: scored as empty
    (tmp_path / "test.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "run"
    r = train(make_recipe(out, f"data.test={{tsv: {tmp_path / 'test.tsv'}}}"), device="cpu")
    assert r["test_sentences"] == 6
    hyps = (out / "test.hyp").read_text(encoding="utf-8").split("\n")[:-1]
    assert len(hyps) == 6 and hyps[2] == ""
    refs = [t if i != 4 else "" for i, (_, t) in enumerate(pairs)]
    assert r["bleu"] == score(hyps, refs, ["bleu"], "de")["bleu"]["score"]
    assert json.loads((out / "results.json").read_text())["test_sentences"] == 6


def test_a_decode_input_cap_is_counted_in_results(tmp_path, make_recipe):
    out = tmp_path / "run"
    r = train(make_recipe(out, "decode.max_input_length=2", "train.max_steps=2"), device="cpu")
    assert r["test_truncated"] > 0  # toy test sources are longer than two pieces
    uncapped = train(make_recipe(tmp_path / "whole", "train.max_steps=2"), device="cpu")
    assert uncapped["test_truncated"] == 0
