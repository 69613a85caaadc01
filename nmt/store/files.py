"""Durable file writes: a crash or a power loss leaves the old file or the new one.

Every file nmt writes goes to a temporary file of its own beside the target, named
`.NAME.XXXXXXXX.tmp` by `mkstemp` (so two processes writing one name never share a
temporary file), is flushed and fsynced, gets the permissions of the file it replaces (a
new file: 0666 less the umask), and is renamed over its final name; the directory is
fsynced after the rename so that the rename itself survives a power loss. A write that
fails removes its temporary file.

Only regular files are replaced. A directory, a device, a FIFO or a socket at the name is
refused: renaming over /dev/null would replace the device itself. So is a file with other
hard links: the rename would give this name the new contents and leave the other names
with the old ones, silently. A symbolic link is written through (its target is replaced,
the link kept). Every refusal and failure is one UserError naming what was given.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import stat
import tempfile
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import IO, Any

from nmt.errors import UserError

NAME_KEPT = 100  # characters of the target's name in its temporary file's name
RANDOM_PART = re.compile(r"(.+)\.[a-z0-9_]{8}")  # NAME.XXXXXXXX: mkstemp's 8 characters


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new entry in `directory` durable (a no-op where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot fsync a directory
    finally:
        os.close(fd)


def is_temporary(name: str, targets: Collection[str]) -> bool:
    """Whether `name` is a temporary file nmt left while writing one of `targets`:
    `.NAME.XXXXXXXX.tmp`, or `.NAME.tmp` as nmt named them before it used mkstemp."""
    if not (name.startswith(".") and name.endswith(".tmp")):
        return False
    inner = name[1 : -len(".tmp")]
    named = RANDOM_PART.fullmatch(inner)
    return inner in targets or (named is not None and named.group(1) in targets)


def replace_durably(tmp: Path, path: Path) -> None:
    """Rename a finished (closed) temporary file or directory over `path`, durably."""
    os.replace(tmp, path)
    fsync_dir(path.parent)


def through_link(path: Path) -> Path:
    """The file a write to `path` replaces: a symbolic link's target, else `path`."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def check_target(path: Path, label: str) -> os.stat_result | None:
    """The stat of the regular file a write to `path` would replace (None: a new file),
    or a UserError naming `label` when the write must not or cannot happen."""
    real = through_link(path)
    try:
        found = os.stat(real)
    except FileNotFoundError:
        parent = real.parent
        if not parent.is_dir():
            what = "is not a directory" if parent.exists() else "does not exist"
            raise UserError(f"{label}: {parent} {what}; create it or write elsewhere") from None
        return None
    except OSError as e:  # a file where a directory should be, a loop of links, no access
        raise UserError(f"{label}: cannot be written ({e.strerror or e})") from None
    if stat.S_ISDIR(found.st_mode):
        raise UserError(f"{label} is a directory; give a file name")
    if not stat.S_ISREG(found.st_mode):
        raise UserError(
            f"{label} is not a regular file (a device, a FIFO or a socket) and nmt replaces "
            "only files; give a file name"
        )
    if found.st_nlink > 1:
        others = found.st_nlink - 1
        raise UserError(
            f"{label} has {others} other hard link{'s' if others > 1 else ''}: nmt writes a "
            "new file and renames it over this name, which would leave the other links with "
            "the old contents; remove them (or copy the file) first, or give another name"
        )
    return found


def _new_file_mode() -> int:
    """0666 less the process's umask: the mode `open` would give a new file."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def _replacing(path: Path, label: str, text: bool) -> Iterator[IO[Any]]:
    """An open temporary file that replaces `path` when the block ends without an error.

    Failures to create, flush, fsync or rename become a UserError naming `label`; errors
    raised by the block itself pass unchanged. On any error the temporary file is removed.
    """
    real = through_link(path)
    old = check_target(real, label)
    mode = stat.S_IMODE(old.st_mode) & 0o777 if old is not None else _new_file_mode()
    with _labelled(label, "cannot be written"):
        fd, name = tempfile.mkstemp(
            prefix=f".{real.name[:NAME_KEPT]}.", suffix=".tmp", dir=real.parent
        )
    tmp = Path(name)
    try:
        f = os.fdopen(fd, "w", encoding="utf-8") if text else os.fdopen(fd, "wb")
        try:
            with _labelled(label, "cannot be written"):
                os.chmod(tmp, mode)
            yield f
            with _labelled(label, "writing failed"):
                f.flush()
                os.fsync(f.fileno())
        finally:
            with contextlib.suppress(OSError):  # after a failure: data not written is dropped
                f.close()
        with _labelled(label, "writing failed"):
            replace_durably(tmp, real)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def replacing(path: Path, label: str | None = None) -> Iterator[IO[bytes]]:
    """A binary file that replaces `path` durably when the block finishes without an
    error (see the module's docstring); `label` names it in errors (default: the path)."""
    with _replacing(path, label or str(path), text=False) as f:
        yield f


def write_bytes(path: Path, data: bytes, label: str | None = None) -> None:
    with replacing(path, label) as f, _labelled(label or str(path), "writing failed"):
        f.write(data)


def write_text(path: Path, text: str, label: str | None = None) -> None:
    write_bytes(path, text.encode("utf-8"), label)


def finite_or_none(obj: Any) -> Any:
    """`obj` with every NaN or infinity replaced by None, so it is strict JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite_or_none(v) for v in obj]
    return obj


def to_json(obj: Any, indent: int | None = None) -> str:
    """Strict JSON (no bare NaN or Infinity, which JSON does not have): those become null."""
    return json.dumps(finite_or_none(obj), indent=indent, ensure_ascii=False, allow_nan=False)


def write_json(path: Path, obj: Any) -> None:
    write_text(path, to_json(obj, indent=2) + "\n")


def append_jsonl(path: Path, obj: Any) -> None:
    """One strict-JSON line appended and fsynced (a line is never half there on resume:
    `read_jsonl` drops a torn last line)."""
    with path.open("a", encoding="utf-8") as f:
        f.write(to_json(obj) + "\n")
        f.flush()
        os.fsync(f.fileno())


MEND = "mend or delete that line (nothing was changed)"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The objects of a JSON-lines file (see `numbered_jsonl`)."""
    return [row for _, row in numbered_jsonl(path)]


def numbered_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for each line of a JSON-lines file; blank lines are skipped.

    The last line, if it is not JSON (or not whole UTF-8), was cut off by a crash while it
    was appended, and is left out. Any other line that is not a JSON object is damage: a
    UserError names the file and the line, since leaving it out (or stopping there) would
    silently lose the evaluations written after it.
    """
    if not path.is_file():
        return []
    lines = path.read_bytes().split(b"\n")
    if not lines[-1].strip():
        lines.pop()  # the end of the last whole line
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            if number == len(lines):
                break  # torn by a crash while it was appended
            reason = e.msg if isinstance(e, json.JSONDecodeError) else "not UTF-8"
            raise UserError(f"{path}: line {number} is damaged ({reason}); {MEND}") from None
        if not isinstance(row, dict):
            raise UserError(f"{path}: line {number} is not a JSON object; {MEND}")
        rows.append((number, row))
    return rows


# A full disk, or a user's exhausted quota: the errors `refuse_disk_full` turns into one line.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def _disk_full_error(error: BaseException) -> BaseException | None:
    """The error in `error`'s chain (itself, what it was raised from or while handling)
    that says the disk (or the quota) is full, or None. Libraries wrap it: torch.save
    raises a RuntimeError while handling the OSError; safetensors a SafetensorError whose
    text ends "(os error 28)"."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in DISK_FULL:
            return current
        if any(f"(os error {number})" in str(current) for number in DISK_FULL):
            return current
        hidden = current.__suppress_context__  # `raise ... from None` ends the chain
        current = current.__cause__ or (None if hidden else current.__context__)
    return None


def is_disk_full(error: BaseException) -> bool:
    """Whether `error` comes of a full disk or an exhausted quota (ENOSPC, EDQUOT)."""
    return _disk_full_error(error) is not None


@contextlib.contextmanager
def refuse_disk_full(path: Path, kept: Callable[[], str], exact: bool = True) -> Iterator[None]:
    """Writes to `path` in the block: a full disk becomes one UserError that names `path`
    and says what is kept (`kept()`, asked only then); other errors pass unchanged. With
    `exact=False`, `path` is only where the block writes (a directory): the file the
    error names, if it names one, is named instead."""
    try:
        yield
    except UserError:
        raise  # already one line (a write labelled nearer to it, say)
    except Exception as e:
        found = _disk_full_error(e)
        if found is None:
            raise
        named = None if exact else getattr(found, "filename", None)
        raise UserError(f"{named or path}: cannot be written, the disk is full; {kept()}") from None


def same_file(a: os.stat_result, b: os.stat_result) -> bool:
    """Two stat results of one file: the same device and inode (hard links included)."""
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


class LabelledWriter:
    """A text file whose write errors (a full disk, say) become one UserError naming it."""

    def __init__(self, file: IO[str], label: str):
        self.file, self.label = file, label

    def write(self, text: str) -> None:
        with _labelled(self.label, "writing failed"):
            self.file.write(text)

    def flush(self) -> None:
        with _labelled(self.label, "writing failed"):
            self.file.flush()


@contextlib.contextmanager
def _labelled(label: str, what: str) -> Iterator[None]:
    try:
        yield
    except OSError as e:
        raise UserError(f"{label}: {what} ({e.strerror or e})") from None


@contextlib.contextmanager
def atomic_output(path: Path, option: str) -> Iterator[LabelledWriter]:
    """A text file that replaces `path` only if the block finishes without an error.

    Until then the old file (if any) stays as it was; on an error the temporary file is
    removed. Written as the module's docstring says: through a symbolic link; refused
    for anything but a regular file or a new name, and for a file with other hard links.
    Failures to open, write or rename (a full disk, a directory without write
    permission) become a UserError naming `option` and the path; errors raised by the
    block itself pass unchanged.
    """
    label = f"{option} {path}"
    with _replacing(path, label, text=True) as f:
        yield LabelledWriter(f, label)
