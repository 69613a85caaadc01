"""Decoding speed of a trained model on a file, PyTorch beside the torch-free runtime, as JSON.

    python benchmarks/decode_speed.py --model runs/multi30k_de_en \\
        --source ../shared/data/multi30k/test_2016_flickr.de.gz --beam 1 --beam 5 \\
        --precision fp32 --precision bf16 --precision int8 \\
        --runtime fp32 --runtime int8 --threads 1 --threads 2 --latency-lines 50

Warms up on the first lines, then times `search` over the whole file (tokenization and
detokenization included) with the GPU synchronized around it, and reports the median of
--repeat runs: sentences/s, output tokens/s (models that write longer outputs take more
steps, so sentences/s alone can mislead) and the mean output length. --runtime exports
the model (nmt export, into a temporary directory) at each precision given and times
nmt_runtime's Translator the same way. --latency-lines N also times the first N lines
one at a time (the serving case): the median and 90th percentile milliseconds per line.
Keys: PRECISION_beamB_batchN for PyTorch, runtime_PRECISION_beamB_batchN for the
runtime, each with _threadsT when --threads is given.

--constraints N (repeatable, e.g. 0, 1, 3) with --constraint-source REFERENCE_FILE times
terminology constraints: each line gets N phrases, single words drawn (seeded, --seed)
from its reference line (fewer if it has fewer words the model can write), and the key
ends in _constraintsN. Constraints need a beam of 2 or more and nmt's own Translator:
beam 1 and the runtime are timed with N = 0 only.

--option KEY=VALUE (repeatable) also times nmt's search with that option, each alone
(`attention=true`: the attention and word alignments of every output; `coverage_penalty=0.2`;
`replace_unk=true`), keyed ..._KEY-VALUE. --score-reference REFERENCE_FILE also times
Translator.score (teacher-forced scores of the given translations): pairs/s, key NAME_score.

    python benchmarks/decode_speed.py --model runs/multi30k_de_en \\
        --source ../shared/data/multi30k/test_2016_flickr.de.gz --beam 5 \\
        --constraints 0 --constraints 1 --constraints 3 \\
        --constraint-source ../shared/data/multi30k/test_2016_flickr.en.gz
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from nmt.data.corpus import read_lines
from nmt.decode.translate import Translator
from nmt.vocab import UNK


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--beam", type=int, action="append")
    parser.add_argument(
        "--batch-tokens", type=int, action="append", help="source tokens per batch (repeatable)"
    )
    parser.add_argument("--precision", choices=["fp32", "bf16", "int8"], action="append")
    parser.add_argument(
        "--runtime", choices=["fp32", "int8"], action="append", help="time nmt_runtime too"
    )
    parser.add_argument("--threads", type=int, action="append", help="CPU threads (repeatable)")
    parser.add_argument("--latency-lines", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--constraints", type=int, action="append", help="phrases per line (repeatable)"
    )
    parser.add_argument("--constraint-source", help="the references the phrases come from")
    parser.add_argument("--seed", type=int, default=0, help="for drawing the phrases")
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="also time nmt's search with this option (JSON value), e.g. attention=true",
    )
    parser.add_argument("--score-reference", help="also time Translator.score against this")
    args = parser.parse_args()
    args.variants = [parse_option(parser, option) for option in args.option]
    if args.constraints and not args.constraint_source:
        parser.error("--constraints needs --constraint-source REFERENCE_FILE")

    lines = read_lines(Path(args.source))
    references = read_lines(Path(args.constraint_source)) if args.constraint_source else []
    if references and len(references) != len(lines):
        parser.error(f"--constraint-source has {len(references)} lines, --source {len(lines)}")
    results: dict[str, Any] = {}
    device = "cpu"
    for threads in args.threads or [None]:
        suffix = "" if threads is None else f"_threads{threads}"
        if threads is not None:
            torch.set_num_threads(threads)
        for precision in args.precision or ([] if args.runtime else ["fp32"]):
            translator = Translator.load(args.model, args.device, precision)
            if translator.device.type == "cuda":
                device = torch.cuda.get_device_name()
            results.update(measure(translator, lines, args, precision, suffix, references))
            if args.score_reference:
                targets = read_lines(Path(args.score_reference))
                results[f"{precision}_score{suffix}"] = time_scoring(
                    translator, lines, targets, args
                )
        for precision in args.runtime or []:
            runtime = runtime_translator(args.model, precision, threads)
            name = f"runtime_{precision}"
            results.update(measure(runtime, lines, args, name, suffix, references))
    print(
        json.dumps(
            {
                "model": args.model,
                "source": args.source,
                "sentences": len(lines),
                "device": device,
                "threads": args.threads or torch.get_num_threads(),
                "results": results,
            },
            indent=1,
        )
    )


_EXPORTED: dict[str, Path] = {}


def runtime_translator(model: str, precision: str, threads: int | None) -> Any:
    """nmt_runtime's Translator for `model` exported at `precision` (once per precision)."""
    from nmt.export.write import export_model
    from nmt_runtime import Translator as RuntimeTranslator

    if precision not in _EXPORTED:
        directory = Path(tempfile.mkdtemp(prefix="decode-speed-")) / precision
        export_model([Path(model)], directory, precision)  # type: ignore[arg-type]
        _EXPORTED[precision] = directory
    return RuntimeTranslator.load(_EXPORTED[precision], threads=threads)


def _synchronize(translator: Any) -> None:
    device = getattr(translator, "device", None)
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize()


def _timed(translator: Any, lines: list[str], options: dict[str, int]) -> tuple[float, list]:
    _synchronize(translator)
    start = time.perf_counter()
    found = translator.search(lines, **options)
    _synchronize(translator)
    return time.perf_counter() - start, found


def parse_option(parser: argparse.ArgumentParser, option: str) -> tuple[str, Any]:
    """--option KEY=VALUE as (KEY, VALUE), VALUE read as JSON (true, 0.2, "text")."""
    key, sep, value = option.partition("=")
    if not sep:
        parser.error(f"--option {option}: give KEY=VALUE, e.g. attention=true")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def time_scoring(translator: Translator, lines: list[str], targets: list[str], args) -> dict:
    """Translator.score over every (line, target) pair: the median of --repeat runs."""
    translator.score(lines[:200], targets[:200])  # warm-up
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        translator.score(lines, targets)
        times.append(time.perf_counter() - start)
    median = sorted(times)[len(times) // 2]
    return {
        "seconds_median": round(median, 3),
        "pairs_per_second": round(len(lines) / median, 1),
        "runs": [round(t, 3) for t in times],
    }


def draw_constraints(
    translator: Translator, references: list[str], count: int, seed: int
) -> list[list[str]]:
    """`count` words of each reference line, drawn at random (seeded), that the model can
    write (no <unk> piece), as one-word phrases."""
    rng = random.Random(seed)
    out = []
    for reference in references:
        words = reference.split()
        ids = translator.tgt_tokenizer.encode(words) if words else []
        known = [w for w, x in zip(words, ids, strict=True) if x and UNK not in x]
        out.append(rng.sample(known, min(count, len(known))))
    return out


def measure(
    translator: Any,
    lines: list[str],
    args,
    name: str,
    suffix: str = "",
    references: list[str] | None = None,
) -> dict:
    """{"NAME_beamB_batchN(_threadsT)(_constraintsC)": timings} for each beam, batch size
    and number of constraints per line asked for."""
    decode = translator.recipe.decode if hasattr(translator, "recipe") else translator.decode
    results = {}
    counts = args.constraints if references else None
    for beam in args.beam or [decode.beam_size]:
        for batch_tokens in args.batch_tokens or [decode.batch_tokens]:
            for count in counts or [None]:
                if count and (beam == 1 or not isinstance(translator, Translator)):
                    continue  # constraints need a beam and nmt's own Translator
                options: dict[str, Any] = {"beam_size": beam, "batch_tokens": batch_tokens}
                key = f"{name}_beam{beam}_batch{batch_tokens}{suffix}"
                if count is not None:
                    key += f"_constraints{count}"
                if count:  # 0: the search without constraints, exactly
                    assert references is not None
                    constraints = draw_constraints(translator, references, count, args.seed)
                    options["constraints"] = constraints
                results[key] = _report(translator, lines, args, options)
                if count or not isinstance(translator, Translator):
                    continue  # the --option variants: nmt's search, without constraints
                for option, value in args.variants:
                    variant = f"{key}_{option}-{value}".replace(" ", "")
                    results[variant] = _report(translator, lines, args, {**options, option: value})
    return results


def _report(translator: Any, lines: list[str], args, options: dict[str, Any]) -> dict:
    """The timings of `search` over `lines` with `options` (the median of --repeat runs)."""
    warm = {**options}
    if "constraints" in warm:
        warm["constraints"] = warm["constraints"][:200]
    translator.search(lines[:200], **warm)  # warm-up (the first lines, their constraints)
    times = []
    for _ in range(args.repeat):
        seconds, found = _timed(translator, lines, options)
        times.append(seconds)
    median = sorted(times)[len(times) // 2]
    tokens = sum(len(f[0].target_pieces) + 1 for f in found if f)  # </s> counted
    words = sum(len(f[0].text.split()) for f in found if f)
    report = {
        "seconds_median": round(median, 3),
        "sentences_per_second": round(len(lines) / median, 1),
        "output_tokens_per_second": round(tokens / median),
        "mean_output_tokens": round(tokens / len(lines), 2),
        "mean_output_words": round(words / len(lines), 2),
        "runs": [round(t, 3) for t in times],
    }
    if "constraints" in options:
        given = sum(map(len, options["constraints"]))  # lines with few words get fewer
        report["mean_constraints_per_line"] = round(given / len(lines), 2)
    if args.latency_lines:
        one = sorted(
            _timed(translator, [line], _line(options, i))[0] * 1000
            for i, line in enumerate(lines[: args.latency_lines])
        )
        report["latency_ms_p50"] = round(one[len(one) // 2], 2)
        report["latency_ms_p90"] = round(one[int(len(one) * 0.9)], 2)
    return report


def _line(options: dict[str, Any], i: int) -> dict[str, Any]:
    """`options` for line i alone (its own constraints)."""
    if "constraints" not in options:
        return options
    return {**options, "constraints": options["constraints"][i : i + 1]}


if __name__ == "__main__":
    main()
