"""`nmt translate -` answers each piped line when the input pauses, not after 1,000 lines."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import threading

import pytest

from nmt.cli.reading import pipe_chunks
from nmt.decode.translate import Translator
from nmt.errors import UserError

TIMEOUT = 60


def read_line(stream, timeout: float = TIMEOUT) -> str:
    """One line from a process's stdout, or fail after `timeout` seconds."""
    ready, _, _ = select.select([stream], [], [], timeout)
    assert ready, "no answer in time: the line was not translated while the pipe stayed open"
    return stream.readline().decode("utf-8").rstrip("\n")


def start(model_dir, stdin=subprocess.PIPE, stderr=subprocess.DEVNULL):
    command = [sys.executable, "-c", "from nmt.cli.main import main; main()", "translate", "-"]
    command += ["--model", str(model_dir), "--device", "cpu"]
    return subprocess.Popen(  # unbuffered: select sees exactly what is still unread
        command, stdin=stdin, stdout=subprocess.PIPE, stderr=stderr, bufsize=0
    )


@pytest.fixture(scope="module")
def expected(model_dir):
    translator = Translator.load(model_dir, device="cpu")
    return lambda lines: translator.translate(lines)


@pytest.mark.slow
def test_each_line_is_answered_while_the_pipe_stays_open(model_dir, expected):
    process = start(model_dir)
    try:
        process.stdin.write(b"1 2 3\n")
        process.stdin.flush()
        assert read_line(process.stdout) == expected(["1 2 3"])[0]
        process.stdin.write(b"4 5\n")
        process.stdin.flush()
        assert read_line(process.stdout) == expected(["4 5"])[0]
        process.stdin.close()
        assert process.wait(TIMEOUT) == 0
    finally:
        process.kill()


@pytest.mark.slow
def test_lines_written_together_are_answered_in_order_and_a_last_line_needs_no_newline(
    model_dir, expected
):
    process = start(model_dir)
    try:
        process.stdin.write(b"7 8\n9 0 1\n2\n")
        process.stdin.flush()
        assert [read_line(process.stdout) for _ in range(3)] == expected(["7 8", "9 0 1", "2"])
        process.stdin.write(b"3 3")  # no newline: translated when the input ends
        process.stdin.close()
        assert read_line(process.stdout) == expected(["3 3"])[0]
        assert process.wait(TIMEOUT) == 0
    finally:
        process.kill()


@pytest.mark.slow
def test_at_a_terminal_a_hint_is_shown_and_lines_are_answered(model_dir, expected):
    controller, terminal = pty.openpty()
    process = start(model_dir, stdin=terminal, stderr=subprocess.PIPE)
    os.close(terminal)
    try:
        os.write(controller, b"5 6\n")
        assert read_line(process.stdout) == expected(["5 6"])[0]
        os.write(controller, b"\x04")  # Ctrl-D
        assert process.wait(TIMEOUT) == 0
        assert "type a sentence and press Enter; Ctrl-D ends" in process.stderr.read().decode()
    finally:
        process.kill()
        os.close(controller)


@pytest.mark.slow
def test_a_pipe_gives_no_hint(model_dir):
    process = start(model_dir, stderr=subprocess.PIPE)
    _, err = process.communicate(b"1\n", timeout=TIMEOUT)
    assert process.returncode == 0 and "Ctrl-D" not in err.decode()


def test_the_chunker_yields_what_arrived_before_a_pause_and_holds_a_half_line():
    read, write = os.pipe()
    chunks = pipe_chunks(read, "standard input")
    try:
        os.write(write, b"one\ntwo\nthr")
        assert next(chunks) == ["one", "two"]  # "thr" waits for the rest of its line
        os.write(write, b"ee\nfour\n")
        assert next(chunks) == ["three", "four"]
        later = threading.Timer(0.2, lambda: os.write(write, b"five\n"))
        later.start()
        assert next(chunks) == ["five"]  # waited for input, then answered it alone
        os.write(write, b"six")
        os.close(write)
        write = -1
        assert list(chunks) == [["six"]]
    finally:
        os.close(read)
        if write >= 0:
            os.close(write)


def test_the_chunker_caps_a_chunk_and_names_a_bad_line():
    read, write = os.pipe()
    os.write(write, b"a\nb\nc\ncaf\xe9\n")
    os.close(write)
    with pytest.raises(UserError, match="standard input:4: not valid UTF-8"):
        list(pipe_chunks(read, "standard input", limit=2))
    os.close(read)
    read, write = os.pipe()
    os.write(write, b"a\nb\nc\n")
    os.close(write)
    assert list(pipe_chunks(read, "standard input", limit=2)) == [["a", "b"], ["c"]]
    os.close(read)
