"""Does the exported model translate as the PyTorch one does? A trained model's outputs, as JSON.

    python benchmarks/export_equality.py --model runs/multi30k_de_en_cpu \\
        --source ../shared/data/multi30k/test_2016_flickr.de.gz \\
        --reference ../shared/data/multi30k/test_2016_flickr.en.gz --beam 1 --beam 5

Exports the model (nmt export, fp32 and int8, into a temporary directory unless
--exported-dir keeps them), translates the whole source with PyTorch fp32 (nmt's
Translator) and with nmt_runtime at each precision, every beam size given (1 is greedy),
and reports per beam: how many lines the runtime's fp32 output equals PyTorch's, the
largest difference between their scores (the length-normalized log-probability the
search ranks by), and BLEU and chrF of each system against the reference with
sacreBLEU's signatures. Same machine, same threads for all.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import sacrebleu
import torch

from nmt.data.corpus import read_lines
from nmt.decode.translate import Translator
from nmt.export.write import export_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--reference", required=True)
    parser.add_argument("--beam", type=int, action="append")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--exported-dir", help="keep the exported directories here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from nmt_runtime import Translator as RuntimeTranslator

    lines = read_lines(Path(args.source))
    references = read_lines(Path(args.reference))
    root = Path(args.exported_dir or tempfile.mkdtemp(prefix="export-equality-"))
    systems: dict[str, Any] = {"pytorch_fp32": Translator.load(args.model, "cpu", "fp32")}
    for precision in ("fp32", "int8"):
        directory = root / precision
        if not directory.exists():
            export_model([Path(args.model)], directory, precision)  # type: ignore[arg-type]
        systems[f"runtime_{precision}"] = RuntimeTranslator.load(directory, threads=args.threads)

    report: dict[str, Any] = {}
    for beam in args.beam or [5]:
        found = {name: best(t.search(lines, beam_size=beam)) for name, t in systems.items()}
        torch_out, runtime_out = found["pytorch_fp32"], found["runtime_fp32"]
        same = sum(a[0] == b[0] for a, b in zip(torch_out, runtime_out, strict=True))
        report[f"beam{beam}"] = {
            "lines": len(lines),
            "runtime_fp32_lines_equal_to_pytorch": same,
            "max_score_difference": max(
                abs(a[1] - b[1]) for a, b in zip(torch_out, runtime_out, strict=True)
            ),
            "int8_lines_equal_to_fp32": sum(
                a[0] == b[0] for a, b in zip(runtime_out, found["runtime_int8"], strict=True)
            ),
            "scores": {name: scores(out, references) for name, out in found.items()},
        }
    print(json.dumps({"model": args.model, "source": args.source, "results": report}, indent=1))


def best(found: list[list[Any]]) -> list[tuple[str, float]]:
    """Each line's best translation and its score ("" and 0 for an empty line)."""
    return [(f[0].text, float(f[0].score)) if f else ("", 0.0) for f in found]


def scores(out: list[tuple[str, float]], references: list[str]) -> dict[str, Any]:
    """BLEU and chrF of the outputs, with sacreBLEU's signatures."""
    hypotheses = [text for text, _ in out]
    bleu, chrf = sacrebleu.BLEU(), sacrebleu.CHRF()
    return {
        "bleu": round(bleu.corpus_score(hypotheses, [references]).score, 2),
        "bleu_signature": str(bleu.get_signature()),
        "chrf": round(chrf.corpus_score(hypotheses, [references]).score, 2),
        "chrf_signature": str(chrf.get_signature()),
    }


if __name__ == "__main__":
    main()
