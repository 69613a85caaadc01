"""benchmarks/story.py: the whole grid on a tiny synthetic corpus, one epoch per variant.

What is checked is the report's plumbing, not its numbers: every variant is trained and
in the table, every image the page shows exists, the length buckets hold every test
sentence, and the verdicts follow the bootstrap results they are computed from.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest
from helpers.checkout import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
from story import VARIANTS, verdict  # noqa: E402

WORDS = [f"w{i}" for i in range(30)]


def write_corpus(folder, name: str, lines: int, rng: random.Random) -> str:
    """Source: random words; target: each word mapped (wK → vK), so attention can align."""
    src = [" ".join(rng.choices(WORDS, k=rng.randint(3, 16))) for _ in range(lines)]
    (folder / f"{name}.src").write_text("".join(f"{s}\n" for s in src))
    (folder / f"{name}.tgt").write_text("".join(f"{s.replace('w', 'v')}\n" for s in src))
    return str(folder / f"{name}.{{lang}}")


@pytest.fixture(scope="module")
def story(tmp_path_factory, root):
    folder = tmp_path_factory.mktemp("story")
    rng = random.Random(0)
    data = {split: write_corpus(folder, split, n, rng) for split, n in
            [("train", 400), ("valid", 80), ("test", 240)]}  # fmt: skip
    overrides = [
        "data.source_lang=src", "data.target_lang=tgt", f"data.train={data['train']}",
        f"data.valid={data['valid']}", f"data.test={data['test']}", "tokenizer.vocab_size=80",
        "model.embedding_size=16", "model.hidden_size=24", "train.batch_tokens=800",
        "train.precision=fp32", "decode.beam_size=2",
    ]  # fmt: skip
    out, runs = folder / "docs" / "story", folder / "runs"
    command = [sys.executable, str(root / "benchmarks" / "story.py"), "--out", str(out),
               "--runs", str(runs), "--epochs", "1", "--flow-length", "6"]  # fmt: skip
    for item in overrides:
        command += ["--set", item]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return out, command


@pytest.mark.slow
def test_every_variant_is_trained_and_in_the_table(story):
    out, _ = story
    page = out.with_suffix(".md").read_text()
    for v in VARIANTS:
        assert f"| `{v.name}` | {v.label} |" in page
    report = json.loads((out / "story.json").read_text())
    assert set(report["runs"]) == {v.name for v in VARIANTS}
    assert all(r["epochs"] == 1 and r["valid"]["perplexity"] > 1 for r in report["runs"].values())


@pytest.mark.slow
def test_every_image_on_the_page_exists(story):
    out, _ = story
    page = out.with_suffix(".md").read_text()
    shown = [part.split(")", 1)[0] for part in page.split(f"]({out.name}/")[1:]]
    assert "bleu_by_length.png" in shown and "gradient_flow_trained.png" in shown
    assert sum(name.startswith("attention_") for name in shown) == 6  # 2 models × 3 lines
    for name in shown:
        assert (out / name).is_file(), name


@pytest.mark.slow
def test_the_length_buckets_hold_every_test_sentence(story):
    out, _ = story
    report = json.loads((out / "story.json").read_text())
    buckets = report["by_length"]["buckets"]
    assert sum(b["sentences"] for b in buckets) == report["test_sentences"] == 240
    assert set(buckets[0]["scores"]) == {"none", "none+reversed", "bahdanau", "luong", "lstm"}


@pytest.mark.slow
def test_gradient_flow_covers_the_three_cells(story):
    out, _ = story
    flow = json.loads((out / "story.json").read_text())["gradient_flow"]
    for kind in ("trained", "fresh"):
        assert set(flow[kind]) == {"rnn", "gru", "lstm"}
        for ratios in flow[kind].values():
            assert len(ratios) == 6 and ratios[-1] == pytest.approx(1.0)


@pytest.mark.slow
def test_each_verdict_follows_its_bootstrap_result(story):
    out, _ = story
    report = json.loads((out / "story.json").read_text())
    page = out.with_suffix(".md").read_text()
    for pair, c in report["comparisons"].items():
        assert c["verdict"] == verdict(c), pair
        system, baseline = pair.split(" vs ")
        assert f"`{system}` {c['score']:.2f} vs `{baseline}` {c['baseline']:.2f}" in page


@pytest.mark.slow
def test_reuse_measures_without_training_again(story):
    out, command = story
    before = (out / "story.json").stat().st_mtime_ns
    done = subprocess.run([*command, "--reuse"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "training" not in done.stdout and done.stdout.count("reusing") == len(VARIANTS)
    assert (out / "story.json").stat().st_mtime_ns > before
    assert "measured models trained before" in out.with_suffix(".md").read_text()


@pytest.mark.parametrize(
    ("score", "baseline", "p", "expected"),
    [
        (30.0, 25.0, 0.001, "agrees"),
        (30.0, 29.8, 0.3, "same direction, within noise"),
        (25.0, 30.0, 0.001, "disagrees"),
        (29.8, 30.0, 0.4, "other direction, within noise"),
        (30.0, 30.0, 1.0, "no difference"),
    ],
)
def test_verdicts(score, baseline, p, expected):
    assert verdict({"score": score, "baseline": baseline, "p_value": p}) == expected
