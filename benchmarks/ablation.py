"""Train architecture variants of one recipe for the same epochs; print a table and JSON.

    python benchmarks/ablation.py recipes/multi30k_de_en.yaml --set data.use=local \
        --epochs 5 --only luong_general,bahdanau

Each variant is a list of `--set` overrides on top of the recipe (VARIANTS below). Every
run writes its own model directory under --runs and is scored on the recipe's test split
with its decode settings; the table gives test BLEU, training tokens/s (training steps
only) and wall-clock minutes for the whole run.
"""

from __future__ import annotations

import argparse
import json
import time

from nmt.recipe.load import load_recipe
from nmt.training.setup import train

VARIANTS: dict[str, list[str]] = {
    "luong_general+feed": ["model.attention=luong_general", "model.input_feeding=true"],
    "luong_general": ["model.attention=luong_general", "model.input_feeding=false"],
    "luong_dot+feed": ["model.attention=luong_dot", "model.input_feeding=true"],
    "luong_dot": ["model.attention=luong_dot", "model.input_feeding=false"],
    "luong_concat+feed": ["model.attention=luong_concat", "model.input_feeding=true"],
    "luong_concat": ["model.attention=luong_concat", "model.input_feeding=false"],
    "bahdanau": ["model.attention=bahdanau"],
    "none": ["model.attention=none", "model.reverse_input=false"],
    "none+reverse": ["model.attention=none", "model.reverse_input=true"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("recipe")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--only", help="comma-separated variant names (default: all)")
    parser.add_argument("--runs", default="runs/ablation")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    names = args.only.split(",") if args.only else list(VARIANTS)
    rows = []
    for name in names:
        overrides = [
            *args.overrides,
            *VARIANTS[name],
            f"train.max_epochs={args.epochs}",
            f"output_dir={args.runs}/{name}",
        ]
        recipe = load_recipe(args.recipe, overrides)
        start = time.perf_counter()
        results = train(recipe, args.device, overwrite=True)
        minutes = (time.perf_counter() - start) / 60
        row = {
            "variant": name,
            "overrides": VARIANTS[name],
            "test_bleu": results.test.bleu if results.test else None,
            "valid_bleu": results.valid_bleu,
            "train_tokens_per_second": results.train_tokens_per_second,
            "minutes": round(minutes, 2),
            "device": results.device,
            "signature": results.test.signature["bleu"] if results.test else None,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    print("\n| variant | test BLEU | valid BLEU | train tok/s | minutes |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['variant']} | {r['test_bleu']} | {r['valid_bleu']} | "
            f"{r['train_tokens_per_second'] / 1000:.1f}k | {r['minutes']} |"
        )


if __name__ == "__main__":
    main()
