"""Options shared by several verbs: the device, and decode settings that override the recipe."""

from __future__ import annotations

import os
import stat
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import torch
import typer

from nmt.errors import UserError
from nmt.recipe.schema import MAX_BEAM, MAX_LENGTH_PENALTY, DecodeConfig
from nmt.store.files import check_target, same_file

if TYPE_CHECKING:
    from nmt.decode.translate import Translator

SHOWN_LINES = 10  # line numbers of cut sources a warning names


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class Precision(str, Enum):
    fp32 = "fp32"
    bf16 = "bf16"
    int8 = "int8"


class Normalization(str, Enum):
    none = "none"
    average = "average"
    gnmt = "gnmt"


DeviceOption = Annotated[Device, typer.Option(help="Where to run: CUDA when available, or cpu.")]
ENSEMBLE_HELP = (
    "Model directory from nmt train. Give --model more than once to decode with an "
    "ensemble: the mean of the models' probabilities at every step (the models must share "
    "their tokenizers; they may differ in architecture). Decode settings come from the "
    "first model's recipe unless a flag overrides them."
)
Models = Annotated[list[Path], typer.Option("--model", "-m", metavar="<dir>", help=ENSEMBLE_HELP)]
Beam = Annotated[int | None, typer.Option(help="Beam size (default: the recipe's).")]
Greedy = Annotated[bool, typer.Option(help="Greedy search: beam size 1.")]
LengthNormalization = Annotated[
    Normalization | None, typer.Option(help="How hypotheses of different lengths are ranked.")
]
LengthPenalty = Annotated[
    float | None, typer.Option(help="Length penalty: the GNMT alpha (decode.length_penalty).")
]
CoveragePenalty = Annotated[
    float | None,
    typer.Option(
        help="Coverage penalty: Wu et al.'s beta, against source words left untranslated "
        "(decode.coverage_penalty; 0: none). Needs attention."
    ),
]
ReplaceUnk = Annotated[
    bool,
    typer.Option(
        "--replace-unk",
        help="Replace each <unk> in the output by the source word it attended to most, or by "
        "that word's entry in --unk-dictionary (decode.replace_unk). Needs attention.",
    ),
]
UnkDictionary = Annotated[
    Path | None,
    typer.Option(
        metavar="FILE",
        help="With --replace-unk: source_word<TAB>target_word lines, looked up before a "
        "source word is copied (decode.unk_dictionary).",
    ),
]
MinLength = Annotated[int | None, typer.Option(help="Tokens before </s> may end a translation.")]
PrecisionOption = Annotated[
    Precision,
    typer.Option(
        help="Arithmetic of decoding: fp32; bf16 (fast on CPUs with AVX-512 BF16 or AMX); "
        "int8 (CPU only: linear layers quantized)."
    ),
]
Threads = Annotated[
    int | None,
    typer.Option(help="CPU threads for PyTorch's operators (default: the cores it sees)."),
]


# PyTorch takes any count and then crashes (100,000 threads: a segmentation fault).
MAX_THREADS = 1024


def use_threads(threads: int | None) -> None:
    """Set PyTorch's intra-op threads; on a 2-core CPU more threads than cores only thrash."""
    if threads is None:
        return
    if threads < 1:
        raise UserError(f"--threads {threads}: give 1 or more threads")
    if threads > MAX_THREADS:
        raise UserError(f"--threads {threads}: give at most {MAX_THREADS} threads")
    torch.set_num_threads(threads)


def decode_overrides(
    beam: int | None,
    greedy: bool,
    length_normalization: Normalization | None,
    length_penalty: float | None,
    min_length: int | None,
    coverage_penalty: float | None = None,
) -> dict[str, object]:
    """The decode flags as keyword arguments of `Translator.decode_config` (None keeps the
    recipe's value), each checked here first so that its error names the flag typed."""
    if greedy and beam is not None:
        raise UserError(f"--beam {beam} and --greedy contradict each other; give one of them")
    if beam is not None and not 1 <= beam <= MAX_BEAM:
        raise UserError(f"--beam {beam}: give a beam of 1 (greedy) to {MAX_BEAM}")
    if length_penalty is not None and not length_penalty >= 0:  # NaN fails too
        raise UserError(f"--length-penalty {length_penalty}: give 0 or more (0.6 is usual)")
    if coverage_penalty is not None and not 0 <= coverage_penalty <= MAX_LENGTH_PENALTY:
        raise UserError(
            f"--coverage-penalty {coverage_penalty}: give 0 to {MAX_LENGTH_PENALTY:g} "
            "(0.2 is usual)"
        )
    if min_length is not None and min_length < 0:
        raise UserError(f"--min-length {min_length}: give 0 or more tokens")
    return {
        "beam_size": 1 if greedy else beam,
        "length_normalization": length_normalization.value if length_normalization else None,
        "length_penalty": length_penalty,
        "min_length": min_length,
        "coverage_penalty": coverage_penalty,
    }


def unk_overrides(replace_unk: bool, unk_dictionary: Path | None) -> dict[str, object]:
    """--replace-unk and --unk-dictionary as `decode_overrides` gives decode flags (None
    keeps the recipe's value: --replace-unk left out is not false); a dictionary that is no
    file is refused here, naming the flag."""
    if unk_dictionary is not None and not unk_dictionary.is_file():
        what = "a directory" if unk_dictionary.is_dir() else "no such file"
        raise UserError(
            f"--unk-dictionary {unk_dictionary}: {what}; give a file of "
            "source_word<TAB>target_word lines"
        )
    return {
        "replace_unk": True if replace_unk else None,
        "unk_dictionary": None if unk_dictionary is None else str(unk_dictionary),
    }


def settings_line(settings: DecodeConfig) -> str:
    """The decode settings in words, as the summary line before translating shows them:
    the length penalty only where it applies (gnmt), and the input cap."""
    normalization = f"{settings.length_normalization} length normalization"
    if settings.length_normalization == "gnmt":
        normalization += f" (length penalty {settings.length_penalty})"
    limit = settings.max_input_length
    cap = "inputs never cut" if limit is None else f"inputs cut at {limit} tokens"
    beta = getattr(settings, "coverage_penalty", 0)  # an exported model's settings have none
    if beta > 0:
        normalization += f", coverage penalty {beta}"
    if getattr(settings, "replace_unk", False):
        normalization += ", <unk> replaced"
        if settings.unk_dictionary is not None:
            normalization += f" (dictionary {settings.unk_dictionary})"
    return f"beam {settings.beam_size}, {normalization}, min length {settings.min_length}, {cap}"


def cut_warning(translator: Translator, settings: DecodeConfig) -> str:
    """The warning after translating: how many source lines decode.max_input_length cut,
    and the first ones' line numbers (from 1)."""
    count, lines = translator.truncated, translator.truncated_lines
    shown = ", ".join(str(i + 1) for i in lines[:SHOWN_LINES])
    more = f" (the first {SHOWN_LINES} of {count})" if count > SHOWN_LINES else ""
    return (
        f"warning: {count} line{'s were' if count > 1 else ' was'} longer than "
        f"decode.max_input_length ({settings.max_input_length} tokens) and cut to it: "
        f"line{'s' if count > 1 else ''} {shown}{more}; to translate "
        f"{'them' if count > 1 else 'it'} whole, set decode.max_input_length: null in the "
        "model's recipe.yaml"
    )


def check_output(path: Path | None, option: str) -> None:
    """An output file must be one nmt may replace, checked before any work is done: a new
    name in an existing directory, or a regular file without other hard links (never a
    directory, a device such as /dev/null, a FIFO or a socket; see nmt.store.files)."""
    if path is not None:
        check_target(path, f"{option} {path}")


def check_plot_dir(path: Path | None, option: str = "--plot") -> None:
    """A directory for image files must be one, or a name nmt can create one at: checked
    before any work (`make_plot_dir` creates it once the work starts)."""
    if path is None:
        return
    if path.exists() and not path.is_dir():
        raise UserError(
            f"{option} {path} is a file, not a directory; {option} names a directory to "
            "draw the images in: give a new name or an existing directory"
        )
    above = next((p for p in path.parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise UserError(f"{option} {path}: {above} is a file, not a directory; give another")


def make_plot_dir(path: Path, option: str = "--plot") -> None:
    """Create the directory `check_plot_dir` accepted (and its parents), or one line why not."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        reason = e.strerror or e
        raise UserError(f"{option} {path}: cannot create the directory ({reason})") from None


def file_status(path: Path) -> os.stat_result | None:
    """The file's stat (device and inode name it, whatever its name), None if it is absent."""
    try:
        return os.stat(path)
    except (OSError, ValueError):  # absent, a path through a file, a NUL in the name
        return None


def same_path(a: Path, b: Path) -> bool:
    """Whether two names are one file: an existing one by device and inode (hard links
    and symbolic links included), names of files yet to be written by where they lead."""
    a_stat, b_stat = file_status(a), file_status(b)
    if a_stat is not None and b_stat is not None:
        return same_file(a_stat, b_stat)
    return a.resolve() == b.resolve()


def check_not_an_input(
    output: Path | None, option: str, inputs: list[tuple[str, os.stat_result | None]]
) -> None:
    """Refuse an output that is one of the input files, named `(what, its stat)`: writing
    it would destroy what is being read. (A terminal or a pipe can be both.)"""
    mine = file_status(output) if output is not None else None
    if mine is None or not stat.S_ISREG(mine.st_mode):
        return
    for name, theirs in inputs:
        if theirs is not None and same_file(mine, theirs):
            raise UserError(
                f"{option} {output} is the input file too (the same file as {name}); "
                "write the output somewhere else"
            )
