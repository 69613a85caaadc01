"""nmt and OpenNMT-py trained side by side on Tatoeba German→English for the same wall-clock
budget, the same model, the same pieces, both scored on valid the same way, as JSON (issue 23,
item 6).

    python benchmarks/tatoeba_peer.py --peer-onmt /tmp/peer-cpu/V [--minutes 60] \
        [--workdir /tmp/tatoeba-peer] [--output r.json]

Run from the project root with ../shared beside it, on an otherwise idle 2-core machine:

  1. `nmt prepare recipes/tatoeba_de_en_cpu.yaml` (joint SentencePiece unigram 8k on the
     train split); OpenNMT-py gets the same pieces: train and valid encoded with that
     SentencePiece model into piece files, its vocabulary built from them (build_vocab).
  2. Both train at once, each pinned to one core (`taskset -c 0` / `-c 1`) with one thread,
     so neither steals the other's core and both see the same machine: nmt with
     train.max_minutes = --minutes instead of the recipe's max_steps (counted from its first
     step; it evaluates greedy valid BLEU at each epoch's end and at the stop and keeps the
     best weights), OpenNMT-py 3.5.1
     (../shared/peers' venv: emb 256, 2×bi-LSTM 256 per direction, 2-layer LSTM decoder 512,
     Luong general attention with input feeding, dropout 0.3, Adam 1e-3, clip 5, 4096-token
     batches, seed 42; fp32: it has no bf16 on the CPU) stopped --minutes after it starts
     its training loop, saving a checkpoint every --onmt-save steps.
  3. Scores on valid (Tatoeba's test split is held back), both with sacreBLEU on detokenized
     text: OpenNMT-py's checkpoints every --onmt-choose steps and its last are scored greedy
     and the best is kept (as nmt keeps its best greedy evaluation); then each kept model
     decodes valid with beam 5 and GNMT length penalty 0.6 (OpenNMT-py: -length_penalty wu
     -alpha 0.6) and greedy, with two threads, one after the other.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import sentencepiece as spm
import yaml
from data_scale import ONMT_MODEL  # the same model as the data-scale benchmark's
from sacrebleu.metrics import BLEU, CHRF

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "tatoeba_de_en_cpu.yaml"
SHARED = next((p / "shared" for p in ROOT.parents[:2] if (p / "shared").is_dir()), ROOT.parent)
TATOEBA = SHARED / "data" / "tatoeba-deu-eng"
STUBS = SHARED / "peers" / "stubs"  # empty modules for imports OpenNMT-py makes but never uses
NMT = str(Path(sys.executable).with_name("nmt"))
ONMT_STEP = re.compile(r"Step (\d+)/")
ONMT_SPEED = re.compile(r"(\d+)/(\d+) tok/s")
DATA = [f"data.{split}={TATOEBA}/{split}.{{lang}}.gz" for split in ("train", "valid")]


def lines(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def onmt_env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(STUBS),
        "PYTHONWARNINGS": "ignore",
        "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1",
        "PYTHONUNBUFFERED": "1",
    }


def prepare(args) -> tuple[Path, Path]:
    """The prepared dataset (nmt) and the piece files + vocabulary (OpenNMT-py)."""
    prepared, pieces = args.workdir / "prepared", args.workdir / "onmt-data"
    if not (prepared / "manifest.json").is_file():
        cmd = [NMT, "prepare", str(RECIPE), "--output-dir", str(prepared)]
        cmd += [x for item in DATA for x in ("--set", item)]
        subprocess.run(cmd, check=True, cwd=ROOT)
    if not (pieces / "vocab.tgt").is_file():
        pieces.mkdir(parents=True, exist_ok=True)
        sp = spm.SentencePieceProcessor(model_file=str(prepared / "spm.model"))
        for split in ("train", "valid"):
            for lang in ("de", "en"):
                text = lines(TATOEBA / f"{split}.{lang}.gz")
                encoded = (" ".join(p) for p in sp.encode(text, out_type=str))
                (pieces / f"{split}.sp.{lang}").write_text("\n".join(encoded) + "\n", "utf-8")
        config = onmt_config(args, pieces)
        cmd = [f"{args.peer_onmt}/bin/python", "-m", "onmt.bin.build_vocab", "-config", config]
        subprocess.run(cmd + ["-n_sample", "-1"], check=True, env=onmt_env(), capture_output=True)
    return prepared, pieces


def onmt_config(args, pieces: Path) -> str:
    config = {
        "save_data": str(pieces / "onmt"),
        "src_vocab": str(pieces / "vocab.src"),
        "tgt_vocab": str(pieces / "vocab.tgt"),
        "overwrite": True,
        "data": {
            "corpus_1": {"path_src": f"{pieces}/train.sp.de", "path_tgt": f"{pieces}/train.sp.en"},
        },
        "save_model": str(args.workdir / "onmt-run" / "model"),
        "save_checkpoint_steps": args.onmt_save,
        "keep_checkpoint": -1,
        "train_steps": 10**7,  # stopped by the clock
        "valid_steps": 10**9,
        "report_every": 10,
        **ONMT_MODEL,
        **{"bucket_size": 131072, "num_workers": 1},
    }
    path = pieces / "onmt.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return str(path)


def pinned(core: int) -> list[str]:
    return ["taskset", "-c", str(core), "env", "OMP_NUM_THREADS=1", "MKL_NUM_THREADS=1"]


def train_both(args, prepared: Path, pieces: Path) -> dict:
    """Start both, pinned; stop OpenNMT-py --minutes after its training loop starts."""
    nmt_dir, logs = args.workdir / "nmt-run", args.workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    nmt_cmd = pinned(0) + [NMT, "train", str(RECIPE), "--set", f"data.prepared={prepared}"]
    nmt_cmd += [
        "--set",
        "train.max_steps=null",
        "--set",
        f"train.max_minutes={args.minutes}",
        "--threads",
        "1",
        "--device",
        "cpu",
    ]
    nmt_cmd += ["--output-dir", str(nmt_dir), "--overwrite"]
    nmt_cmd += [x for item in DATA for x in ("--set", item)]
    onmt_cmd = pinned(1) + [f"{args.peer_onmt}/bin/python", "-m", "onmt.bin.train"]
    onmt_cmd += ["-config", onmt_config(args, pieces)]
    started = time.time()
    with open(logs / "nmt.log", "w") as nmt_log, open(logs / "onmt.log", "w") as onmt_log:
        nmt = subprocess.Popen(nmt_cmd, cwd=ROOT, stdout=nmt_log, stderr=subprocess.STDOUT)
        onmt = subprocess.Popen(
            onmt_cmd,
            env=onmt_env(),
            stdout=subprocess.PIPE,
            text=True,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        first = last_step = None
        speeds: list[int] = []  # target tokens/s of each report (since the last)
        for line in onmt.stdout:
            onmt_log.write(line)
            onmt_log.flush()
            match = ONMT_STEP.search(line)
            if match:
                last_step = int(match.group(1))
                speeds.append(int(ONMT_SPEED.search(line).group(2)))
            if "Start training loop" in line or match:
                first = first or time.time()
            if first and time.time() - first >= 60 * args.minutes:
                os.killpg(onmt.pid, signal.SIGTERM)  # with its data-loading worker
                break
        onmt.wait()
        nmt.wait()
    return {
        "wall_seconds": round(time.time() - started, 1),
        "onmt": {
            "seconds_to_training_loop": round(first - started, 1),
            "last_step": last_step,
            "median_report_target_tokens_per_second": sorted(speeds)[len(speeds) // 2],
        },
        "nmt_returncode": nmt.returncode,
    }


def score(hyps: list[str], refs: list[str]) -> dict:
    bleu, chrf = BLEU(), CHRF()
    return {
        "bleu": round(bleu.corpus_score(hyps, [refs]).score, 2),
        "chrf": round(chrf.corpus_score(hyps, [refs]).score, 2),
        "signature": str(bleu.get_signature()),
        "mean_words": round(sum(len(h.split()) for h in hyps) / len(hyps), 2),
    }


def onmt_decode(args, checkpoint: Path, pieces: Path, beam: int, out: Path) -> list[str]:
    cmd = [f"{args.peer_onmt}/bin/python", "-m", "onmt.bin.translate", "-model", str(checkpoint)]
    cmd += ["-src", f"{pieces}/valid.sp.de", "-output", str(out), "-beam_size", str(beam)]
    cmd += ["-batch_size", "128", "-batch_type", "sents", "-max_length", "100"]
    cmd += ["-length_penalty", "wu", "-alpha", "0.6"] if beam > 1 else []
    subprocess.run(cmd, check=True, env=onmt_env(), capture_output=True)
    sp = spm.SentencePieceProcessor(model_file=str(args.workdir / "prepared" / "spm.model"))
    return [sp.decode(line.split()) for line in out.read_text("utf-8").splitlines()]


def nmt_decode(args, beam: int, out: Path) -> list[str]:
    source = TATOEBA / "valid.de.gz"
    cmd = [NMT, "translate", str(source), "--model", str(args.workdir / "nmt-run")]
    cmd += ["--beam", str(beam), "--threads", "2", "--device", "cpu", "-o", str(out)]
    subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True)
    return out.read_text("utf-8").splitlines()


def evaluate(args, pieces: Path) -> dict:
    refs, out = lines(TATOEBA / "valid.en.gz"), args.workdir / "hyps"
    out.mkdir(exist_ok=True)
    checkpoints = sorted(
        (args.workdir / "onmt-run").glob("model_step_*.pt"),
        key=lambda p: int(p.stem.rsplit("_", 1)[1]),
    )
    if not checkpoints:
        sys.exit(f"error: OpenNMT-py saved no checkpoint in {args.workdir / 'onmt-run'}")
    chosen = [p for p in checkpoints if int(p.stem.rsplit("_", 1)[1]) % args.onmt_choose == 0]
    candidates = {}  # checkpoint -> its greedy valid BLEU
    for checkpoint in chosen + ([checkpoints[-1]] if checkpoints[-1] not in chosen else []):
        hyps = onmt_decode(args, checkpoint, pieces, 1, out / f"{checkpoint.stem}.greedy")
        candidates[checkpoint] = score(hyps, refs)["bleu"]
    best = max(candidates, key=candidates.get)
    metrics = [json.loads(x) for x in (args.workdir / "nmt-run" / "metrics.jsonl").open()]
    report = {
        "onmt": {
            "greedy_valid_bleu_by_checkpoint": {p.name: b for p, b in candidates.items()},
            "chosen": best.name,
        },
        "nmt": {"evaluations": metrics},
    }
    for beam in (5, 1):
        report["onmt"][f"beam{beam}"] = score(
            onmt_decode(args, best, pieces, beam, out / f"onmt.b{beam}"), refs
        )
        report["nmt"][f"beam{beam}"] = score(nmt_decode(args, beam, out / f"nmt.b{beam}"), refs)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--peer-onmt", required=True, metavar="VENV")
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--onmt-save", type=int, default=50, help="steps between its checkpoints")
    parser.add_argument("--onmt-choose", type=int, default=200, help="its checkpoints scored")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/tatoeba-peer"))
    parser.add_argument("--skip-training", action="store_true", help="score what is there")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    prepared, pieces = prepare(args)
    report = {"minutes": args.minutes, "machine": os.uname().machine, "cpus": os.cpu_count()}
    if not args.skip_training:
        report["training"] = train_both(args, prepared, pieces)
    report.update(evaluate(args, pieces))
    text = json.dumps(report, indent=2)
    if args.output:
        args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
