"""The training loop (nmt.training.setup.train): what a model directory holds, and how runs start.

Checked here: the files of a model directory and what recipe.yaml, metrics.jsonl and
results.json say; train.max_steps counts updates exactly; an existing directory is never
touched without --resume or --overwrite, and --overwrite only replaces model directories
(a directory holding only a killed run's temporary files counts as empty; --resume
refuses files with other hard links);
--resume continues from the saved step, refuses other model/tokenizer/data settings, and
gives bit for bit what one uninterrupted run gives; patience stops early; a corpus the
length filters empty is a UserError; scheduled sampling, word vocabularies and one
tokenizer per side train. Every run is the tiny quickstart recipe of conftest.py.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from pathlib import Path

import pytest
import torch
from helpers.cli import set_args
from safetensors.torch import load_file

import nmt.training.loop
import nmt.training.setup
import nmt.training.validation
from nmt.decode.translate import Translator
from nmt.errors import UserError
from nmt.events import Evaluation, Message
from nmt.recipe.load import load_recipe
from nmt.training.results import Limits
from nmt.training.setup import train


def snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under `directory`: its bytes and modification time."""
    return {
        str(p.relative_to(directory)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def metrics(directory: Path) -> list[dict]:
    lines = (directory / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def trainer_state(directory: Path) -> dict:
    return json.loads((directory / "checkpoints" / "last" / "trainer.json").read_text())


def results(directory: Path) -> dict:
    return json.loads((directory / "results.json").read_text(encoding="utf-8"))


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def same_weights(a: Path, b: Path) -> bool:
    wa, wb = weights(a), weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


# ---------------------------------------------------------------- the model directory


def test_model_directory_holds_every_file(model_dir):
    for name in ("recipe.yaml", "model.safetensors", "spm.model", "metrics.jsonl", "results.json"):
        assert (model_dir / name).is_file(), name
    last = model_dir / "checkpoints" / "last"
    for name in ("model.safetensors", "optimizer.pt", "trainer.json"):
        assert (last / name).is_file(), name
    # Atomic writes leave no temporary file or directory behind.
    leftovers = [
        p.name for p in model_dir.rglob("*") if ".tmp" in p.name or p.name.endswith(".old")
    ]
    assert leftovers == []


def test_saved_recipe_loads_back_to_the_trained_recipe(model_dir, quickstart, model_overrides):
    expected = load_recipe(quickstart, model_overrides)
    expected = dataclasses.replace(expected, output_dir=str(model_dir))
    assert load_recipe(model_dir / "recipe.yaml") == expected


def test_metrics_has_one_object_per_evaluation(model_dir):
    # the shared model: eval_every=20, max_steps=40
    entries = metrics(model_dir)
    assert [e["step"] for e in entries] == [20, 40]
    for e in entries:
        assert {"step", "valid_loss", "valid_ppl", "valid_bleu", "learning_rate"} <= e.keys()
        assert math.isfinite(e["valid_loss"]) and e["valid_loss"] > 0
        assert e["valid_ppl"] == pytest.approx(math.exp(e["valid_loss"]), rel=1e-3)
        assert 0 <= e["valid_bleu"] <= 100
        assert e["learning_rate"] == pytest.approx(0.003)  # the recipe's, constant schedule


def test_results_json(model_dir, model_steps):
    r = results(model_dir)
    for key in ("bleu", "chrf", "signature", "beam_size", "steps", "epochs", "train_seconds"):
        assert key in r, key
    assert 0 <= r["bleu"] <= 100 and 0 <= r["chrf"] <= 100
    assert r["signature"]["bleu"].startswith("nrefs:1|")
    assert "chrf" in r["signature"]
    assert r["beam_size"] == 5  # the recipe's decode.beam_size
    assert r["steps"] == model_steps
    assert r["epochs"] > 0
    assert r["train_seconds"] >= 0 and r["train_tokens_per_second"] > 0
    assert r["test_sentences"] == 20
    # test.hyp: one translation per test sentence
    assert len((model_dir / "test.hyp").read_text(encoding="utf-8").splitlines()) == 20


def test_max_steps_counts_updates_exactly(tmp_path, make_recipe, monkeypatch):
    updates = []
    real_step = nmt.training.loop.train_step

    def counting_step(*args, **kwargs):
        updates.append(1)
        return real_step(*args, **kwargs)

    monkeypatch.setattr(nmt.training.loop, "train_step", counting_step)
    out = tmp_path / "run"
    r = train(make_recipe(out, "train.max_steps=7", "train.eval_every=5"), device="cpu")
    assert len(updates) == 7
    assert r.steps == 7 and results(out)["steps"] == 7
    assert results(out)["stopped_by"] == "max_steps" and r.limits.max_steps == 7
    assert trainer_state(out)["step"] == 7
    # evaluated at eval_every, and once more where training stopped
    assert [e["step"] for e in metrics(out)] == [5, 7]


# ---------------------------------------------------------------- existing directories


def test_existing_model_dir_without_resume_or_overwrite_is_untouched(copy_model, make_recipe):
    run_dir = copy_model()
    before = snapshot(run_dir)
    with pytest.raises(UserError, match=str(run_dir)) as error:
        train(make_recipe(run_dir), device="cpu")
    assert "--resume" in str(error.value) and "--overwrite" in str(error.value)
    assert snapshot(run_dir) == before


def test_overwrite_replaces_a_model_dir(copy_model, make_recipe):
    run_dir = copy_model()
    train(make_recipe(run_dir, "train.max_steps=3", "train.eval_every=0"), "cpu", overwrite=True)
    assert [e["step"] for e in metrics(run_dir)] == [3]  # a fresh metrics.jsonl
    assert trainer_state(run_dir)["step"] == 3
    assert results(run_dir)["steps"] == 3


def test_overwrite_refuses_a_model_dir_holding_other_files(copy_model, make_recipe):
    run_dir = copy_model()
    (run_dir / "notes.txt").write_text("mine")
    before = snapshot(run_dir)
    with pytest.raises(UserError, match=r"holds files nmt did not write \(notes.txt\)"):
        train(make_recipe(run_dir), "cpu", overwrite=True)
    assert snapshot(run_dir) == before


def test_overwrite_refuses_a_directory_that_is_not_a_model_dir(tmp_path, make_recipe):
    precious = tmp_path / "thesis"
    precious.mkdir()
    (precious / "chapter1.tex").write_text("years of work")
    (precious / "recipe.yaml").write_text("data: {}")  # a file name nmt also uses
    (precious / "figures").mkdir()
    (precious / "figures" / "plot.pdf").write_bytes(b"%PDF")
    before = snapshot(precious)
    with pytest.raises(UserError, match="holds files nmt did not write"):
        train(make_recipe(precious), device="cpu", overwrite=True)
    assert snapshot(precious) == before


def test_overwrite_keeps_the_old_model_when_the_new_data_fails(copy_model, make_recipe):
    run_dir = copy_model()
    before = snapshot(run_dir)
    with pytest.raises(UserError, match="no such file"):
        train(make_recipe(run_dir, "data.train=typo.{lang}"), "cpu", overwrite=True)
    assert snapshot(run_dir) == before


def test_a_run_that_fails_on_its_data_writes_nothing(tmp_path, make_recipe):
    run_dir = tmp_path / "model"
    with pytest.raises(UserError, match="no pairs left"):
        train(make_recipe(run_dir, "data.max_length=1"), "cpu")
    assert not run_dir.exists()
    train(make_recipe(run_dir, "train.max_steps=2"), "cpu")  # the fixed rerun needs no flag
    assert results(run_dir)["steps"] == 2


LEFTOVERS = [".recipe.yaml.k2_x9abq.tmp", ".spm.model.tmp"]  # killed writes: mkstemp's, older


def test_a_directory_holding_only_leftovers_counts_as_empty(tmp_path, make_recipe):
    # A first run killed while writing its first file leaves only a temporary file: the
    # rerun needs no flag, and removes it.
    run_dir = tmp_path / "model"
    run_dir.mkdir()
    for name in LEFTOVERS:
        (run_dir / name).write_bytes(b"half a file")
    train(make_recipe(run_dir, "train.max_steps=2"), "cpu")
    assert results(run_dir)["steps"] == 2
    assert not [p.name for p in run_dir.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.slow
def test_resume_ignores_and_removes_leftovers(copy_model, make_recipe, model_steps):
    run_dir = copy_model()
    (run_dir / LEFTOVERS[0]).write_bytes(b"half a recipe")
    more = model_steps + 2
    train(make_recipe(run_dir, f"train.max_steps={more}"), "cpu", resume=True)
    assert trainer_state(run_dir)["step"] == more
    assert not (run_dir / LEFTOVERS[0]).exists()


def test_overwrite_keeps_a_users_own_dot_tmp_file(copy_model, make_recipe):
    run_dir = copy_model()
    (run_dir / ".draft.tmp").write_text("mine")  # not a temporary file of a run file
    before = snapshot(run_dir)
    with pytest.raises(UserError, match=r"holds files nmt did not write \(.draft.tmp\)"):
        train(make_recipe(run_dir), "cpu", overwrite=True)
    assert snapshot(run_dir) == before


def test_resume_refuses_files_with_other_hard_links(copy_model, make_recipe, tmp_path):
    # A copy made with `cp -l` shares metrics.jsonl: appending to it would change both.
    run_dir = copy_model()
    (tmp_path / "snapshot").mkdir()
    os.link(run_dir / "metrics.jsonl", tmp_path / "snapshot" / "metrics.jsonl")
    before = snapshot(run_dir)
    with pytest.raises(UserError, match="metrics.jsonl has other hard links .*cp -r"):
        train(make_recipe(run_dir, "train.max_steps=50"), "cpu", resume=True)
    assert snapshot(run_dir) == before


def test_resume_and_overwrite_together_are_refused(copy_model, make_recipe):
    with pytest.raises(UserError, match="choose one"):
        train(make_recipe(copy_model()), "cpu", resume=True, overwrite=True)


@pytest.mark.parametrize(
    "change", ["train.batch_tokens=100000", "train.optimizer=sgd", "train.learning_rate=0.5"]
)
def test_resume_refuses_training_settings_that_would_not_continue(copy_model, make_recipe, change):
    run_dir = copy_model()
    before = snapshot(run_dir)
    with pytest.raises(UserError, match=change.split("=")[0]):
        train(make_recipe(run_dir, change), "cpu", resume=True)
    assert snapshot(run_dir) == before


def test_resume_records_the_new_limits_and_decode_settings(copy_model, make_recipe, model_steps):
    run_dir = copy_model()
    more = model_steps + 2
    train(make_recipe(run_dir, f"train.max_steps={more}", "decode.beam_size=2"), "cpu", resume=True)
    saved = load_recipe(run_dir / "recipe.yaml")
    assert (saved.train.max_steps, saved.decode.beam_size) == (more, 2)
    assert results(run_dir)["beam_size"] == 2


def test_output_dir_below_a_file(tmp_path, make_recipe):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(UserError, match="is a file"):
        train(make_recipe(tmp_path / "afile" / "model"), "cpu")


def test_resume_without_a_model_dir_is_a_user_error(tmp_path, make_recipe):
    with pytest.raises(UserError, match="nothing to resume"):
        train(make_recipe(tmp_path / "none"), device="cpu", resume=True)


# ---------------------------------------------------------------- resume


def test_resume_continues_from_the_saved_step(copy_model, make_recipe, model_steps):
    run_dir = copy_model()
    saved = trainer_state(run_dir)
    assert saved["step"] == model_steps == 40
    events = []
    recipe = make_recipe(run_dir, "train.max_steps=50", "train.eval_every=5")
    r = train(recipe, "cpu", resume=True, on_event=events.append)
    messages = [e.text for e in events if isinstance(e, Message)]
    assert any("resumed at step 40" in m for m in messages)
    steps = [e["step"] for e in metrics(run_dir)]
    assert steps == [20, 40, 45, 50]  # the old evaluations kept, new ones appended
    evaluations = [e for e in events if isinstance(e, Evaluation)]
    assert [e.step for e in evaluations] == [45, 50]
    after = trainer_state(run_dir)
    assert after["step"] == 50 and r.steps == 50
    assert (after["epoch"], after["position"]) > (saved["epoch"], saved["position"])
    assert after["train_tokens"] > saved["train_tokens"]  # counts carried over, not restarted
    # the best score so far was restored, not reset: it can only have stayed or grown
    assert after["best_bleu"] >= saved["best_bleu"]
    assert evaluations[0].best_bleu >= saved["best_bleu"]


def test_resuming_a_run_that_reached_max_steps_trains_no_further(copy_model, make_recipe):
    run_dir = copy_model()
    before = trainer_state(run_dir)["step"]
    recipe = make_recipe(run_dir, f"train.max_steps={before}", "train.eval_every=20")
    r = train(recipe, "cpu", resume=True)
    assert r.steps == before
    assert trainer_state(run_dir)["step"] == before


@pytest.mark.slow
def test_resuming_a_run_that_reached_max_epochs(tmp_path, make_recipe):
    out = tmp_path / "run"
    options = ["train.max_steps=null", "train.max_epochs=1", "train.eval_every=0"]
    first = train(make_recipe(out, *options), device="cpu")
    assert first.epochs == 1.0 and first.stopped_by == "max_epochs"
    assert first.limits == Limits(max_steps=None, max_epochs=1, max_minutes=None, patience=0)
    try:
        again = train(make_recipe(out, *options), "cpu", resume=True)
    except UserError:
        return  # a clear message is a fine answer too
    assert again.steps == first.steps


@pytest.mark.parametrize(
    "change",
    [
        "model.hidden_size=64",
        "model.attention=bahdanau",
        "tokenizer.vocab_size=120",
        "data.max_length=50",
        "data.train={toy: numbers, split: train, size: 200}",
        "seed=2",
        "train.lr_schedule=inverse_sqrt",  # the schedules: a resume continues them exactly
        "train.warmup_steps=5",
    ],
)
def test_resume_refuses_other_model_tokenizer_or_data_settings(copy_model, make_recipe, change):
    run_dir = copy_model()
    before = snapshot(run_dir)
    key = change.split("=")[0]  # the message names the changed key
    with pytest.raises(UserError, match=f"other values of {re.escape(key)}"):
        train(make_recipe(run_dir, change), device="cpu", resume=True)
    assert snapshot(run_dir) == before


@pytest.mark.slow
@pytest.mark.parametrize(
    "extra",
    [
        [],
        ["train.teacher_forcing=0.5", "train.lr_schedule=plateau", "train.lr_patience=0"],
    ],
    ids=["dropout", "dropout+sampling+plateau"],
)
def test_resume_reproduces_an_uninterrupted_run(tmp_path, make_recipe, extra):
    # 18 batches an epoch: resuming at step 12 lands mid-epoch, and the run crosses
    # into the second epoch after it. Dropout (0.1) and sampling draw from the RNG; the
    # plateau schedule (valid BLEU stays 0 on this tiny model) decays the learning rate
    # at evaluations, so its state must survive the restart too.
    n = 12
    straight, split = tmp_path / "straight", tmp_path / "split"
    options = ["train.eval_every=6", *extra]
    train(make_recipe(straight, f"train.max_steps={2 * n}", *options), device="cpu")
    train(make_recipe(split, f"train.max_steps={n}", *options), device="cpu")
    assert trainer_state(split)["step"] == n
    train(make_recipe(split, f"train.max_steps={2 * n}", *options), "cpu", resume=True)

    last = Path("checkpoints") / "last" / "model.safetensors"
    assert same_weights(straight / last, split / last)
    a, b = trainer_state(straight), trainer_state(split)
    for key in ("step", "epoch", "position", "train_tokens", "best_step", "bad_evals"):
        assert a[key] == b[key], key

    def curve(run_dir):
        return [(e["step"], e["valid_loss"], e["learning_rate"]) for e in metrics(run_dir)]

    assert curve(straight) == curve(split)
    assert [step for step, _, _ in curve(split)] == [6, 12, 18, 24]
    if "train.lr_schedule=plateau" in extra:
        assert curve(straight)[-1][2] < 0.003  # the schedule did act


# ---------------------------------------------------------------- stopping and data


@pytest.mark.slow
def test_patience_stops_when_valid_bleu_stalls(tmp_path, make_recipe, monkeypatch):
    # Valid BLEU falls after the first evaluation: with patience 2, training stops at
    # the third evaluation, long before max_steps, and keeps the first one's weights.
    scores = iter([10.0, 5.0, 4.0, 3.0, 2.0, 1.0])
    monkeypatch.setattr(
        nmt.training.validation,
        "_validate",
        lambda *args: {"loss": 2.0, "bleu": next(scores), "chrf": 0.0},
    )
    out = tmp_path / "run"
    events = []
    recipe = make_recipe(out, "train.max_steps=100", "train.eval_every=2", "train.patience=2")
    r = train(recipe, device="cpu", on_event=events.append)
    assert r.steps == 6
    assert [e["step"] for e in metrics(out)] == [2, 4, 6]
    assert [e.improved for e in events if isinstance(e, Evaluation)] == [True, False, False]
    assert any(
        "no better valid BLEU in 2 evaluations" in e.text for e in events if isinstance(e, Message)
    )
    assert r.best_step == 2 and r.valid_bleu == 10.0
    assert r.stopped_by == "patience" and results(out)["stopped_by"] == "patience"
    # model.safetensors holds the best (step 2) weights, checkpoints/last the step 6 ones
    assert not same_weights(out / "model.safetensors", out / "checkpoints/last/model.safetensors")


def test_a_run_stopped_by_max_minutes_says_so_loudly(runner, tmp_path, tiny_overrides, quickstart):
    """Wall time depends on the machine: a run it cut short must not pass for a full one."""
    from nmt.cli.main import app

    out = tmp_path / "run"
    overrides = [*tiny_overrides, "train.max_steps=null", "train.max_minutes=1e-6"]
    args = ["train", str(quickstart), *set_args(overrides), "--output-dir", str(out)]
    result = runner.invoke(app, [*args, "--device", "cpu"])
    assert result.exit_code == 0, result.output
    r = results(out)
    assert r["stopped_by"] == "max_minutes" and r["limits"]["max_minutes"] == 1e-6
    epochs = load_recipe(quickstart).train.max_epochs  # the recipe's bound, not reached
    assert r["limits"]["max_epochs"] == epochs and r["epochs"] < epochs
    stopped = f"by train.max_minutes (1e-06 minutes of wall time) at {r['epochs']:.2f} of {epochs}"
    assert stopped in result.stdout, result.stdout
    warning = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warning) == 1 and "train.max_minutes" in warning[0], result.stderr
    assert "undertrained" in warning[0] and "--resume" in warning[0]


def test_without_patience_a_stalled_bleu_does_not_stop(tmp_path, make_recipe, monkeypatch):
    monkeypatch.setattr(
        nmt.training.validation, "_validate", lambda *args: {"loss": 2.0, "bleu": 0.0, "chrf": 0.0}
    )
    out = tmp_path / "run"
    r = train(make_recipe(out, "train.max_steps=8", "train.eval_every=2"), device="cpu")
    assert r.steps == 8
    assert [e["step"] for e in metrics(out)] == [2, 4, 6, 8]


def test_corpus_emptied_by_the_length_filters_is_a_user_error(tmp_path, make_recipe):
    with pytest.raises(UserError, match="data.max_length"):
        train(make_recipe(tmp_path / "run", "data.max_length=2"), device="cpu")


def test_scheduled_sampling_trains_and_changes_training(tmp_path, make_recipe):
    forced, sampled = tmp_path / "forced", tmp_path / "sampled"
    train(make_recipe(forced, "train.max_steps=5", "train.eval_every=0"), device="cpu")
    train(
        make_recipe(
            sampled, "train.max_steps=5", "train.eval_every=0", "train.teacher_forcing=0.5"
        ),
        device="cpu",
    )
    (entry,) = metrics(sampled)
    assert entry["step"] == 5 and math.isfinite(entry["valid_loss"])
    # same seed, same batches: only the sampled previous tokens can make them differ
    last = "checkpoints/last/model.safetensors"
    assert not same_weights(forced / last, sampled / last)


def test_word_tokenizer_writes_vocab_txt_and_trains(tmp_path, make_recipe):
    out = tmp_path / "run"
    train(make_recipe(out, "tokenizer.type=word", "train.max_steps=5"), device="cpu")
    assert (out / "vocab.txt").is_file() and not (out / "spm.model").exists()
    words = (out / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert words[:4] == ["<pad>", "<unk>", "<s>", "</s>"]
    assert len(words) <= 100 and len(set(words)) == len(words)
    translator = Translator.load(out, "cpu")
    (text,) = translator.translate(["three red dogs sleep"], beam_size=1)
    assert set(text.split()) <= set(words[1:])  # every output word is in the vocabulary


def test_per_side_tokenizers_write_two_models_and_translate(tmp_path, make_recipe):
    out = tmp_path / "run"
    train(make_recipe(out, "tokenizer.joint=false", "train.max_steps=5"), device="cpu")
    assert (out / "src.spm.model").is_file() and (out / "tgt.spm.model").is_file()
    assert not (out / "spm.model").exists()
    assert (out / "src.spm.model").read_bytes() != (out / "tgt.spm.model").read_bytes()
    translator = Translator.load(out, "cpu")
    assert translator.src_tokenizer is not translator.tgt_tokenizer
    lines = ["three red dogs sleep", "", "i see one cat"]
    found = translator.translate(lines, beam_size=2)
    assert len(found) == 3 and found[1] == ""
