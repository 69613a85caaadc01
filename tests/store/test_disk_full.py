"""A full disk (ENOSPC, or EDQUOT) during `nmt train` or `nmt average` is one line: what
could not be written, that the disk is full, and what is kept; never a traceback.

The disk fills by replacing the writer of that moment with one that fails as a full disk
makes it fail (measured on a full tmpfs): a plain write raises OSError 28, torch.save a
RuntimeError raised while handling it, safetensors a SafetensorError whose text ends
"(os error 28)". Then the run (or the averaging) is done again with room to spare, to show
that what the message says is kept is enough to go on.
"""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import torch
from helpers.cli import one_line_error, set_args
from safetensors import SafetensorError

import nmt.store.checkpoint
import nmt.store.files
import nmt.training.setup
from nmt.cli.main import app
from nmt.errors import UserError
from nmt.store.layout import TOKENIZER_FILES

NO_SPACE = "No space left on device"


def full() -> OSError:
    return OSError(errno.ENOSPC, NO_SPACE)


@pytest.fixture
def train_cli(runner, quickstart, tiny_overrides):
    """train_cli(out, *overrides, resume=False): `nmt train` of the tiny quickstart into out."""

    def train(out: Path, *extra: str, resume: bool = False):
        sets = set_args([*tiny_overrides, *extra])
        args = ["train", str(quickstart), *sets, "--output-dir", str(out), "--device", "cpu"]
        return runner.invoke(app, [*args, *(["--resume"] if resume else [])])

    return train


# ---------------------------------------------------------------- recognising it


def torch_save_error() -> RuntimeError:
    """What torch.save raised on a full tmpfs: a RuntimeError, the OSError its context."""
    try:
        try:
            raise full()
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] .")  # noqa: B904
    except RuntimeError as e:
        return e


def safetensors_error() -> SafetensorError:
    """What safetensors' save_file raised on a full tmpfs (nmt now serializes with
    safetensors' `save` and writes the bytes itself, but other callers may not)."""
    return SafetensorError(f"Error while serializing: I/O error: {NO_SPACE} (os error 28)")


def test_is_disk_full_knows_how_each_writer_reports_it():
    disk_full = nmt.store.files.is_disk_full
    assert disk_full(full()) and disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert disk_full(torch_save_error()) and disk_full(safetensors_error())
    assert not disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not disk_full(SafetensorError("Error while serializing: (os error 13)"))


def test_refuse_disk_full_names_the_file_and_passes_other_errors(tmp_path):
    path = tmp_path / "x.bin"

    def refuse():
        return nmt.store.files.refuse_disk_full(path, lambda: "kept")

    with pytest.raises(UserError, match=r"x\.bin: cannot be written, the disk is full; kept$"):
        with refuse():
            raise full()
    with pytest.raises(PermissionError, match="Permission denied"), refuse():
        raise PermissionError(errno.EACCES, "Permission denied")
    with pytest.raises(UserError, match="^inner$"), refuse():
        try:
            raise full()
        except OSError:
            raise UserError("inner") from None  # already one line: left as it is
    where = nmt.store.files.refuse_disk_full(tmp_path, lambda: "kept", exact=False)
    with pytest.raises(UserError, match=r"^/cache/a\.arrow: cannot be written"), where:
        raise OSError(errno.ENOSPC, NO_SPACE, "/cache/a.arrow")  # a file it names itself


def test_full_disk_outside_the_model_directory(tmp_path, monkeypatch, train_cli):
    def prepare_data(*args, **kwargs):  # a hub dataset's cache, say
        raise OSError(errno.ENOSPC, NO_SPACE, str(tmp_path / "cache" / "train.arrow"))

    monkeypatch.setattr(nmt.training.setup, "prepare_data", prepare_data)
    monkeypatch.setattr(nmt.training.setup, "prepared_data", prepare_data)
    one_line_error(
        train_cli(tmp_path / "run"),
        f"{tmp_path / 'cache' / 'train.arrow'}: cannot be written, the disk is full",
        "no checkpoint was saved yet",
    )


# ---------------------------------------------------------------- nmt train


def test_full_disk_while_writing_the_tokenizer(tmp_path, monkeypatch, train_cli):
    real = nmt.store.files.write_bytes

    def write_bytes(path: Path, data: bytes) -> None:
        if path.name in TOKENIZER_FILES:
            raise full()
        real(path, data)

    monkeypatch.setattr(nmt.store.files, "write_bytes", write_bytes)
    out = tmp_path / "run"
    one_line_error(
        train_cli(out),
        "spm.model: cannot be written, the disk is full",
        "no checkpoint was saved yet",
        "--overwrite",
    )


@pytest.mark.slow
def test_full_disk_while_saving_a_checkpoint(tmp_path, monkeypatch, train_cli):
    real, calls = torch.save, []

    def save(obj, f, *args, **kwargs):  # the second checkpoint (step 20) finds no room
        calls.append(1)
        if len(calls) == 2:
            raise torch_save_error()
        return real(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    out = tmp_path / "run"
    one_line_error(
        train_cli(out),
        f"{out / 'checkpoints' / 'last'}: cannot be written, the disk is full",
        "checkpoints/last (step 10) is kept",
        "--resume continues",
    )
    monkeypatch.setattr(torch, "save", real)
    result = train_cli(out, resume=True)
    assert result.exit_code == 0, result.output
    assert "resumed at step 10" in result.stdout


@pytest.mark.slow
def test_full_disk_while_appending_metrics(tmp_path, monkeypatch, train_cli):
    real, calls = nmt.store.files.append_jsonl, []

    def append_jsonl(path: Path, obj) -> None:  # the second evaluation: half a line, then full
        calls.append(1)
        if len(calls) == 2:
            with path.open("a") as f:
                f.write('{"step": 20, "val')
            raise full()
        real(path, obj)

    monkeypatch.setattr(nmt.store.files, "append_jsonl", append_jsonl)
    out = tmp_path / "run"
    one_line_error(
        train_cli(out),
        f"{out / 'metrics.jsonl'}: cannot be written, the disk is full",
        "checkpoints/last (step 10) is kept",
    )
    monkeypatch.setattr(nmt.store.files, "append_jsonl", real)
    result = train_cli(out, resume=True)
    assert result.exit_code == 0, result.output
    steps = [row["step"] for row in nmt.store.files.read_jsonl(out / "metrics.jsonl")]
    assert steps == [10, 20]


# ---------------------------------------------------------------- nmt average


@pytest.mark.slow
def test_full_disk_while_writing_the_averaged_model(runner, tmp_path, monkeypatch, train_cli):
    run, new = tmp_path / "run", tmp_path / "averaged"
    extra = ["train.max_steps=4", "train.eval_every=2", "train.keep_checkpoints=2"]
    assert train_cli(run, *extra).exit_code == 0
    before = sorted(tmp_path.iterdir())

    def write_bytes(path, data, label=None):  # weights are serialized, then written
        Path(path).write_bytes(data[:100])  # the part that fitted
        raise full()

    real = nmt.store.checkpoint.write_bytes
    monkeypatch.setattr(nmt.store.checkpoint, "write_bytes", write_bytes)
    result = runner.invoke(app, ["average", str(run), "--output-dir", str(new)])
    one_line_error(
        result,
        f"{new / 'model.safetensors'}: cannot be written, the disk is full",
        f"{run} is unchanged",
    )
    assert sorted(tmp_path.iterdir()) == before  # no half-written directory left behind
    monkeypatch.setattr(nmt.store.checkpoint, "write_bytes", real)
    result = runner.invoke(app, ["average", str(run), "--output-dir", str(new)])
    assert result.exit_code == 0, result.output
