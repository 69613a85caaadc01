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
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from nmt.data.corpus import read_lines
from nmt.decode.translate import Translator


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
    args = parser.parse_args()

    lines = read_lines(Path(args.source))
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
            results.update(measure(translator, lines, args, precision, suffix))
        for precision in args.runtime or []:
            runtime = runtime_translator(args.model, precision, threads)
            results.update(measure(runtime, lines, args, f"runtime_{precision}", suffix))
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


def measure(translator: Any, lines: list[str], args, name: str, suffix: str = "") -> dict:
    """{"NAME_beamB_batchN(_threadsT)": timings} for each beam and batch size asked for."""
    decode = translator.recipe.decode if hasattr(translator, "recipe") else translator.decode
    results = {}
    for beam in args.beam or [decode.beam_size]:
        for batch_tokens in args.batch_tokens or [decode.batch_tokens]:
            options = {"beam_size": beam, "batch_tokens": batch_tokens}
            translator.search(lines[:200], **options)  # warm-up
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
            if args.latency_lines:
                one = sorted(
                    _timed(translator, [line], options)[0] * 1000
                    for line in lines[: args.latency_lines]
                )
                report["latency_ms_p50"] = round(one[len(one) // 2], 2)
                report["latency_ms_p90"] = round(one[int(len(one) * 0.9)], 2)
            results[f"{name}_beam{beam}_batch{batch_tokens}{suffix}"] = report
    return results


if __name__ == "__main__":
    main()
