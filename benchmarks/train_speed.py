"""Training throughput of a recipe's model on its own training batches, as JSON.

    python benchmarks/train_speed.py recipes/multi30k_de_en.yaml --set data.use=local \
        --steps 200 --precision fp32 --precision bf16

Runs `nmt.training.setup.train_step` (the trainer's own update) on real batches after a warm-up,
synchronizing the GPU around the timed region. Reports real target tokens per second
and peak GPU memory for each precision.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np
import torch

from nmt.data.batching import batch_indices, collate
from nmt.data.prepare import prepare_data
from nmt.data.tokenizer import joint_ids
from nmt.device import make_autocast, pick_device
from nmt.model.seq2seq import build_model
from nmt.recipe.load import load_recipe
from nmt.training.loop import train_step
from nmt.training.setup import OPTIMIZERS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("recipe")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--precision", action="append", choices=["fp32", "bf16"])
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    recipe = load_recipe(args.recipe, args.overrides)
    device = pick_device(args.device)
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")
    data = prepare_data(recipe)
    src, tgt = data.train.src_ids, data.train.tgt_ids
    batches = batch_indices(
        [len(x) for x in src],
        [len(y) for y in tgt],
        recipe.train.batch_tokens,
        np.random.default_rng(recipe.seed),
    )
    results = {}
    for precision in args.precision or [recipe.train.precision]:
        torch.manual_seed(recipe.seed)
        sizes = data.src_tok.vocab_size, data.tgt_tok.vocab_size
        model = build_model(recipe.model, *sizes, target_ids=joint_ids(data.tgt_tok))
        model.to(device)
        optimizer = OPTIMIZERS[recipe.train.optimizer](
            model.parameters(), lr=recipe.train.learning_rate
        )
        cfg = dataclasses.replace(recipe.train, precision=precision)
        autocast = make_autocast(precision, device)

        def run(
            n: int, offset: int, model=model, optimizer=optimizer, cfg=cfg, autocast=autocast
        ) -> int:
            tokens = 0
            for i in range(n):
                batch = collate(src, tgt, batches[(offset + i) % len(batches)])
                tokens += batch.target_tokens
                train_step(model, batch.to(device), batch.target_tokens, optimizer, cfg, autocast)
            return tokens

        run(args.warmup, 0)
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        tokens = run(args.steps, args.warmup)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        results[precision] = {
            "target_tokens_per_second": round(tokens / seconds),
            "steps": args.steps,
            "seconds": round(seconds, 2),
            "mean_target_tokens_per_batch": round(tokens / args.steps),
            "peak_gpu_memory_mb": round(torch.cuda.max_memory_allocated() / 2**20)
            if device.type == "cuda"
            else None,
        }
    print(
        json.dumps(
            {
                "recipe": args.recipe,
                "overrides": args.overrides,
                "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
                "torch": torch.__version__,
                "results": results,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
