"""Durable writes (nmt.files): fsync the file, rename it into place, fsync the directory.

Checked here: write_bytes / write_json and checkpoint saves fsync the temporary file
before the rename and the directory after it (a power loss then leaves the old file or
the new one); JSON written is strict (NaN and infinities become null); a torn last line
of a JSON-lines file is dropped on reading; atomic_output keeps the old file when the
block fails and writes special files in place.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from nmt import checkpoint, files
from nmt.errors import UserError


@pytest.fixture
def journal(monkeypatch):
    """Every fsync and rename, in order: ("fsync", path) and ("replace", src, dst)."""
    events: list[tuple] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", str(src), str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return events


def test_a_file_is_fsynced_then_renamed_then_its_directory_fsynced(tmp_path, journal):
    path = tmp_path / "results.json"
    files.write_json(path, {"bleu": 1.0})
    tmp = str(tmp_path / ".results.json.tmp")
    assert journal == [
        ("fsync", tmp),
        ("replace", tmp, str(path)),
        ("fsync", str(tmp_path)),
    ]


def test_a_checkpoint_is_durable_before_it_replaces_the_last_one(tmp_path, journal):
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
    checkpoint.save_last(tmp_path, model, optimizer, scheduler, {"step": 1})
    checkpoints = tmp_path / "checkpoints"
    (swap,) = [
        i for i, e in enumerate(journal) if e[:3:2] == ("replace", str(checkpoints / "last"))
    ]
    before = [e[1] for e in journal[:swap] if e[0] == "fsync"]
    for name in ("model.safetensors", "optimizer.pt", "trainer.json"):
        assert any(s.startswith(str(checkpoints / "last.tmp")) and name in s for s in before), name
    assert str(checkpoints / "last.tmp") in before  # the new directory's entries
    assert ("fsync", str(checkpoints)) in journal[swap:]  # the rename itself


def test_json_is_strict(tmp_path):
    path = tmp_path / "m.jsonl"
    files.append_jsonl(path, {"loss": float("nan"), "ppl": float("inf"), "x": [float("-inf")]})
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"loss": None, "ppl": None, "x": [None]}


def test_a_torn_last_line_is_dropped(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"step": 1}\n{"step": 2}\n{"st')
    assert files.read_jsonl(path) == [{"step": 1}, {"step": 2}]


def test_atomic_output_keeps_the_old_file_when_the_block_fails(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("precious\n")
    with pytest.raises(RuntimeError), files.atomic_output(path, "--output") as f:
        f.write("half of a new file\n")
        raise RuntimeError("decoding failed")
    assert path.read_text() == "precious\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
    with files.atomic_output(path, "--output") as f:
        f.write("new\n")
    assert path.read_text() == "new\n"


def test_atomic_output_on_a_full_device_is_a_user_error():
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    with pytest.raises(UserError, match="--output /dev/full"):  # noqa: PT012
        with files.atomic_output(Path("/dev/full"), "--output") as f:
            f.write("x" * 100_000)


def test_atomic_output_writes_through_a_symbolic_link(tmp_path):
    target = tmp_path / "real.txt"
    target.write_text("old\n")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    with files.atomic_output(link, "--output") as f:
        f.write("new\n")
    assert link.is_symlink() and target.read_text() == "new\n"
