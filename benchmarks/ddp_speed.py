"""Training throughput with 1 and N data-parallel processes under torchrun, as JSON.

    python benchmarks/ddp_speed.py recipes/multi30k_de_en_cpu.yaml --procs 1 --procs 2 \
        --steps 60 --threads 1 --device cpu --set data.use=local

Runs `torchrun --nproc-per-node=N -m nmt train RECIPE` for --steps updates (no
evaluation until the end, no test set), each process with --threads CPU threads, and
reads the run's training speed from results.json: target tokens per second of training
time, summed over the ranks (each rank trains on its own batches of the recipe's size).
Reports the median of --repeat runs per N and the scaling efficiency
tokens/s(N) / (N × tokens/s(1)). On GPUs it is the same command with --device cuda.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_run(args, procs: int, out: Path) -> float:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += [f"--nproc-per-node={procs}", "-m", "nmt", "train", args.recipe]
    sets = [f"train.max_steps={args.steps}", "train.max_epochs=null", "train.eval_every=0"]
    sets += ["train.max_minutes=null", "data.test=null", "train.save_every=0"]
    for item in [*sets, *args.set]:
        command += ["--set", item]
    command += ["--output-dir", str(out), "--device", args.device, "--overwrite"]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"torchrun failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return float(json.loads((out / "results.json").read_text())["train_tokens_per_second"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("recipe")
    parser.add_argument("--procs", type=int, action="append", help="processes (repeatable)")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per process")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--set", action="append", default=[], help="recipe override")
    args = parser.parse_args()
    procs = args.procs or [1, 2]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in procs:
            runs = [one_run(args, n, Path(tmp) / f"p{n}") for _ in range(args.repeat)]
            results[str(n)] = {
                "target_tokens_per_second": round(statistics.median(runs)),
                "runs": [round(r) for r in runs],
            }
    base = results[str(procs[0])]["target_tokens_per_second"] / procs[0]
    for n in procs:
        speed = results[str(n)]["target_tokens_per_second"]
        results[str(n)]["scaling_efficiency"] = round(speed / (n * base), 3)
    print(
        json.dumps(
            {
                "recipe": args.recipe,
                "steps": args.steps,
                "device": args.device,
                "threads_per_process": args.threads,
                "overrides": args.set,
                "results": results,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
