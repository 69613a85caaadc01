"""How nmt scales with the corpus: prepare time and memory, time to the first step, training
memory and speed, at WMT-like sizes, as JSON (issue 23, item 5).

    python benchmarks/data_scale.py --pairs 160000 --pairs 4500000 --steps 50 \
        [--no-prepare | --reuse-prepared] [--peer-onmt /tmp/peer-cpu/V] \
        [--workdir /tmp/data-scale] [--output r.json]

For each size it builds a synthetic corpus of WMT-length pairs from the Tatoeba German–English
pairs (--tatoeba, default ../shared/data/tatoeba-deu-eng beside the checkout): the base
pairs in a seeded random order, consecutive ones joined while that brings the English
side nearer --words words (25 on average; WMT'14 en-de has about 23-27 per side), the
order drawn afresh, seeded, each time the base pairs run out, until N pairs are written
(plain text, one file per language, kept in --workdir and reused by a later run asking
the same size and seed).

Then, each in its own process, polled every 0.2 s:
  * `nmt prepare` on a recipe derived from recipes/multi30k_de_en_cpu.yaml with data.train
    pointed at the corpus (no valid or test split): wall time, pairs/s, peak resident and
    anonymous memory (VmRSS, RssAnon; summed over the process and its children), and the
    prepared dataset's size on disk;
  * `nmt train` on that recipe with data.prepared set (with --no-prepare, as nmt trains
    today: straight from the text) for --steps steps, logging every step: seconds from
    the start of the process to the line of step 1 (which is printed once step 1 is done),
    peak memory as above, and the target tokens/s results.json reports (time in training
    steps only);
  * with --peer-onmt VENV: OpenNMT-py (3.5.1 in ../shared/peers' venv) on the same corpus
    and model (emb 256, 2×bi-LSTM 256 per direction, 2-layer LSTM decoder 512, Luong
    general attention with input feeding), its pieces made on the fly by its sentencepiece
    transform with the SentencePiece model nmt made: `build_vocab` (wall time, peak
    memory) and `train` for --steps steps (seconds to its first report of step 1, peak
    memory).

Anonymous memory is what the issue's goals bound: a memory-mapped dataset's file pages are
resident while read but are not anonymous. The machine, its CPUs and torch's version go
into the JSON. Nothing here sets the thread count: run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
BASE_RECIPE = ROOT / "recipes" / "multi30k_de_en_cpu.yaml"
# ../shared beside the checkout (or beside the folder of worktrees that holds it)
SHARED = next((p / "shared" for p in ROOT.parents[:2] if (p / "shared").is_dir()), ROOT.parent)
TATOEBA = SHARED / "data" / "tatoeba-deu-eng"
PEERS = SHARED / "peers"
NMT_STEP = re.compile(r"\bstep\s+1\s+loss\b")  # nmt's progress line of step 1
ONMT_STEP = re.compile(r"\bStep\s+1/")  # OpenNMT-py's report of step 1
POLL = 0.2  # seconds between two memory samples


# ---------------------------------------------------------------------------- the corpus


def read_pairs(directory: Path) -> list[tuple[str, str]]:
    """The German–English training pairs with text on both sides."""

    def lines(lang: str) -> list[str]:
        for name in (f"train.{lang}.gz", f"train.{lang}"):
            path = directory / name
            if path.is_file():
                opener = gzip.open if name.endswith(".gz") else open
                with opener(path, "rt", encoding="utf-8") as f:
                    return [line.strip() for line in f]
        sys.exit(f"error: --tatoeba {directory}: no train.{lang}.gz or train.{lang} in it")

    pairs = [(de, en) for de, en in zip(lines("de"), lines("en"), strict=True) if de and en]
    if not pairs:
        sys.exit(f"error: --tatoeba {directory}: no pairs with text on both sides")
    return pairs


def joined_pairs(pairs: list[tuple[str, str]], words: int, seed: int) -> Iterator[tuple[str, str]]:
    """Endless WMT-length pairs: the base pairs in a seeded order, consecutive ones joined
    while that brings the English side nearer `words` words (so it averages about that);
    a fresh order each time they run out."""
    for rep in range(sys.maxsize):
        order = np.random.default_rng([seed, rep]).permutation(len(pairs))
        de: list[str] = []
        en: list[str] = []
        count = 0
        for i in order:
            length = len(pairs[i][1].split())
            if count and count + length / 2 > words:  # the pair would overshoot more than
                yield " ".join(de), " ".join(en)  # half its length: the join ends here
                de, en, count = [], [], 0
            de.append(pairs[i][0])
            en.append(pairs[i][1])
            count += length


def build_corpus(pairs: list[tuple[str, str]], n: int, words: int, seed: int, workdir: Path):
    """corpus-N/train.{de,en} in `workdir` (made once, reused); what it holds."""
    folder = workdir / f"corpus-{n}-w{words}-s{seed}"
    done = folder / "done.json"
    if done.is_file():
        return folder, json.loads(done.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    de_words = en_words = 0
    with open(folder / "train.de", "w", encoding="utf-8", buffering=1 << 20) as de_file:
        with open(folder / "train.en", "w", encoding="utf-8", buffering=1 << 20) as en_file:
            for k, (de, en) in enumerate(joined_pairs(pairs, words, seed)):
                if k == n:
                    break
                de_file.write(de + "\n")
                en_file.write(en + "\n")
                de_words += de.count(" ") + 1
                en_words += en.count(" ") + 1
    info = {
        "pairs": n,
        "words_per_pair": {"de": round(de_words / n, 1), "en": round(en_words / n, 1)},
        "bytes": sum((folder / f"train.{lang}").stat().st_size for lang in ("de", "en")),
        "build_seconds": round(time.perf_counter() - start, 1),
    }
    done.write_text(json.dumps(info))
    return folder, info


# ---------------------------------------------------------------------------- memory


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            tree.setdefault(parent, []).append(int(entry))
    return tree


def _status(pid: int) -> dict[str, int]:
    """VmRSS, RssAnon and VmHWM of a process, in bytes (empty once it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    found = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "VmHWM"):
            found[key] = int(value.split()[0]) * 1024
    return found


class MemoryPoll(threading.Thread):
    """Samples the resident and anonymous memory of a process and all its descendants
    every POLL seconds; keeps the peaks of the sums."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.stopped = pid, threading.Event()
        self.peak_rss = self.peak_anon = self.hwm = 0

    def run(self) -> None:
        while not self.stopped.is_set():
            tree, pids, k = _children(), [self.pid], 0
            while k < len(pids):
                pids += tree.get(pids[k], [])
                k += 1
            status = [_status(pid) for pid in pids]
            self.peak_rss = max(self.peak_rss, sum(s.get("VmRSS", 0) for s in status))
            self.peak_anon = max(self.peak_anon, sum(s.get("RssAnon", 0) for s in status))
            self.hwm = max(self.hwm, status[0].get("VmHWM", 0))
            self.stopped.wait(POLL)

    def report(self) -> dict[str, float]:
        gb = 1 << 30
        return {
            "peak_rss_gb": round(self.peak_rss / gb, 3),
            "peak_rss_anon_gb": round(self.peak_anon / gb, 3),
            "main_process_vmhwm_gb": round(self.hwm / gb, 3),
        }


def run_measured(
    command: list[str],
    log: Path,
    first_step: re.Pattern | None = None,
    env: dict[str, str] | None = None,
) -> dict:
    """Run `command`, its output to `log` (each line with its second since the start),
    memory polled; wall time, exit status and, if `first_step` matches a line, the
    second at which that line came."""
    start = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1, env=env
    )
    poll = MemoryPoll(process.pid)
    poll.start()
    seen = None
    tail: list[str] = []
    with open(log, "w", encoding="utf-8") as out:
        assert process.stdout is not None
        for line in process.stdout:
            at = time.perf_counter() - start
            out.write(f"{at:9.2f} {line}")
            tail = [*tail[-19:], line.rstrip()]
            if seen is None and first_step is not None and first_step.search(line):
                seen = at
    code = process.wait()
    poll.stopped.set()
    poll.join()
    result = {"exit": code, "wall_seconds": round(time.perf_counter() - start, 2)}
    if first_step is not None:
        result["seconds_to_first_step"] = None if seen is None else round(seen, 2)
    if code != 0:
        result["last_lines"] = tail
    return {**result, **poll.report()}


def disk_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


# ---------------------------------------------------------------------------- nmt


def nmt_recipe(corpus: Path, steps: int, folder: Path) -> Path:
    """The base recipe with data.train pointed at `corpus`, no valid or test split, and a
    bounded run that logs every step and never evaluates before its end."""
    recipe = yaml.safe_load(BASE_RECIPE.read_text(encoding="utf-8"))
    recipe["data"] = {
        "source_lang": "de",
        "target_lang": "en",
        "train": str(corpus / "train.{lang}"),
    }
    recipe["train"].update(
        {"max_steps": steps, "max_epochs": None, "max_minutes": None, "log_every": 1}
    )
    recipe["train"].update({"eval_every": 0, "save_every": 0})
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    return path


def nmt_size(args, corpus: Path, folder: Path) -> dict:
    """nmt prepare (unless --no-prepare), then nmt train, on one corpus."""
    nmt = [sys.executable, "-m", "nmt"]
    recipe = nmt_recipe(corpus, args.steps, folder)
    sets = [arg for item in args.overrides for arg in ("--set", item)]
    result: dict = {}
    data = folder / "prepared"
    if args.reuse_prepared and (data / "manifest.json").is_file():
        result["prepare"] = {"reused": str(data)}
        sets += ["--set", f"data.prepared={data}"]
    elif not args.no_prepare:
        command = [*nmt, "prepare", str(recipe), *sets, "--output-dir", str(data)]
        prepare = run_measured([*command, "--workers", str(args.workers)], folder / "prepare.log")
        if prepare["exit"] == 0:
            prepare["pairs_per_second"] = round(args.current / prepare["wall_seconds"])
            prepare["disk_bytes"] = disk_bytes(data)
        result["prepare"] = prepare
        if prepare["exit"] != 0:
            return result
        sets += ["--set", f"data.prepared={data}"]
    run = folder / "run"
    command = [*nmt, "train", str(recipe), *sets, "--output-dir", str(run), "--overwrite"]
    train = run_measured([*command, "--device", "cpu"], folder / "train.log", NMT_STEP)
    if train["exit"] == 0:
        results = json.loads((run / "results.json").read_text())
        train["tokens_per_second"] = results.get("train_tokens_per_second")
        train["steps"] = results.get("steps")
    result["train"] = train
    return result


# ---------------------------------------------------------------------------- OpenNMT-py


# OpenNMT-py's options for nmt's CPU model (../shared/peers' onmt_general): emb 256,
# 2×bi-LSTM 256 per direction, 2-layer LSTM decoder 512, Luong general attention with input
# feeding, dropout 0.3, Adam 1e-3, clip 5, uniform ±0.1, 4096-token batches, fp32, seed 42
ONMT_MODEL = {
    "seed": 42,
    "model_task": "seq2seq",
    **{"encoder_type": "brnn", "decoder_type": "rnn", "rnn_type": "LSTM"},
    **{"enc_layers": 2, "dec_layers": 2, "hidden_size": 512, "word_vec_size": 256},
    **{"global_attention": "general", "input_feed": 1, "bridge": False, "dropout": [0.3]},
    **{"optim": "adam", "learning_rate": 0.001, "max_grad_norm": 5.0, "param_init": 0.1},
    **{"batch_type": "tokens", "batch_size": 4096},
    **{"normalization": "sents", "model_dtype": "fp32"},
}


def onmt_config(corpus: Path, spm_model: Path, steps: int, folder: Path) -> Path:
    """OpenNMT-py's configuration of the same model (run_cpu.sh's onmt_general), pieces made
    by its sentencepiece transform with `spm_model`."""
    config = {
        "save_data": str(folder / "onmt"),
        "src_vocab": str(folder / "onmt.vocab.src"),
        "tgt_vocab": str(folder / "onmt.vocab.tgt"),
        "overwrite": True,
        "transforms": ["sentencepiece"],
        "src_subword_model": str(spm_model),
        "tgt_subword_model": str(spm_model),
        "data": {
            "corpus_1": {"path_src": str(corpus / "train.de"), "path_tgt": str(corpus / "train.en")}
        },
        "save_model": str(folder / "onmt" / "model"),
        "save_checkpoint_steps": 10**9,
        "train_steps": steps,
        "valid_steps": 10**9,
        "report_every": 1,
        **ONMT_MODEL,
        **{"bucket_size": 16384, "num_workers": 2},
    }
    path = folder / "onmt.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def onmt_size(args, corpus: Path, folder: Path) -> dict:
    spm_model = folder / "run" / "spm.model"
    if not spm_model.is_file():
        return {"error": f"{spm_model} is missing: nmt's run failed, so no SentencePiece model"}
    python = str(Path(args.peer_onmt) / "bin" / "python")
    config = onmt_config(corpus, spm_model, args.steps, folder)
    # as ../shared/peers/run_cpu.sh runs it: empty stubs for imports it makes and never uses
    stubs = str(PEERS / "stubs")
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": stubs}
    env["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
    vocab = run_measured(
        [python, "-m", "onmt.bin.build_vocab", "-config", str(config), "-n_sample", "-1"],
        folder / "onmt_vocab.log",
        env=env,
    )
    if vocab["exit"] != 0:
        return {"build_vocab": vocab}
    train = run_measured(
        [python, "-m", "onmt.bin.train", "-config", str(config)],
        folder / "onmt_train.log",
        ONMT_STEP,
        env,
    )
    return {"build_vocab": vocab, "train": train}


# ---------------------------------------------------------------------------- main


def machine() -> dict:
    import torch

    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpu": model,
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, action="append", required=True)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--words", type=int, default=25)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tatoeba", type=Path, default=TATOEBA)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--no-prepare",
        action="store_true",
        help="train from the text as nmt does without nmt prepare",
    )
    parser.add_argument(
        "--reuse-prepared",
        action="store_true",
        help="train from the prepared dataset an earlier run left in --workdir (not timed again)",
    )
    parser.add_argument("--peer-onmt", default=None, metavar="VENV")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    if any(n < 1 for n in args.pairs) or args.steps < 1:
        sys.exit("error: --pairs and --steps want 1 or more")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="data-scale-"))
    pairs = read_pairs(args.tatoeba)
    report = {
        "machine": machine(),
        "recipe": str(BASE_RECIPE.relative_to(ROOT)),
        "overrides": args.overrides,
        "steps": args.steps,
        "prepared": not args.no_prepare,
        "workdir": str(workdir),
        "sizes": [],
    }
    for n in args.pairs:
        corpus, info = build_corpus(pairs, n, args.words, args.seed, workdir)
        folder = workdir / f"runs-{n}"
        folder.mkdir(parents=True, exist_ok=True)
        args.current = n
        entry = {"pairs": n, "corpus": info, "nmt": nmt_size(args, corpus, folder)}
        if args.peer_onmt:
            entry["onmt"] = onmt_size(args, corpus, folder)
        report["sizes"].append(entry)
        if args.output:
            args.output.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
