"""The files the CLI reads and writes: nothing the user had is lost, every input kind works.

Checked here: `nmt translate --output` (and `--attention-out`) refuses to be the input,
compared by device and inode (a hard link, stdin redirected from the output file) or to
be each other; both are written under a temporary name, so an error at line N (bytes that
are not UTF-8 after the first chunk) leaves an older output exactly as it was; an output
that cannot be written (a directory under /proc, a file size limit) ends in one `error:`
line naming the option and the path, for `nmt evaluate bleu --output` too; every option
that writes a file refuses what is no regular file (a device, a FIFO) and leaves it as it
is; standard output on a full device is one `error:` line and exit status 1. An
input that is a directory says so; a FIFO and bash's `<(...)`, plain or gzipped, are read
whole. `--beam` with `--greedy` is refused, and so is `--compare` with the hypothesis.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import resource
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.cli import REFERENCES, SOURCES, assert_user_error, translate, write_lines

import nmt.cli.reading
from nmt.cli.main import app
from nmt.data.corpus import read_corpus, read_lines
from nmt.decode.translate import Translator, attention_record
from nmt.recipe.sources import FilesSource

NMT = Path(sys.executable).parent / "nmt"
LINES = [SOURCES[0], "", SOURCES[1]]


@pytest.fixture(scope="module")
def translator(model_dir) -> Translator:
    return Translator.load(model_dir, "cpu")


@pytest.fixture
def source_file(tmp_path) -> Path:
    return write_lines(tmp_path / "in.en", LINES)


def run_nmt(*args: str, stdin=None, shell: str | None = None) -> subprocess.CompletedProcess:
    """The installed `nmt` script in a real process (or a bash command line using it)."""
    command = ["bash", "-c", shell] if shell else [str(NMT), *args]
    return subprocess.run(
        command, stdin=stdin, capture_output=True, text=True, timeout=120, check=False
    )


def one_error_line(done: subprocess.CompletedProcess, *fragments: str) -> None:
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])


@contextlib.contextmanager
def fifo(path: Path, data: bytes) -> Iterator[Path]:
    """A named pipe that a thread fills with `data` once. A reader that opens it a second
    time gets an end of file within seconds, so a regression fails instead of hanging."""
    os.mkfifo(path)
    done = threading.Event()

    def feed() -> None:
        with contextlib.suppress(BrokenPipeError), open(path, "wb") as f:
            f.write(data)
        while not done.wait(3):
            with contextlib.suppress(OSError):  # ENXIO: no reader waiting
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    try:
        yield path
    finally:
        done.set()
        with contextlib.suppress(OSError):  # release a writer still waiting for a reader
            os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
        thread.join(10)


def encoded(lines: list[str], gz: bool) -> bytes:
    data = "".join(f"{line}\n" for line in lines).encode("utf-8")
    return gzip.compress(data) if gz else data


# ---------------------------------------------------------------- inputs


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_a_fifo_is_read_whole(tmp_path, gz):
    with fifo(tmp_path / "pipe", encoded(["Grüße", "", "aus Köln"], gz)) as path:
        assert read_lines(path) == ["Grüße", "", "aus Köln"]


def test_parallel_fifos_make_a_corpus(tmp_path):
    with (
        fifo(tmp_path / "t.de", encoded(["eins", "zwei"], gz=True)),
        fifo(tmp_path / "t.en", encoded(["one", "two"], gz=False)),
    ):
        corpus = read_corpus(FilesSource(str(tmp_path / "t.{lang}")), "de", "en")
    assert corpus.source == ["eins", "zwei"] and corpus.target == ["one", "two"]


def test_translate_a_fifo(runner, model_dir, translator, tmp_path):
    with fifo(tmp_path / "pipe", encoded(LINES, gz=True)) as path:
        result = translate(runner, model_dir, str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout.split("\n")[:-1] == translator.translate(LINES)


@pytest.mark.slow
@pytest.mark.parametrize("make", ["cat", "gzip -c"])
def test_translate_a_process_substitution(model_dir, translator, source_file, make):
    model = f"--model {model_dir} --device cpu"
    done = run_nmt(shell=f"'{NMT}' translate <({make} '{source_file}') {model}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:-1] == translator.translate(LINES)


def test_translate_an_input_that_is_a_directory(runner, model_dir, tmp_path):
    assert_user_error(translate(runner, model_dir, str(tmp_path)), str(tmp_path), "is a directory")


def test_evaluate_a_hypothesis_that_is_a_directory(runner, tmp_path):
    ref = write_lines(tmp_path / "ref.de", REFERENCES)
    result = runner.invoke(app, ["evaluate", "bleu", str(tmp_path), "--reference", str(ref)])
    assert_user_error(result, str(tmp_path), "is a directory")


# ---------------------------------------------------------------- outputs that are inputs


@pytest.mark.parametrize("flag", ["--output", "--attention-out"])
def test_translate_refuses_a_hard_link_to_its_input(runner, model_dir, source_file, flag):
    link = source_file.with_name("link.en")
    os.link(source_file, link)
    before = source_file.read_bytes()
    result = translate(runner, model_dir, str(source_file), flag, str(link))
    assert_user_error(result, f"{flag} {link}", str(source_file), "the same file")
    assert source_file.read_bytes() == before


def test_translate_refuses_stdin_redirected_from_its_output(model_dir, source_file):
    before = source_file.read_bytes()
    with source_file.open("rb") as stdin:
        done = run_nmt(
            "translate",
            "-",
            "-o",
            str(source_file),
            "--model",
            str(model_dir),
            "--device",
            "cpu",
            stdin=stdin,
        )
    one_error_line(done, f"--output {source_file}", "standard input")
    assert source_file.read_bytes() == before


@pytest.mark.parametrize("existing", [False, True], ids=["new", "hard-link"])
def test_translate_refuses_one_file_for_output_and_attention(
    runner, model_dir, source_file, tmp_path, existing
):
    out, attention = tmp_path / "out.txt", tmp_path / "out.txt"
    if existing:
        write_lines(out, ["precious"])
        attention = tmp_path / "attention.jsonl"
        os.link(out, attention)
    args = ["--output", str(out), "--attention-out", str(attention)]
    result = translate(runner, model_dir, str(source_file), *args)
    assert_user_error(result, f"--output {out}", f"--attention-out {attention}", "same file")
    if existing:
        assert out.read_text(encoding="utf-8") == "precious\n"
    else:
        assert not out.exists()


def test_evaluate_output_refuses_to_overwrite_the_reference(runner, model_dir, tmp_path):
    src = write_lines(tmp_path / "s.en", SOURCES)
    ref = write_lines(tmp_path / "r.de", REFERENCES)
    link = tmp_path / "hyp.de"
    os.link(ref, link)
    args = ["--source", str(src), "--reference", str(ref), "--output", str(link)]
    result = runner.invoke(app, ["evaluate", "bleu", "--model", str(model_dir), *args])
    assert_user_error(result, f"--output {link}", f"--reference {ref}")
    assert ref.read_text(encoding="utf-8").splitlines() == REFERENCES


@pytest.mark.parametrize("hard_link", [False, True])
def test_evaluate_compare_with_itself(runner, tmp_path, hard_link):
    hyp = write_lines(tmp_path / "hyp.de", REFERENCES[::-1])
    ref = write_lines(tmp_path / "ref.de", REFERENCES)
    other = hyp
    if hard_link:
        other = tmp_path / "other.de"
        os.link(hyp, other)
    args = [str(hyp), "--reference", str(ref), "--compare", str(other)]
    result = runner.invoke(app, ["evaluate", "bleu", *args])
    assert_user_error(result, f"--compare {other}", str(hyp), "itself")


# ---------------------------------------------------------------- a failure keeps old files


@pytest.mark.parametrize("from_stdin", [False, True], ids=["file", "stdin"])
def test_a_bad_line_after_the_first_chunk_keeps_the_old_outputs(
    runner, model_dir, tmp_path, monkeypatch, from_stdin
):
    monkeypatch.setattr(nmt.cli.reading, "CHUNK", 2)  # line 4 is read after 2 were written
    data = encoded(SOURCES[:3], gz=False) + b"caf\xe9\n" + encoded(SOURCES[3:4], gz=False)
    src = tmp_path / "in.en"
    src.write_bytes(data)
    out = write_lines(tmp_path / "out.de", ["an earlier translation"])
    attention = write_lines(tmp_path / "attention.jsonl", ["{}"])
    args = ["--output", str(out), "--attention-out", str(attention)]
    if from_stdin:
        result = translate(runner, model_dir, "-", *args, input=data)
    else:
        result = translate(runner, model_dir, str(src), *args)
    where = "standard input:4" if from_stdin else f"{src}:4"
    assert_user_error(result, where, "not valid UTF-8")
    assert out.read_text(encoding="utf-8") == "an earlier translation\n"
    assert attention.read_text(encoding="utf-8") == "{}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["attention.jsonl", "in.en", "out.de"]


# ---------------------------------------------------------------- outputs that cannot be written

UNWRITABLE = ["/proc/nmt-test/out.txt", "/proc/out.txt", "/dev/full"]
needs_linux = pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /proc and /dev/full")


@needs_linux
@pytest.mark.parametrize("where", UNWRITABLE)
def test_translate_output_that_cannot_be_written(runner, model_dir, source_file, where):
    result = translate(runner, model_dir, str(source_file), "--output", where)
    assert result.exit_code == 1
    assert_user_error(result, f"--output {where}")


def test_translate_attention_that_cannot_be_written_keeps_the_old_output(
    model_dir, translator, source_file, tmp_path
):
    # A file size limit stands in for a full disk: the attention cannot be written, the
    # shorter translations can; the old output must stay as it was.
    out = write_lines(tmp_path / "out.de", ["an earlier translation"])
    attention = tmp_path / "attention.jsonl"
    found = translator.search(LINES, attention=True)
    translations = sum(len(f[0].text.encode()) + 1 if f else 1 for f in found)
    limit = max(translations, len(out.read_bytes())) + 10
    records = "".join(attention_record(i, f[0] if f else None) for i, f in enumerate(found))
    assert len(records.encode()) > limit
    done = subprocess.run(
        [str(NMT), "translate", str(source_file), "--model", str(model_dir), "--device", "cpu"]
        + ["--output", str(out), "--attention-out", str(attention)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)),
    )
    one_error_line(done, f"--attention-out {attention}", "writing failed")
    assert out.read_text(encoding="utf-8") == "an earlier translation\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.en", "out.de"]


@needs_linux
@pytest.mark.parametrize("where", UNWRITABLE)
def test_evaluate_output_that_cannot_be_written(runner, model_dir, tmp_path, where):
    src = write_lines(tmp_path / "s.en", SOURCES)
    ref = write_lines(tmp_path / "r.de", REFERENCES)
    args = ["--source", str(src), "--reference", str(ref), "--output", where, "--device", "cpu"]
    result = runner.invoke(app, ["evaluate", "bleu", "--model", str(model_dir), *args])
    assert result.exit_code == 1
    assert_user_error(result, f"--output {where}")


# ---------------------------------------------------------------- contradictory flags


def test_translate_beam_and_greedy_together(runner, model_dir, source_file):
    result = translate(runner, model_dir, str(source_file), "--beam", "3", "--greedy")
    assert_user_error(result, "--beam 3", "--greedy")


def test_evaluate_beam_and_greedy_together(runner, model_dir, tmp_path):
    src = write_lines(tmp_path / "s.en", SOURCES)
    ref = write_lines(tmp_path / "r.de", REFERENCES)
    args = ["--source", str(src), "--reference", str(ref), "--beam", "2", "--greedy"]
    result = runner.invoke(app, ["evaluate", "bleu", "--model", str(model_dir), *args])
    assert_user_error(result, "--beam 2", "--greedy")


# ---------------------------------------------------------------- outputs that are no files


@contextlib.contextmanager
def drained_fifo(path: Path) -> Iterator[Path]:
    """A named pipe with a reader that drains whatever is written to it, so that a writer
    never blocks (as a regression that writes into the FIFO would)."""
    os.mkfifo(path)

    def drain() -> None:
        with open(path, "rb") as f:  # waits for a writer: the release below, or nmt
            while f.read(65536):
                pass

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):  # ENXIO: the reader already left
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(10)


def device_copy(path: Path, numbers: tuple[int, int]) -> Path:
    """A character device node at `path` with the numbers of /dev/null (1, 3) or /dev/full
    (1, 7), or a skip: only root may make one. A regression replaces the copy in tmp_path,
    never a device of the machine."""
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(*numbers))
    except PermissionError:
        pytest.skip("making a device node needs root")
    return path


def writers(model_dir: Path, tmp_path: Path) -> dict[str, list[str]]:
    """Every command's option that writes a file, as the arguments before its value."""
    src = write_lines(tmp_path / "s.en", SOURCES)
    ref = write_lines(tmp_path / "r.de", REFERENCES)
    hyp = write_lines(tmp_path / "h.de", REFERENCES[::-1])
    model = ["--model", str(model_dir), "--device", "cpu"]
    scored = ["--source", str(src), "--reference", str(ref)]
    return {
        "translate --output": ["translate", str(src), *model, "--output"],
        "translate --attention-out": ["translate", str(src), *model, "--attention-out"],
        "evaluate bleu --output": ["evaluate", "bleu", *model, *scored, "--output"],
        "evaluate by-length --plot": ["evaluate", "by-length", str(hyp), *scored, "--plot"],
        "plot --output": ["plot", str(model_dir), "--output"],
    }


WRITERS = [
    "translate --output",
    "translate --attention-out",
    "evaluate bleu --output",
    "evaluate by-length --plot",
    "plot --output",
]


@pytest.mark.parametrize("kind", ["null", "full", "fifo"])
@pytest.mark.parametrize("writer", WRITERS)
def test_an_output_that_is_not_a_file_is_refused(runner, model_dir, tmp_path, writer, kind):
    # `nmt plot --output /dev/null` as root would have replaced the device with a PNG.
    folder = tmp_path / "special"
    folder.mkdir()
    with contextlib.ExitStack() as stack:
        if kind == "fifo":
            special = stack.enter_context(drained_fifo(folder / "pipe"))
        else:
            special = device_copy(folder / kind, (1, 3) if kind == "null" else (1, 7))
        result = runner.invoke(app, [*writers(model_dir, tmp_path)[writer], str(special)])
    option = writer.split()[-1]
    assert_user_error(result, f"{option} {special} is not a regular file")
    assert [p.name for p in folder.iterdir()] == [special.name]  # as it was, nothing beside
    is_kind = stat.S_ISFIFO if kind == "fifo" else stat.S_ISCHR
    assert is_kind(special.stat().st_mode)


@pytest.mark.parametrize("command", ["translate", "evaluate bleu"])
def test_standard_output_that_cannot_be_written(model_dir, tmp_path, command):
    # `nmt translate x --model M > /dev/full`: one error line, no traceback, exit 1.
    full = Path("/dev/full")
    if not (full.exists() and stat.S_ISCHR(full.stat().st_mode)):
        full = device_copy(tmp_path / "full", (1, 7))
    src = write_lines(tmp_path / "s.en", SOURCES)
    ref = write_lines(tmp_path / "r.de", REFERENCES)
    if command == "translate":
        args = ["translate", str(src), "--model", str(model_dir), "--device", "cpu"]
    else:
        args = ["evaluate", "bleu", str(ref), "--reference", str(ref)]
    with full.open("w") as stdout:
        done = subprocess.run(
            [str(NMT), *args], stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=120
        )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert errors == ["error: standard output: writing failed (No space left on device)"]
