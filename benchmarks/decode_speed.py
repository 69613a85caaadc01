"""Decoding time of a trained model on a file, for several beam sizes, as JSON.

    python benchmarks/decode_speed.py --model runs/multi30k_de_en \
        --source ../shared/data/multi30k/test_2016_flickr.de.gz --beam 1 --beam 5

Warms up on the first lines, then times `Translator.translate` over the whole file
(tokenization and detokenization included) with the GPU synchronized around it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from nmt.corpus import read_lines
from nmt.translate import Translator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--beam", type=int, action="append")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    translator = Translator.load(args.model, args.device)
    lines = read_lines(Path(args.source))
    cuda = translator.device.type == "cuda"
    results = {}
    for beam in args.beam or [translator.recipe.decode.beam_size]:
        translator.translate(lines[:200], beam_size=beam)  # warm-up
        times = []
        for _ in range(args.repeat):
            if cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            translator.translate(lines, beam_size=beam)
            if cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        best = sorted(times)[len(times) // 2]
        results[f"beam{beam}"] = {
            "seconds_median": round(best, 3),
            "sentences_per_second": round(len(lines) / best, 1),
            "runs": [round(t, 3) for t in times],
        }
    print(
        json.dumps(
            {
                "model": args.model,
                "source": args.source,
                "sentences": len(lines),
                "device": torch.cuda.get_device_name() if cuda else "cpu",
                "results": results,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
