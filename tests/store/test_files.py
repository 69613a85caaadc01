"""Durable writes (nmt.store.files): fsync the file, rename it into place, fsync the directory.

Checked here: write_bytes / write_json and checkpoint saves fsync the temporary file
before the rename and the directory after it (a power loss then leaves the old file or
the new one); JSON written is strict (NaN and infinities become null); a torn last line
of a JSON-lines file is dropped on reading; atomic_output keeps the old file when the
block fails. Every write has a temporary file of its own (two writers of one name never
mix), removed when the write fails; a replaced file keeps its mode; a file with other hard
links and anything but a regular file (a device, a FIFO) are refused, untouched.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from pathlib import Path

import pytest
import torch

from nmt.errors import UserError
from nmt.store import checkpoint, files


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
    tmp = journal[0][1]
    assert re.fullmatch(re.escape(str(tmp_path / ".results.json.")) + r"[a-z0-9_]{8}\.tmp", tmp)
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
    with (
        pytest.raises(RuntimeError, match="decoding failed"),
        files.atomic_output(path, "--output") as f,
    ):
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


# ---------------------------------------------------------------- one name, many writers


def temporaries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_two_writers_of_one_name_never_mix(tmp_path):
    # Two `nmt translate -o same.txt` at once: each writes a temporary file of its own and
    # the last to finish wins whole; neither sees the other's lines, neither fails.
    path = tmp_path / "same.txt"
    with files.atomic_output(path, "--output") as a, files.atomic_output(path, "--output") as b:
        for i in range(3000):  # past the write buffers: both have written to disk
            a.write(f"first writer, line {i}\n")
            b.write(f"second writer, line {i}\n")
    assert path.read_text() == "".join(f"first writer, line {i}\n" for i in range(3000))
    assert temporaries(tmp_path) == []


def test_a_failed_write_removes_its_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "results.json"
    path.write_text("old\n")

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(UserError, match=f"{path}: writing failed \\(No space left on device\\)"):
        files.write_json(path, {"bleu": 1.0})
    with pytest.raises(UserError, match="--output .*: writing failed"):  # noqa: PT012
        with files.atomic_output(path, "--output") as f:
            f.write("new\n")
    assert path.read_text() == "old\n"
    assert temporaries(tmp_path) == []


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o755])
def test_a_replaced_file_keeps_its_mode(tmp_path, mode):
    old, new = tmp_path / "old.txt", tmp_path / "new.txt"
    old.write_text("old\n")
    old.chmod(mode)
    files.write_text(old, "replaced\n")
    with files.atomic_output(new, "--output") as f:
        f.write("new\n")
    assert stat.S_IMODE(old.stat().st_mode) == mode
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(new.stat().st_mode) == 0o666 & ~umask  # as open() makes a file


def test_a_file_with_other_hard_links_is_refused(tmp_path):
    path, other = tmp_path / "out.txt", tmp_path / "backup.txt"
    path.write_text("shared\n")
    os.link(path, other)
    with pytest.raises(UserError, match=f"--output {path} has 1 other hard link: "):  # noqa: PT012
        with files.atomic_output(path, "--output") as f:
            f.write("new\n")
    with pytest.raises(UserError, match=f"{path} has 1 other hard link"):
        files.write_text(path, "new\n")
    assert path.read_text() == other.read_text() == "shared\n"
    assert path.stat().st_ino == other.stat().st_ino and temporaries(tmp_path) == []


def device_like(path: Path, major_minor: tuple[int, int] = (1, 3)) -> Path:
    """A character device at `path` (by default /dev/null's numbers), or a skip: only
    root may make one. A regression then replaces this copy, never the real device."""
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(*major_minor))
    except (PermissionError, AttributeError):
        pytest.skip("making a device node needs root")
    return path


def test_a_device_is_refused_and_left_as_it_is(tmp_path):
    device = device_like(tmp_path / "null")
    with pytest.raises(UserError, match="--output .*null is not a regular file"):  # noqa: PT012
        with files.atomic_output(device, "--output") as f:
            f.write("x\n")
    with pytest.raises(UserError, match="is not a regular file"):
        files.write_bytes(device, b"x")
    assert stat.S_ISCHR(device.stat().st_mode)
    assert temporaries(tmp_path) == []


def test_a_fifo_or_a_directory_is_refused(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(UserError, match=f"--output {tmp_path}/pipe is not a regular file"):
        files.check_target(tmp_path / "pipe", f"--output {tmp_path}/pipe")
    with pytest.raises(UserError, match=f"{tmp_path} is a directory; give a file name"):
        files.write_text(tmp_path, "x")
    assert stat.S_ISFIFO((tmp_path / "pipe").stat().st_mode)


def test_leftovers_are_recognised_in_both_namings():
    names = {"recipe.yaml", "spm.model"}
    assert files.is_temporary(".recipe.yaml.k2_x9abq.tmp", names)  # mkstemp's
    assert files.is_temporary(".spm.model.tmp", names)  # nmt's before mkstemp
    assert not files.is_temporary(".notes.tmp", names)
    assert not files.is_temporary(".recipe.yaml.TOOLONG99.tmp", names)
    assert not files.is_temporary("recipe.yaml.k2_x9abq.tmp", names)
