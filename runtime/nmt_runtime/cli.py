"""`nmt-runtime translate -m DIR [--greedy | --beam N] [--threads N] < in > out`.

Reads lines from standard input (or FILE), writes one translation per line, in order;
an empty line gives an empty line. A mistake (a directory that is not an export, a bad
flag value) prints one line, `error: ...`, and exits with status 1.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Iterator, Sequence
from typing import TextIO

from nmt_runtime import __version__
from nmt_runtime.errors import UserError


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
    return parser


def _lines(stream: TextIO) -> Iterator[str]:
    for line in stream:
        yield line.rstrip("\n")


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
    source = sys.stdin if args.source == "-" else _open(args.source)
    chunk = 1 if source.isatty() else 1000  # someone typing waits for each line
    out = sys.stdout
    index = 0
    with source:
        lines = _lines(source)
        while batch := list(itertools.islice(lines, chunk)):
            for found in translator.search(batch, args.nbest, **options):
                if args.nbest == 1:
                    out.write((found[0].text if found else "") + "\n")
                else:
                    rows = [(t.score, t.text) for t in found] or [(0.0, "")]
                    out.write("".join(f"{index}\t{s:.4f}\t{text}\n" for s, text in rows))
                index += 1
            out.flush()
    if translator.truncated:
        print(
            f"warning: {translator.truncated} line(s) longer than decode.max_input_length "
            f"({settings.max_input_length} tokens) were cut to it",
            file=sys.stderr,
        )


def _open(path: str) -> TextIO:
    try:
        return open(path, encoding="utf-8")
    except OSError as e:
        raise UserError(f"the input {path}: cannot be read ({e.strerror or e})") from None


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        translate(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except BrokenPipeError:
        sys.exit(1)


if __name__ == "__main__":
    main()
