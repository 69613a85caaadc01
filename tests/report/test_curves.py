"""Training curves: `nmt plot RUN_DIR ... --output curves.png` (nmt.report.curves, cli.plot).

Checked here, on metrics.jsonl files written by hand: the image is a real PNG of the
figure's size, written without leaving a temporary file; every run is one line per panel
and one legend entry, whose points are the records' values (null BLEU and a torn last
line left out); --x epoch and --x time (train_seconds in minutes) change the x values; a
run or a panel without a metric is left out with a note, and so are values too large to
draw (1e308); runs whose directories share a
name are told apart; each mistake is one UserError naming what the user gave; and the
command prints one line on success through a Typer app.
"""

from __future__ import annotations

import json
import math
import re

import matplotlib.image
import pytest
import typer
from typer.testing import CliRunner

from nmt.cli.plot import plot
from nmt.errors import UserError
from nmt.report.curves import DPI, plot_curves, read_runs

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def record(step, epoch, ppl, bleu, **extra):
    """One evaluation as nmt.training.validation writes it (train_loss, train_seconds: extra)."""
    return {
        "step": step,
        "epoch": epoch,
        "valid_loss": round(math.log(ppl), 4),
        "valid_ppl": ppl,
        "valid_bleu": bleu,
        "valid_chrf": 25.0,
        "learning_rate": 0.001,
        "train_tokens_per_second": 2172,
        **extra,
    }


# a run written after train_loss and train_seconds were added; one evaluation without BLEU
NEW = [
    record(100, 0.5, 40.1, 5.0, train_loss=4.2, train_seconds=30.0),
    record(200, 1.0, 20.5, None, train_loss=3.1, train_seconds=61.5),
    record(300, 1.5, 12.25, 11.5, train_loss=2.6, train_seconds=95.0),
]
# a run written before them
OLD = [record(150, 1.0, 30.0, 7.5), record(300, 2.0, 15.0, 12.0)]
TORN = '{"step": 400, "epoch": 2.0, "valid_lo'


def write_run(directory, records, torn=False):
    """A run directory holding `records` as metrics.jsonl (and a torn last line)."""
    directory.mkdir(parents=True)
    lines = "".join(json.dumps(record) + "\n" for record in records)
    (directory / "metrics.jsonl").write_text(lines + (TORN if torn else ""), encoding="utf-8")
    return directory


def draw(tmp_path, *runs, x="step"):
    """plot_curves for (name, records) pairs written under tmp_path."""
    dirs = [write_run(tmp_path / name, records, torn=True) for name, records in runs]
    return plot_curves(read_runs(dirs), tmp_path / "curves.png", x)


def line_data(curves, metric):
    """{run name: (xs, ys)} of one panel."""
    return {
        line.get_label(): (list(line.get_xdata()), list(line.get_ydata()))
        for line in curves.axes[metric].get_lines()
    }


def test_the_image_is_a_png_of_the_figure_size(tmp_path):
    curves = draw(tmp_path, ("new", NEW))
    data = curves.output.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000
    width, height = curves.figure.get_size_inches() * DPI
    assert matplotlib.image.imread(curves.output).shape[:2] == (round(height), round(width))
    assert len(curves.axes) == 3 and round(width) == 3 * 550
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png", "new"]  # no temp file


def test_two_runs_give_a_line_and_a_legend_entry_each_per_panel(tmp_path):
    second = [dict(r, valid_ppl=r["valid_ppl"] * 2, train_loss=r["train_loss"] + 1) for r in NEW]
    curves = draw(tmp_path, ("small", NEW), ("large", second))
    assert list(curves.axes) == ["valid_bleu", "valid_ppl", "train_loss"]
    for ax in curves.axes.values():
        assert [line.get_label() for line in ax.get_lines()] == ["small", "large"]
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["small", "large"]
    assert curves.runs == ["small", "large"] and curves.notes == []
    assert line_data(curves, "valid_ppl")["large"] == ([100, 200, 300], [80.2, 41.0, 24.5])
    assert line_data(curves, "train_loss")["large"] == ([100, 200, 300], [5.2, 4.1, 3.6])


def test_the_points_are_the_records_values(tmp_path):
    curves = draw(tmp_path, ("new", NEW))  # the torn last line (step 400) is dropped
    assert line_data(curves, "valid_ppl") == {"new": ([100, 200, 300], [40.1, 20.5, 12.25])}
    assert line_data(curves, "train_loss") == {"new": ([100, 200, 300], [4.2, 3.1, 2.6])}
    assert line_data(curves, "valid_bleu") == {"new": ([100, 300], [5.0, 11.5])}  # null left out
    assert curves.axes["valid_ppl"].get_yscale() == "log"
    assert curves.axes["valid_ppl"].get_xlabel() == "training step"


def test_x_epoch_uses_the_epochs(tmp_path):
    curves = draw(tmp_path, ("new", NEW), ("old", OLD), x="epoch")
    assert line_data(curves, "valid_ppl") == {
        "new": ([0.5, 1.0, 1.5], [40.1, 20.5, 12.25]),
        "old": ([1.0, 2.0], [30.0, 15.0]),
    }
    assert curves.axes["valid_bleu"].get_xlabel() == "epoch"


def test_x_time_uses_train_seconds_in_minutes_and_leaves_out_untimed_runs(tmp_path):
    curves = draw(tmp_path, ("new", NEW), ("old", OLD), x="time")
    xs, ys = line_data(curves, "valid_ppl")["new"]
    assert xs == pytest.approx([30.0 / 60, 61.5 / 60, 95.0 / 60]) and ys == [40.1, 20.5, 12.25]
    assert all(len(ax.get_lines()) == 1 for ax in curves.axes.values())
    assert curves.runs == ["new"]
    assert curves.notes == ["old not drawn: no train_seconds in metrics.jsonl"]
    assert curves.axes["train_loss"].get_xlabel() == "training time (minutes)"


def test_a_run_without_a_metric_is_left_out_of_its_panel_with_a_note(tmp_path):
    curves = draw(tmp_path, ("new", NEW), ("old", OLD))
    assert list(line_data(curves, "train_loss")) == ["new"]
    assert line_data(curves, "valid_ppl")["old"] == ([150, 300], [30.0, 15.0])
    assert curves.runs == ["new", "old"]
    assert curves.notes == ["training loss: old not drawn (no train_loss in metrics.jsonl)"]


def test_a_panel_no_run_has_is_left_out(tmp_path):
    no_bleu = [dict(r, valid_bleu=None) for r in OLD]
    curves = draw(tmp_path, ("old", no_bleu))
    assert list(curves.axes) == ["valid_ppl"] and curves.notes == []
    height, width = matplotlib.image.imread(curves.output).shape[:2]
    assert (width, height) == (550, 420)


def test_runs_whose_directories_share_a_name_are_told_apart(tmp_path):
    dirs = [write_run(tmp_path / group / "model", OLD) for group in ("a", "b")]
    other = write_run(tmp_path / "c" / "baseline", OLD)
    assert [run.name for run in read_runs([*dirs, other])] == ["a/model", "b/model", "baseline"]
    nested = write_run(tmp_path / "x" / "a" / "model", OLD)
    names = [run.name for run in read_runs([dirs[0], nested])]
    assert names == [str(tmp_path.name + "/a/model"), "x/a/model"]


@pytest.mark.parametrize(
    "setup, expected",
    [
        (lambda d: d.mkdir(), ["is not a run directory (no metrics.jsonl)", "`nmt train`"]),
        (lambda d: None, ["does not exist", "`nmt train`"]),
        (lambda d: write_run(d, []), ["holds no evaluations", "has not evaluated yet"]),
        (lambda d: write_run(d, [], torn=True), ["holds no evaluations", "not evaluated yet"]),
        (
            lambda d: (d.mkdir(), (d / "recipe.yaml").write_text("{}\n")),
            ["has no metrics.jsonl", "has not evaluated yet"],
        ),
    ],
    ids=["not-a-run", "missing", "empty", "torn-only", "no-evaluation-yet"],
)
def test_a_directory_without_evaluations_is_refused(tmp_path, setup, expected):
    run = tmp_path / "run"
    setup(run)
    with pytest.raises(UserError, match="^" + re.escape(str(run))) as e:
        read_runs([run])
    assert str(e.value).startswith(str(run)) and all(part in str(e.value) for part in expected)


def test_a_directory_given_twice_is_refused(tmp_path):
    run = write_run(tmp_path / "run", OLD)
    (tmp_path / "link").symlink_to(run)
    with pytest.raises(
        UserError, match=re.escape(f"{tmp_path / 'link'} is given twice (also as {run})")
    ) as e:
        read_runs([run, tmp_path / "link"])
    assert str(e.value) == f"{tmp_path / 'link'} is given twice (also as {run}); " + (
        "give each run directory once"
    )


def test_x_time_without_train_seconds_names_the_runs(tmp_path):
    runs = read_runs([write_run(tmp_path / name, OLD) for name in ("base", "deep")])
    with pytest.raises(UserError, match="--x time") as e:
        plot_curves(runs, tmp_path / "curves.png", "time")
    message = str(e.value)
    assert "--x time" in message and "base, deep" in message and "--x step" in message
    assert not (tmp_path / "curves.png").exists()


@pytest.mark.parametrize(
    "output, expected",
    [
        ("missing/curves.png", "--output {tmp}/missing/curves.png: {tmp}/missing does not exist"),
        ("run", "--output {tmp}/run is a directory"),
        ("run/metrics.jsonl", "--output {tmp}/run/metrics.jsonl would replace metrics.jsonl"),
        ("curves.xyz", "--output {tmp}/curves.xyz: matplotlib cannot write .xyz images"),
    ],
)
def test_a_bad_output_is_refused(tmp_path, output, expected):
    runs = read_runs([write_run(tmp_path / "run", NEW)])
    with pytest.raises(UserError, match="^" + re.escape(expected.format(tmp=tmp_path))) as e:
        plot_curves(runs, tmp_path / output, "step")
    assert str(e.value).startswith(expected.format(tmp=tmp_path))
    assert json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0]) == NEW[0]


# a run gone wild: a metric near the largest float, infinities, a step of 1e308
WILD = [
    record(100, 0.5, 1e308, 1e308, train_loss=-1e308),
    record(200, 1.0, 20.0, 6.0, train_loss=math.inf),
    record(1e308, 1.5, 15.0, 7.0, train_loss=2.0),
]


def test_values_too_large_to_draw_are_left_out_with_a_note(tmp_path):
    curves = draw(tmp_path, ("wild", WILD), ("new", NEW))
    assert line_data(curves, "valid_bleu")["wild"] == ([200], [6.0])
    assert line_data(curves, "valid_ppl")["wild"] == ([200], [20.0])
    assert list(line_data(curves, "train_loss")) == ["new"]  # inf is no number: not noted
    assert curves.notes == [
        "valid BLEU: 2 values of wild past ±1e+100 not drawn",
        "valid perplexity: 2 values of wild past ±1e+100 not drawn",
        "training loss: 2 values of wild past ±1e+100 not drawn",
    ]
    assert curves.output.read_bytes().startswith(PNG_MAGIC)


def test_the_command_draws_a_run_holding_1e308(tmp_path):
    # matplotlib's axis arithmetic overflows on 1e308 ("arange: cannot compute length").
    app = typer.Typer()
    app.command()(plot)
    run = write_run(tmp_path / "run", [record(100, 0.5, 20.0, 1e308, train_loss=float("nan"))])
    result = CliRunner().invoke(app, [str(run), "-o", str(tmp_path / "c.png")])
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        f"wrote {tmp_path / 'c.png'}: run against step; "
        "valid BLEU: a value of run past ±1e+100 not drawn\n"
    )


def test_runs_without_any_curve_are_refused(tmp_path):
    bare = [{"step": 10, "epoch": 1.0, "learning_rate": 0.001}]  # trained without a valid split
    runs = read_runs([write_run(tmp_path / "run", bare)])
    with pytest.raises(UserError, match="nothing to plot: run recorded no valid_bleu"):
        plot_curves(runs, tmp_path / "curves.png", "step")


def test_the_command_writes_the_image_and_says_so(tmp_path, monkeypatch):
    app = typer.Typer()
    app.command()(plot)
    new, old = write_run(tmp_path / "new", NEW), write_run(tmp_path / "old", OLD)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, [str(new), str(old)])
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        "wrote curves.png: new, old against step; "
        "training loss: old not drawn (no train_loss in metrics.jsonl)\n"
    )
    assert (tmp_path / "curves.png").read_bytes().startswith(PNG_MAGIC)
    out = tmp_path / "epochs.png"
    result = CliRunner().invoke(app, [str(new), "--x", "epoch", "-o", str(out)])
    assert result.exit_code == 0 and out.is_file() and f"wrote {out}: new" in result.stderr
    result = CliRunner().invoke(app, [str(old), "--x", "time"])
    assert result.exit_code == 1 and result.stderr.startswith("error: --x time needs")
    assert CliRunner().invoke(app, [str(new), "--x", "hours"]).exit_code == 2
    assert CliRunner().invoke(app, []).exit_code == 2
