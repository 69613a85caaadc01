"""train.tensorboard: event files with the curves and attention maps, or one clear error."""

from __future__ import annotations

import sys

import pytest
from helpers.cli import set_args

from nmt.cli.main import app

pytest.importorskip("tensorboard")

from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)


@pytest.fixture
def train(runner, quickstart, tiny_overrides):
    """train(out, *overrides): a tiny 20-step `nmt train` with train.tensorboard into out."""
    run = [*tiny_overrides, "train.max_steps=20", "train.tensorboard=true"]

    def invoke(out, *extra):
        return runner.invoke(
            app,
            ["train", str(quickstart), *set_args([*run, *extra]), "--output-dir", str(out)]
            + ["--device", "cpu"],
        )

    return invoke


def test_a_run_writes_its_curves_and_attention_maps(tmp_path, train):
    out = tmp_path / "run"
    result = train(out)
    assert result.exit_code == 0, result.output
    files = list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert files and all(f.stat().st_size > 1000 for f in files)
    events = EventAccumulator(str(out / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    tags = events.Tags()
    scalars = {"train/loss", "train/learning_rate", "train/tokens_per_second"}
    scalars |= {"train/teacher_forcing"}
    scalars |= {"valid/loss", "valid/perplexity", "valid/bleu"}
    assert scalars <= set(tags["scalars"])
    assert [e.step for e in events.Scalars("train/loss")] == [10, 20]  # train.log_every 10
    assert [e.step for e in events.Scalars("valid/bleu")] == [10, 20]  # train.eval_every 10
    loss = [e.value for e in events.Scalars("valid/loss")]
    metrics = [line for line in (out / "metrics.jsonl").read_text().splitlines() if line]
    assert len(loss) == len(metrics)
    assert {"attention/0", "attention/1", "attention/2"} <= set(tags["images"])
    image = events.Images("attention/0")[-1]
    assert image.step == 20 and image.width > 10 and image.height > 10


def test_without_tensorboard_installed_the_run_stops_before_writing(tmp_path, monkeypatch, train):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    out = tmp_path / "run"
    result = train(out)
    assert result.exit_code == 1
    assert "train.tensorboard needs the tensorboard package" in result.output
    assert not out.exists()


def test_metrics_record_the_training_loss_and_time(tmp_path, train):
    import json

    out = tmp_path / "run"
    assert train(out, "train.tensorboard=false").exit_code == 0
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert all(r["train_loss"] > 0 for r in records)
    times = [r["train_seconds"] for r in records]
    assert times == sorted(times) and times[0] > 0
    assert not (out / "tensorboard").exists()


def test_a_quickstart_run_gives_event_files_and_nmt_plot_draws_it(runner, tmp_path, train):
    out = tmp_path / "run"
    assert train(out).exit_code == 0
    assert any(f.stat().st_size > 1000 for f in (out / "tensorboard").iterdir())
    image = tmp_path / "curves.png"
    result = runner.invoke(app, ["plot", str(out), "--output", str(image)])
    assert result.exit_code == 0, result.output
    data = image.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000
