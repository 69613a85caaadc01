"""Long phases report their progress as events; the CLI draws them, or prints lines."""

from __future__ import annotations

import io
from collections import defaultdict

import pytest
from helpers.cli import STAMP, set_args, unstamped

import nmt.cli.progress
from nmt.cli.main import app
from nmt.cli.progress import Renderer
from nmt.decode.translate import Translator
from nmt.events import Evaluation, Phase, Progress
from nmt.progress import Tracker, duration
from nmt.recipe.schema import TrainConfig
from nmt.training.clock import RunClock
from nmt.training.setup import train


@pytest.fixture(scope="module")
def run_events(tmp_path_factory, quickstart, tiny_overrides):
    """Every event of one tiny training run (two epochs and a bit, two evaluations), its
    data prepared afresh (a session fixture may have cached the same tiny corpus)."""
    from nmt.recipe.load import load_recipe

    out = tmp_path_factory.mktemp("progress") / "run"
    data = tmp_path_factory.mktemp("progress-data") / "prepared"  # made here: every phase runs
    limits = ["train.max_steps=40", "train.eval_every=20", f"data.prepared={data}"]
    recipe = load_recipe(quickstart, [*tiny_overrides, *limits])
    recipe = type(recipe)(**{**recipe.__dict__, "output_dir": str(out)})
    events = []
    train(recipe, "cpu", on_event=events.append)
    return events


def phases_by_name(events) -> dict[str, list[Phase]]:
    found = defaultdict(list)
    for event in events:
        if isinstance(event, Phase):
            found[event.name].append(event)
    return found


@pytest.mark.slow
def test_every_long_phase_of_training_is_reported(run_events):
    names = set(phases_by_name(run_events))
    expected = {"reading data.train", "reading data.valid", "reading data.test"}
    expected |= {"training the sentencepiece tokenizer", "encoding data.train"}
    expected |= {"encoding data.valid", "epoch 1", "epoch 2", "epoch 3", "testing"}
    assert expected <= names
    assert "validating" in names


def test_each_phase_starts_advances_and_finishes_once(run_events):
    for name, phases in phases_by_name(run_events).items():
        if name == "validating":  # one phase per evaluation, each one finished
            assert sum(p.finished for p in phases) == 2
            continue
        assert [p.finished for p in phases] == [False] * (len(phases) - 1) + [True], name
        done = [p.done for p in phases]
        assert done == sorted(done), name
        total = phases[0].total
        if total is not None and name != "epoch 3":  # the run stops inside epoch 3
            assert done[-1] == total, name


def test_epochs_count_batches_and_carry_an_eta(run_events):
    epoch = phases_by_name(run_events)["epoch 1"]
    assert epoch[0].unit == "batches" and epoch[0].done == 0
    assert all("ETA" in p.detail and "train.max_steps 40" in p.detail for p in epoch[1:])


def test_phases_interleave_with_the_log_events_in_order(run_events):
    kinds = [type(e).__name__ for e in run_events]
    assert "Progress" in kinds and "Evaluation" in kinds
    # an evaluation is reported after its validating phase has finished
    first_eval = next(i for i, e in enumerate(run_events) if isinstance(e, Evaluation))
    finished = [
        i for i, e in enumerate(run_events) if isinstance(e, Phase) and e.name == "validating"
        and e.finished
    ]  # fmt: skip
    assert finished[0] < first_eval


def test_the_translator_reports_every_line_done(model_dir):
    translator = Translator.load(model_dir, device="cpu")
    counts = []
    lines = ["1 2 3", "", "4 5", "6", ""]
    translator.translate(lines, progress=counts.append, beam_size=2, batch_tokens=4)
    assert sum(counts) == len(lines) and len(counts) >= 2


def test_durations_read_like_a_person_wrote_them():
    assert [duration(s) for s in (0.04, 3.25, 42, 65, 3599, 7300)] == [
        "0.0 s", "3.2 s", "42 s", "1 min 05 s", "59 min 59 s", "2 h 01 min"
    ]  # fmt: skip


def test_the_eta_follows_the_nearest_limit(monkeypatch):
    now = [100.0]
    monkeypatch.setattr("nmt.training.clock.time.perf_counter", lambda: now[0])
    cfg = TrainConfig(max_steps=1000, max_epochs=3, max_minutes=None)
    clock = RunClock(cfg, step=0, epochs=0.0)
    assert clock.eta(0, 0.0) == ""  # no pace yet
    now[0] = 110.0  # 100 steps and a tenth of an epoch in 10 s
    assert clock.eta(100, 0.1) == "ETA 1 min 30 s (train.max_steps 1000)"
    cfg = TrainConfig(max_steps=None, max_epochs=3, max_minutes=1)
    assert RunClock(cfg, 0, 0.0).eta(100, 0.1) == ""  # the clock started at 110
    clock = RunClock(cfg, 0, 0.0)
    now[0] = 130.0
    assert clock.eta(100, 0.1) == "ETA 40 s (train.max_minutes 1)"


def test_a_tracker_finishes_when_its_block_fails():
    seen = []
    with (
        pytest.raises(RuntimeError, match="the block failed"),
        Tracker(seen.append, "x", 3, "lines") as tracker,
    ):
        tracker.advance(1, "half")
        raise RuntimeError("the block failed")
    assert [(p.done, p.finished, p.detail) for p in seen] == [
        (0, False, ""), (1, False, "half"), (1, True, "half")
    ]  # fmt: skip


def test_off_a_terminal_phases_print_plain_lines(monkeypatch):
    monkeypatch.setattr(nmt.cli.progress, "MIN_SECONDS", 0.0)
    stream = io.StringIO()
    renderer = Renderer(stream, tty=False, every=3600)
    for done in range(4):
        renderer.render(Phase("validating", done, 3, "sentences", finished=done == 3))
    text = stream.getvalue()
    assert "\r" not in text and text.count("\n") == 1  # one line, when it finished
    assert unstamped(text).startswith("validating: 3/3 sentences done in ")


def test_on_a_terminal_phases_are_redrawn_bars():
    stream = io.StringIO()
    renderer = Renderer(stream, tty=True)
    for done in range(4):
        renderer.render(Phase("epoch 1", done, 3, "batches", done == 3, "ETA 5 s"))
    assert "\r" in stream.getvalue() and "epoch 1" in stream.getvalue()
    assert "3/3" in stream.getvalue() and renderer.bars == {}


@pytest.fixture
def clock(monkeypatch):
    """The renderer's clock, set by hand: clock[0] seconds."""
    now = [0.0]
    monkeypatch.setattr("nmt.cli.progress.time.perf_counter", lambda: now[0])
    return now


def finished_line(clock, seconds: float, name: str, first: int, last: int, unit: str) -> str:
    """The line off a terminal for a phase seen first at `first` done, finished at `last`
    `seconds` later, without its time stamp."""
    stream = io.StringIO()
    renderer = Renderer(stream, tty=False, every=3600)
    clock[0] = 100.0
    renderer.render(Phase(name, first, last, unit))
    clock[0] += seconds
    renderer.render(Phase(name, last, last, unit, finished=True))
    return unstamped(stream.getvalue())


@pytest.mark.parametrize(
    ("done", "seconds", "rate"),
    [
        (2468, 2.0, "1,234 sentences/s"),
        (25, 10.0, "2.5 sentences/s"),
        (5, 12.0, "0.42 sentences/s"),  # "0 sentences/s" before
        (3, 36.0, "12 s/sentence"),
        (2, 370.0, "3 min 05 s/sentence"),
    ],
)
def test_slow_rates_keep_their_digits(clock, done, seconds, rate):
    line = finished_line(clock, seconds, "validating", 0, done, "sentences")
    assert line.rstrip("\n").endswith(f", {rate}"), line


def test_a_resumed_epoch_counts_only_this_run_s_batches_in_its_rate(clock):
    # 100 of 137 batches were done before --resume; this run did 37 in 37 s
    line = finished_line(clock, 37.0, "epoch 3", 100, 137, "batches")
    assert line.startswith("epoch 3: 137/137 batches done in 37 s, 1.0 batches/s"), line


def test_an_epoch_bar_on_a_terminal_shows_one_eta():
    stream = io.StringIO()
    renderer = Renderer(stream, tty=True)
    for done in range(4):
        detail = "ETA 5 s (train.max_epochs 3)"
        renderer.render(Phase("epoch 1", done, 3, "batches", done == 3, detail))
        renderer.render(Phase("validating", done, 3, "sentences", done == 3))
    drawn = stream.getvalue().split("\r")
    epoch = [text for text in drawn if text.startswith("epoch 1") and "ETA" in text]
    assert epoch and all("<" not in text for text in epoch)  # tqdm's time left is gone
    assert any("<" in text for text in drawn if text.startswith("validating"))  # its only one


def test_off_a_terminal_every_line_is_time_stamped(capsys):
    stream = io.StringIO()
    renderer = Renderer(stream, tty=False, every=0)
    renderer.echo("eval   epoch   1.00  step      10")
    renderer.render(Phase("validating", 0, 3, "sentences"))
    lines = capsys.readouterr().out.splitlines() + stream.getvalue().splitlines()
    assert len(lines) == 2 and all(STAMP.match(line) for line in lines), lines
    assert unstamped(lines[0]) == "eval   epoch   1.00  step      10"
    assert not STAMP.match(unstamped(lines[1]))  # one stamp each
    terminal = Renderer(io.StringIO(), tty=True)
    terminal.echo("a log line")
    assert capsys.readouterr().out == "a log line\n"  # a terminal shows its own time


@pytest.mark.slow
def test_the_cli_off_a_terminal_prints_log_lines_and_phase_lines(
    runner, tmp_path, monkeypatch, quickstart, tiny_overrides
):
    monkeypatch.setattr(nmt.cli.progress, "MIN_SECONDS", 0.0)

    overrides = [*tiny_overrides, "train.max_steps=20"]
    result = runner.invoke(
        app,
        ["train", str(quickstart), *set_args(overrides), "--output-dir", str(tmp_path / "r")]
        + ["--device", "cpu"],
    )
    assert result.exit_code == 0, result.output
    assert "\r" not in result.output
    assert "epoch 1: " in result.stderr and "validating: 20/20 sentences done in" in result.stderr
    assert "testing: 20/20 sentences done in" in result.stderr
    assert any(line.startswith("eval ") for line in unstamped(result.stdout).splitlines())
    assert " in 0 s " not in result.stdout and "trained 20 steps in " in result.stdout


def test_progress_events_keep_their_shape():
    """The CLI and TensorBoard read these fields; renaming one must fail here."""
    fields = {"step", "epoch", "loss", "tokens_per_second", "learning_rate", "skipped"}
    fields |= {"teacher_forcing"}
    assert set(Progress.__dataclass_fields__) == fields
    assert set(Phase.__dataclass_fields__) == {
        "name", "done", "total", "unit", "finished", "detail"
    }  # fmt: skip


def test_translating_a_file_reports_lines_done_of_the_total(
    runner, model_dir, tmp_path, monkeypatch
):
    monkeypatch.setattr(nmt.cli.progress, "MIN_SECONDS", 0.0)
    source = tmp_path / "in.txt"
    source.write_text("1 2\n\n3 4 5\n6\n", encoding="utf-8")
    result = runner.invoke(app, ["translate", str(source), "--model", str(model_dir)])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 4
    line = next(x for x in unstamped(result.stderr).splitlines() if x.startswith("translating: "))
    assert line.startswith("translating: 4/4 lines done in ") and "lines/s" in line
