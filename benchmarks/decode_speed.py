"""Decoding time of a trained model on a file, for several beam and batch sizes, as JSON.

    python benchmarks/decode_speed.py --model runs/multi30k_de_en \
        --source ../shared/data/multi30k/test_2016_flickr.de.gz --beam 1 --beam 5 \
        --batch-tokens 8000 --batch-tokens 2000

Warms up on the first lines, then times `Translator.search` over the whole file
(tokenization and detokenization included) with the GPU synchronized around it, and
reports the median of --repeat runs: sentences/s and output tokens/s (models that write
longer outputs take more steps, so sentences/s alone can mislead).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

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
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    lines = read_lines(Path(args.source))
    results = {}
    for precision in args.precision or ["fp32"]:
        translator = Translator.load(args.model, args.device, precision)
        results.update(measure(translator, lines, args, precision))
    cuda = translator.device.type == "cuda"
    print(
        json.dumps(
            {
                "model": args.model,
                "source": args.source,
                "sentences": len(lines),
                "device": torch.cuda.get_device_name() if cuda else "cpu",
                "threads": torch.get_num_threads(),
                "results": results,
            },
            indent=1,
        )
    )


def measure(translator: Translator, lines: list[str], args, precision: str) -> dict:
    """{"PRECISION_beamB_batchN": timings} for each beam and batch size asked for."""
    cuda = translator.device.type == "cuda"
    results = {}
    for beam in args.beam or [translator.recipe.decode.beam_size]:
        for batch_tokens in args.batch_tokens or [translator.recipe.decode.batch_tokens]:
            options = {"beam_size": beam, "batch_tokens": batch_tokens}
            translator.search(lines[:200], **options)  # warm-up
            times = []
            for _ in range(args.repeat):
                if cuda:
                    torch.cuda.synchronize()
                start = time.perf_counter()
                found = translator.search(lines, **options)
                if cuda:
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - start)
            median = sorted(times)[len(times) // 2]
            tokens = sum(len(f[0].target_pieces) + 1 for f in found if f)  # </s> counted
            words = sum(len(f[0].text.split()) for f in found if f)
            results[f"{precision}_beam{beam}_batch{batch_tokens}"] = {
                "seconds_median": round(median, 3),
                "sentences_per_second": round(len(lines) / median, 1),
                "output_tokens_per_second": round(tokens / median),
                "mean_output_words": round(words / len(lines), 2),
                "runs": [round(t, 3) for t in times],
            }
    return results


if __name__ == "__main__":
    main()
