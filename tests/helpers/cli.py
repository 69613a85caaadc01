"""Helpers for tests that run the `nmt` command line (Typer's CliRunner or a process)."""

from __future__ import annotations

import re
from pathlib import Path

from nmt.cli.main import app
from nmt.data.toy import numbers

# what the CLI puts before each progress or log line when stderr is not a terminal
STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ", re.MULTILINE)

# six toy test pairs: the sentences the CLI tests translate, and their references
PAIRS = numbers("test", 6)
SOURCES = [en for en, _ in PAIRS]
REFERENCES = [de for _, de in PAIRS]


def set_args(overrides: list[str]) -> list[str]:
    """`--set k=v` command-line arguments for a list of overrides."""
    return [arg for item in overrides for arg in ("--set", item)]


def unstamped(text: str) -> str:
    """CLI output with the time stamps of its lines taken off."""
    return STAMP.sub("", text)


def write_lines(path: Path, lines: list[str]) -> Path:
    """Write `lines` to `path`, one per line (UTF-8); return `path`."""
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def assert_user_error(result, *fragments: str) -> str:
    """Non-zero exit, one `error: ...` line on stderr holding every fragment, no traceback.

    (Informational lines such as translate's "decoding with beam 5" may come before it.)
    """
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("error: "), result.stderr
    assert sum(line.startswith("error: ") for line in lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[-1], (fragment, lines[-1])
    assert result.stdout == ""
    return lines[-1]


def translate(runner, model_dir, *args: str, **kwargs):
    """`nmt translate ARGS --model MODEL_DIR --device cpu` through `runner`."""
    return runner.invoke(
        app, ["translate", *args, "--model", str(model_dir), "--device", "cpu"], **kwargs
    )


def one_line_error(result, *parts: str) -> str:
    """The one `error:` line that ended `result` (progress lines may come before it)."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit | None), repr(result.exception)
    lines = result.stderr.splitlines()
    assert [line for line in lines if line.startswith("error: ")] == lines[-1:], result.stderr
    assert "Traceback" not in result.output
    for part in parts:
        assert part in lines[-1], lines[-1]
    return lines[-1]
