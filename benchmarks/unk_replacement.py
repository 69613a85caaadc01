"""Test BLEU of a word-level model with and without UNK replacement (--replace-unk), as JSON.

    nmt train recipes/multi30k_de_en_words.yaml --set data.use=local --device cpu
    python benchmarks/unk_replacement.py --model runs/multi30k_de_en_words

Translates the test source once, searching with attention, and scores the outputs as the
model wrote them and with each <unk> replaced (nmt.decode.unk, what `nmt translate
--replace-unk` writes: replacing changes no search, only the text): sacreBLEU's BLEU and
chrF with their signatures against the raw reference, a paired bootstrap test between the
two (nmt.metrics.compare), and how common <unk> is: the share of output tokens and of
outputs holding one, and of source and reference words outside the model's vocabularies.
The same scores, one system at a time, from the command line:

    nmt evaluate bleu --model runs/multi30k_de_en_words --source S --reference R
    nmt evaluate bleu --model runs/multi30k_de_en_words --source S --reference R --replace-unk

--unk-dictionary adds a run with a dictionary (source_word<TAB>target_word lines);
--lines N scores the first N lines only (a quick check, not a measurement).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from nmt.data.corpus import read_aligned
from nmt.decode.translate import Translator
from nmt.decode.unk import replace_unks
from nmt.metrics import compare, score
from nmt.vocab import UNK

MULTI30K = "../shared/data/multi30k/test_2016_flickr.{lang}.gz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="a model directory (word tokenizer)")
    parser.add_argument("--source", help="default: Multi30k's test_2016_flickr, local files")
    parser.add_argument("--reference")
    parser.add_argument("--beam", type=int, help="default: the recipe's decode.beam_size")
    parser.add_argument("--unk-dictionary", help="also score replacement with this dictionary")
    parser.add_argument("--lines", type=int, help="only the first N lines (a quick check)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    translator = Translator.load(args.model, args.device)
    lang = translator.recipe.data
    source = Path(args.source or MULTI30K.format(lang=lang.source_lang))
    reference = Path(args.reference or MULTI30K.format(lang=lang.target_lang))
    sources, refs = read_aligned(source, reference, purpose="score")
    sources, refs = sources[: args.lines], refs[: args.lines]
    settings = translator.decode_config(beam_size=args.beam)
    start = time.perf_counter()
    found = translator.search(sources, attention=True, settings=settings)
    seconds = time.perf_counter() - start
    plain = [f[0].text if f else "" for f in found]
    systems = {"plain": plain}
    runs = {"replace_unk": None}  # name: dictionary
    if args.unk_dictionary is not None:
        runs["replace_unk_dictionary"] = args.unk_dictionary
    for name, dictionary in runs.items():
        on = dataclasses.replace(settings, replace_unk=True, unk_dictionary=dictionary)
        replaced = replace_unks(found, sources, on, translator)
        systems[name] = [f[0].text if f else "" for f in replaced]
    report: dict[str, Any] = {
        "model": args.model,
        "source": str(source),
        "reference": str(reference),
        "sentences": len(sources),
        "decode": {"beam_size": settings.beam_size, "translate_seconds": round(seconds, 1)},
        **unk_shares(translator, found, sources, refs),
    }
    target = lang.target_lang
    for name, hyps in systems.items():
        report[name] = score(hyps, refs, ("bleu", "chrf"), target)
        if name != "plain":
            report[name]["against_plain"] = compare(hyps, plain, refs, ("bleu",), target)["bleu"]
    print(json.dumps(report, indent=1, ensure_ascii=False))


def unk_shares(
    translator: Translator, found: list, sources: list[str], refs: list[str]
) -> dict[str, float]:
    """How common <unk> is: in the outputs (on their ids), and in the source and reference
    words that the model's vocabularies leave out."""
    best = [f[0].target_ids or [] for f in found if f]
    tokens = sum(len(ids) for ids in best)
    src_ids = translator.src_tokenizer.encode(sources)
    ref_ids = translator.tgt_tokenizer.encode(refs)

    def share(rows: list[list[int]]) -> float:
        return round(sum(row.count(UNK) for row in rows) / max(sum(map(len, rows)), 1), 4)

    return {
        "output_unk_token_share": round(sum(ids.count(UNK) for ids in best) / max(tokens, 1), 4),
        "outputs_with_unk_share": round(sum(UNK in ids for ids in best) / max(len(found), 1), 4),
        "source_unk_word_share": share(src_ids),
        "reference_unk_word_share": share(ref_ids),
    }


if __name__ == "__main__":
    main()
