"""Quality by source length: buckets that add up, scores that are the subsets' scores;
the command's --plot is an image file (a name matplotlib cannot draw is one error line)."""

from __future__ import annotations

import json
import random

import pytest

from nmt.cli.main import app
from nmt.errors import UserError
from nmt.metrics import score
from nmt.report.by_length import length_buckets, score_by_length


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(("count", "min_size"), [(6, 30), (4, 1), (10, 50), (3, 500)])
def test_buckets_cover_every_length_and_hold_enough(seed, count, min_size):
    rng = random.Random(seed)
    lengths = [rng.randint(1, 40) for _ in range(rng.randint(1, 400))]
    ranges = length_buckets(lengths, count, min_size)
    sizes = [sum(1 for x in lengths if x in r) for r in ranges]
    assert sum(sizes) == len(lengths)  # every sentence in exactly one bucket
    assert ranges[0].start == min(lengths) and ranges[-1].stop == max(lengths) + 1
    assert all(a.stop == b.start for a, b in zip(ranges, ranges[1:], strict=False))
    assert len(ranges) <= count
    if len(lengths) >= min_size:
        assert all(size >= min_size for size in sizes)
    else:
        assert len(ranges) == 1


def test_each_bucket_scores_its_own_sentences():
    sources = [" ".join(["w"] * n) for n in (2, 2, 3, 5, 5, 8, 9, 9, 12, 20)]
    refs = [f"the cat number {i} sat on the mat" for i in range(10)]
    hyps = [f"the cat number {i} sat" if i % 2 else refs[i] for i in range(10)]
    report = score_by_length(sources, refs, {"a": hyps, "b": refs}, "en", count=3, min_size=2)
    assert sum(b["sentences"] for b in report["buckets"]) == 10
    for bucket in report["buckets"]:
        low, high = bucket["lengths"]
        rows = [i for i, s in enumerate(sources) if low <= len(s.split()) <= high]
        expected = score([hyps[i] for i in rows], [refs[i] for i in rows], ["bleu", "chrf"], "en")
        assert bucket["scores"]["a"] == {m: expected[m]["score"] for m in ("bleu", "chrf")}
        assert bucket["scores"]["b"]["bleu"] == 100.0
    assert report["signature"]["bleu"].startswith("nrefs:1")


def test_a_system_of_the_wrong_length_is_named():
    with pytest.raises(UserError, match="short has 1 lines but the source has 2"):
        score_by_length(["a", "b"], ["a", "b"], {"short": ["a"]})


def test_the_command_compares_files_and_models_and_draws_them(runner, tmp_path, model_dir):
    sources = [" ".join(str(d) for d in range(n % 7 + 1)) for n in range(40)]
    (tmp_path / "src.txt").write_text("\n".join(sources) + "\n", encoding="utf-8")
    for folder in ("x", "y"):  # two files named test.hyp: told apart by their folders
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "test.hyp").write_text("\n".join(sources) + "\n", encoding="utf-8")
    image = tmp_path / "len.png"
    args = ["evaluate", "by-length", str(tmp_path / "x" / "test.hyp")]
    args += [str(tmp_path / "y" / "test.hyp"), "--model", str(model_dir), "--min-size", "5"]
    args += ["--source", str(tmp_path / "src.txt"), "--reference", str(tmp_path / "src.txt")]
    result = runner.invoke(app, [*args, "--plot", str(image), "--json", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert sum(b["sentences"] for b in report["buckets"]) == 40
    model_name = f"{model_dir.parent.name}/{model_dir.name}"  # the names collide: by folder
    assert set(report["buckets"][0]["scores"]) == {"x/test", "y/test", model_name}
    assert image.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("name", ["x.txt", "by-length.xyz"])
def test_the_command_refuses_a_plot_that_is_no_image(runner, tmp_path, name):
    (tmp_path / "s.txt").write_text("a b\n", encoding="utf-8")
    plot = tmp_path / name
    args = ["evaluate", "by-length", str(tmp_path / "s.txt"), "--plot", str(plot)]
    result = runner.invoke(
        app, [*args, "--source", str(tmp_path / "s.txt"), "-r", str(tmp_path / "s.txt")]
    )
    assert result.exit_code == 1 and result.stdout == "" and "Traceback" not in result.output
    suffix = plot.suffix
    assert result.stderr == (
        f"error: --plot {plot}: matplotlib cannot write {suffix} images; "
        "end the name with .png (or .svg, .pdf)\n"
    )
    assert not plot.exists()


def test_the_command_needs_a_system(runner, tmp_path):
    (tmp_path / "s.txt").write_text("a\n", encoding="utf-8")
    args = ["--source", str(tmp_path / "s.txt"), "--reference", str(tmp_path / "s.txt")]
    result = runner.invoke(app, ["evaluate", "by-length", *args])
    assert result.exit_code == 1 and "give hypothesis files, or --model" in result.output


def test_bleu_by_length_scores_its_one_system_as_by_length_does(runner, tmp_path, model_dir):
    sources = [" ".join(str(d) for d in range(n % 9 + 1)) for n in range(60)]
    src, hyp = tmp_path / "src.txt", tmp_path / "sys.txt"
    src.write_text("\n".join(sources) + "\n", encoding="utf-8")
    hyp.write_text("\n".join(s[::-1] for s in sources) + "\n", encoding="utf-8")
    files = ["--source", str(src), "--reference", str(src), "--json"]
    bleu = runner.invoke(app, ["evaluate", "bleu", str(hyp), "--by-length", *files])
    assert bleu.exit_code == 0, bleu.output
    alone = runner.invoke(app, ["evaluate", "by-length", str(hyp), *files])
    report = json.loads(bleu.stdout)
    assert report["by_length"] == json.loads(alone.stdout)
    assert sum(b["sentences"] for b in report["by_length"]["buckets"]) == 60
    assert "bleu" in report  # the whole-corpus scores are still there
    text = runner.invoke(app, ["evaluate", "bleu", str(hyp), "--by-length", *files[:-1]])
    assert text.exit_code == 0 and "sentences" in text.output and "BLEU = " in text.output
    model = ["evaluate", "bleu", "--model", str(model_dir), "--by-length", *files, "--device"]
    translated = runner.invoke(app, [*model, "cpu"])
    assert translated.exit_code == 0, translated.output
    buckets = json.loads(translated.stdout)["by_length"]["buckets"]
    assert set(buckets[0]["scores"]) == {model_dir.name}


def test_bleu_by_length_needs_the_source(runner, tmp_path):
    (tmp_path / "h.txt").write_text("a\n", encoding="utf-8")
    args = ["evaluate", "bleu", str(tmp_path / "h.txt"), "--reference", str(tmp_path / "h.txt")]
    result = runner.invoke(app, [*args, "--by-length"])
    assert result.exit_code == 1 and "--by-length needs --source" in result.output
    result = runner.invoke(app, [*args, "--source", str(tmp_path / "h.txt")])
    assert result.exit_code == 1
    assert "--source goes with --model, or with --by-length" in result.output
