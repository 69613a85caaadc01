"""The paired bootstrap test of `nmt evaluate bleu HYP --reference R --compare OTHER`.

Checked here: two identical outputs get p = 1 (every resampled difference is a tie, and a
tie is not a lead); one word changed in one line of 100 is not significant at 0.05; a
system that drops half its words in every other line is; the p-value is never 0; where no
resample ties, the p-value is the one sacreBLEU's own paired bootstrap gives on the same
seeded resamples, so the numbers still compare with other toolkits'.
"""

from __future__ import annotations

import json

import pytest
from sacrebleu.metrics import BLEU
from sacrebleu.significance import PairedTest

from nmt.cli.main import app
from nmt.metrics import compare

ANIMALS = ["cat", "dog", "horse", "bird", "fish", "cow", "sheep", "goat", "mouse", "fox"]
COLOURS = ["red", "green", "blue", "black", "white", "small", "big", "old", "young", "tall"]
# 100 distinct references; the baseline gets a third of them slightly wrong
REFERENCES = [
    f"the {COLOURS[i % 10]} {ANIMALS[i * 3 % 10]} sees {i} {COLOURS[i * 7 % 10]} "
    f"{ANIMALS[i // 10]}s on the hill"
    for i in range(100)
]
BASELINE = [r.replace("the ", "a ", 1) if i % 3 == 0 else r for i, r in enumerate(REFERENCES)]
METRICS = ["bleu", "chrf", "ter"]


def halved(line: str) -> str:
    words = line.split()
    return " ".join(words[: len(words) // 2])


def one_word_changed(line_number: int) -> list[str]:
    """The baseline with its fourth word replaced in one line."""
    lines = list(BASELINE)
    words = lines[line_number].split()
    words[3] = "zebra"
    lines[line_number] = " ".join(words)
    return lines


def test_identical_outputs_are_not_significant():
    found = compare(list(BASELINE), BASELINE, REFERENCES, METRICS)
    for name in METRICS:
        assert found[name]["score"] == found[name]["baseline"]
        assert found[name]["p_value"] == 1.0, name


@pytest.mark.parametrize("line_number", [0, 50, 99])
def test_one_word_in_one_line_is_not_significant(line_number):
    found = compare(one_word_changed(line_number), BASELINE, REFERENCES, METRICS)
    for name in METRICS:
        assert found[name]["score"] != found[name]["baseline"], name
        assert found[name]["p_value"] >= 0.05, name


def test_clearly_different_systems_are_significant_and_p_is_never_0():
    worse = [halved(r) if i % 2 == 0 else r for i, r in enumerate(BASELINE)]
    samples = 1000
    found = compare(worse, BASELINE, REFERENCES, METRICS, samples=samples)
    for name in METRICS:
        assert found[name]["p_value"] < 0.05, name
        assert found[name]["p_value"] >= 1 / (samples + 1), name
    assert found["bleu"]["score"] < found["bleu"]["baseline"]


def test_p_value_is_sacrebleus_where_no_resample_ties():
    system = [halved(r) if i % 15 == 0 else r for i, r in enumerate(BASELINE)]
    test = PairedTest(
        [("baseline", BASELINE), ("system", system)],
        {"bleu": BLEU()},
        [REFERENCES],
        test_type="bs",
        n_samples=1000,
    )
    signatures, results = test()
    found = compare(system, BASELINE, REFERENCES, ["bleu"])["bleu"]
    assert 0.001 < found["p_value"] < 0.5  # a case that the count decides, not the +1
    assert found["p_value"] == results["BLEU"][1].p_value
    assert found["signature"] == str(signatures["BLEU"])


def test_cli_compare_of_a_copy_gives_p_1(runner, tmp_path):
    def write(name: str, lines: list[str]):
        path = tmp_path / name
        path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        return str(path)

    hyp, copy = write("hyp.txt", BASELINE), write("copy.txt", BASELINE)
    ref = write("ref.txt", REFERENCES)
    args = ["evaluate", "bleu", hyp, "--reference", ref, "--compare", copy, "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {report["compare"][name]["p_value"] for name in METRICS} == {1.0}
    text = runner.invoke(app, args[:-1])
    assert text.exit_code == 0, text.output
    assert "p = 1.0000" in text.stdout
