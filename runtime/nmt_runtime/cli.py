"""`nmt-runtime translate -m DIR [--greedy | --beam N] [--threads N] < in > out`, and
`nmt-runtime serve -m DIR [--port N] ...` (nmt_runtime.serve.command: the serve extra).

`translate` reads lines from standard input (or FILE), writes one translation per line, in order;
an empty line gives an empty line. A mistake (a directory that is not an export, a bad
flag value) prints one line, `error: ...`, and exits with status 1.
"""

from __future__ import annotations

import argparse
import io
import itertools
import sys
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO, TextIO

from nmt_runtime import __version__
from nmt_runtime.errors import UserError
from nmt_runtime.serve import command as serve_command


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nmt-runtime", description="Translate with a model exported by nmt export."
    )
    parser.add_argument("--version", action="version", version=f"nmt-runtime {__version__}")
    verbs = parser.add_subparsers(dest="verb", required=True)
    t = verbs.add_parser("translate", help="Translate lines: one output line per input line.")
    t.add_argument("source", nargs="?", default="-", metavar="FILE", help="Input (default: stdin).")
    t.add_argument("-m", "--model", required=True, metavar="DIR", help="An exported directory.")
    search = t.add_mutually_exclusive_group()
    search.add_argument("--beam", type=int, help="Beam size (default: the model's).")
    search.add_argument("--greedy", action="store_true", help="Greedy search: beam size 1.")
    t.add_argument("--nbest", type=int, default=1, help="Write the N best per line as "
                   "INDEX<TAB>SCORE<TAB>TEXT.")  # fmt: skip
    t.add_argument("--length-normalization", choices=["none", "average", "gnmt"])
    t.add_argument("--length-penalty", type=float, help="The GNMT alpha.")
    t.add_argument("--min-length", type=int, help="Tokens before </s> may end a translation.")
    t.add_argument("--batch-tokens", type=int, help="Source tokens per search batch.")
    t.add_argument("--threads", type=int, help="CPU threads per operator (default: the cores).")
    serve_command.add_parser(verbs)
    return parser


def _lines(stream: BinaryIO, name: str) -> Iterator[str]:
    """The input's lines as text, without their line ends; bytes that are not UTF-8 stop
    the command with the line's number."""
    for number, raw in enumerate(stream, 1):
        try:
            yield raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            raise UserError(f"{name}: line {number} is not UTF-8 text; convert it first") from None


def translate(args: argparse.Namespace) -> None:
    from nmt_runtime.translator import Translator

    options = {
        "beam_size": 1 if args.greedy else args.beam,
        "length_normalization": args.length_normalization,
        "length_penalty": args.length_penalty,
        "min_length": args.min_length,
        "batch_tokens": args.batch_tokens,
    }
    translator = Translator.load(args.model, threads=args.threads)
    settings = translator.search_settings(args.nbest, **options)
    source = sys.stdin.buffer if args.source == "-" else _open(args.source)
    name = "standard input" if args.source == "-" else args.source
    chunk = 1 if source.isatty() else 1000  # someone typing waits for each line
    out = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="\n", line_buffering=False)
    try:
        with source:
            _write(translator, _lines(source, name), chunk, args.nbest, options, out)
    finally:
        out.detach()  # standard output stays open for whoever called main()
    if translator.truncated:
        print(
            f"warning: {translator.truncated} line(s) longer than decode.max_input_length "
            f"({settings.max_input_length} tokens) were cut to it",
            file=sys.stderr,
        )


def _write(
    translator: Any,
    lines: Iterator[str],
    chunk: int,
    nbest: int,
    options: dict[str, Any],
    out: TextIO,
) -> None:
    """One line per input line (nbest 1), or INDEX<TAB>SCORE<TAB>TEXT rows, chunk by chunk."""
    index = 0
    while batch := list(itertools.islice(lines, chunk)):
        for found in translator.search(batch, nbest, **options):
            if nbest == 1:
                out.write((found[0].text if found else "") + "\n")
            else:
                rows = [(t.score, t.text) for t in found] or [(0.0, "")]
                out.write("".join(f"{index}\t{s:.4f}\t{text}\n" for s, text in rows))
            index += 1
        out.flush()


def _open(path: str) -> BinaryIO:
    try:
        return open(path, "rb")
    except OSError as e:
        raise UserError(f"the input {path}: cannot be read ({e.strerror or e})") from None


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        if args.verb == "serve":
            serve_command.serve(args)
        else:
            translate(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except BrokenPipeError:
        sys.exit(1)


if __name__ == "__main__":
    main()
