"""The input of `nmt translate`, in chunks of lines: big ones from a file, and from a pipe
or a terminal whatever lines have arrived when the input pauses.

A pipe that stays open (`mkfifo`, a program that writes a line and waits for the answer)
must be answered line by line, or the writer waits for ever; a file or a redirected
stdin is read in chunks of `CHUNK` lines, which batch well.
"""

from __future__ import annotations

import os
import select
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

from nmt.data.corpus import decode_line, decode_lines, iter_lines

CHUNK = 1000  # lines translated at a time from a file, or at most from a pipe
READ_BYTES = 1 << 16


def _chunked(lines: Iterator[str]) -> Iterator[list[str]]:
    chunk: list[str] = []
    size = CHUNK
    for line in lines:
        chunk.append(line)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _ready(fd: int) -> bool:
    """Whether reading `fd` would return at once (data or end of input is there)."""
    return bool(select.select([fd], [], [], 0)[0])


def pipe_chunks(fd: int, name: str, limit: int = CHUNK) -> Iterator[list[str]]:
    """The complete lines that have arrived on `fd` each time its input pauses (at most
    `limit` at a time); an unfinished last line waits for its newline or the end."""
    pending, lines, number = b"", [], 0
    while True:
        if lines and (len(lines) >= limit or not _ready(fd)):
            yield lines[:limit]
            lines = lines[limit:]
            continue
        data = os.read(fd, READ_BYTES)  # waits for input when none is there
        if not data:
            break
        *complete, pending = (pending + data).split(b"\n")
        for raw in complete:
            number += 1
            lines.append(decode_line(raw, name, number).strip())
    if pending:
        lines.append(decode_line(pending, name, number + 1).strip())
    for start in range(0, len(lines), limit):
        yield lines[start : start + limit]


def is_interactive(source: str) -> bool:
    """Whether `source` is stdin fed by a pipe or a terminal (answered as lines arrive)."""
    if source != "-":
        return False
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (OSError, ValueError, AttributeError):  # stdin replaced by an in-memory object
        return False
    return not stat.S_ISREG(mode)


def input_chunks(source: str) -> Iterator[list[str]]:
    """The lines to translate, chunk by chunk: `source` is a file name or - for stdin."""
    if source != "-":
        return _chunked(iter_lines(Path(source), "the input"))
    if is_interactive(source):
        return pipe_chunks(sys.stdin.fileno(), "standard input")
    lines = (text.strip() for _, text in decode_lines(sys.stdin.buffer, "standard input"))
    return _chunked(lines)


def count_lines(source: str) -> int | None:
    """How many lines a regular input file holds (read once more), else None."""
    if source == "-":
        return None
    path = Path(source)
    if not path.is_file():  # a FIFO can be read once only
        return None
    return sum(1 for _ in iter_lines(path, "the input"))
