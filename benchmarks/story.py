"""The story, measured: train a small grid of models on Multi30k de→en and write
docs/story.md, which sets the classic claims about RNNs and attention against what nmt
measures (benchmarks/story_report.py writes the text).

    python benchmarks/story.py --out docs/story        # from the repository root

Every variant is benchmarks/story.yaml with one thing changed (VARIANTS). They train one
after another, each into runs/story/NAME; then every model is measured: test BLEU and
chrF (beam 5, the recipe's decode settings), valid perplexity, paired bootstrap tests
between the variants a claim compares, BLEU by source length, gradient flow through the
encoders of the three cells (trained and freshly initialised) and attention heatmaps of
three fixed test sentences. `--out docs/story` writes docs/story.md, and the PNGs and
story.json under docs/story/. On a 2-core CPU the whole command took 51 minutes.

`--reuse` measures models already trained in --runs instead of training them again (to
redo the report). `--set` changes the base recipe for every variant (the test suite runs
the grid on a tiny corpus that way).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from gradient_flow import fresh, trained
from gradient_flow import plot as plot_gradients
from story_report import CLAIMS, write_story

from nmt.data.corpus import read_aligned, read_lines
from nmt.decode.translate import Translator
from nmt.errors import UserError
from nmt.events import Evaluation
from nmt.metrics import compare
from nmt.recipe.load import load_recipe, recipe_to_dict
from nmt.recipe.schema import Recipe
from nmt.recipe.sources import FilesSource
from nmt.report.by_length import plot_by_length, score_by_length
from nmt.report.evaluation import file_perplexity
from nmt.report.plot import plot_attention
from nmt.training.setup import train

BASE = Path(__file__).with_name("story.yaml")


@dataclass(frozen=True)
class Variant:
    name: str
    label: str  # what it is, in a few words
    overrides: tuple[str, ...]  # --set on top of the base recipe


VARIANTS = [
    Variant("none", "LSTM, no attention", ("model.attention=none",)),
    Variant(
        "none+reversed",
        "LSTM, no attention, source reversed",
        ("model.attention=none", "model.reverse_input=true"),
    ),
    Variant("bahdanau", "LSTM, Bahdanau (additive) attention", ("model.attention=bahdanau",)),
    Variant(
        "luong",
        "LSTM, Luong general attention",
        ("model.input_feeding=false",),
    ),
    Variant("lstm", "LSTM, Luong general attention + input feeding", ()),
    Variant("gru", "GRU, Luong general attention + input feeding", ("model.cell=gru",)),
    Variant("rnn", "tanh RNN, Luong general attention + input feeding", ("model.cell=rnn",)),
    Variant(
        "bidirectional",
        "bidirectional LSTM encoder, Luong general + input feeding",
        ("model.bidirectional=true",),
    ),
]
BY_LENGTH = ["none", "none+reversed", "bahdanau", "luong", "lstm"]  # Figure 2's systems
CELLS = {"rnn": "rnn", "gru": "gru", "lstm": "lstm"}  # cell: the variant that has it
HEATMAPS = ["bahdanau", "lstm"]


def recipe_for(variant: Variant, args: argparse.Namespace) -> Recipe:
    overrides = [
        *args.overrides,
        *variant.overrides,
        f"train.max_epochs={args.epochs}",
        f"output_dir={args.runs / variant.name}",
    ]
    return load_recipe(BASE, overrides)


def train_variant(variant: Variant, args: argparse.Namespace) -> dict[str, Any]:
    """Train (or with --reuse, find) one variant; its results.json plus wall minutes."""
    recipe = recipe_for(variant, args)
    done = Path(recipe.output_dir) / "results.json"
    wall = Path(recipe.output_dir) / "story_wall.json"
    if args.reuse and done.exists() and wall.exists():
        print(f"{variant.name}: reusing {recipe.output_dir}", flush=True)
        return {**json.loads(done.read_text()), **json.loads(wall.read_text())}
    print(f"{variant.name}: training ({variant.label})", flush=True)
    start = time.perf_counter()
    results = train(recipe, args.device, overwrite=True, on_event=report_evaluation)
    minutes = {"minutes": round((time.perf_counter() - start) / 60, 2)}
    wall.write_text(json.dumps(minutes))
    return {**results.to_json(), **minutes}


def report_evaluation(event: object) -> None:
    """One line per evaluation, so a long run shows it is moving."""
    if isinstance(event, Evaluation):
        print(f"    epoch {event.epoch:.0f}: valid ppl {event.valid_ppl:.2f}, "
              f"BLEU {event.valid_bleu:.2f}", flush=True)  # fmt: skip


def split_files(recipe: Recipe, split: str) -> tuple[Path, Path]:
    source = getattr(recipe.data, split)
    if not isinstance(source, FilesSource):
        raise UserError(f"data.{split}: story.py reads plain files; give a {{lang}} pattern")
    src, tgt = recipe.data.source_lang, recipe.data.target_lang
    return Path(source.pattern.replace("{lang}", src)), Path(source.pattern.replace("{lang}", tgt))


def verdict(comparison: dict[str, Any]) -> str:
    """agrees / within noise / disagrees, from a paired bootstrap test (p < 0.05)."""
    score, baseline, p = comparison["score"], comparison["baseline"], comparison["p_value"]
    if score == baseline:
        return "no difference"
    if score > baseline:
        return "agrees" if p < 0.05 else "same direction, within noise"
    return "disagrees" if p < 0.05 else "other direction, within noise"


def comparisons(hyps: dict[str, list[str]], refs: list[str], lang: str) -> dict[str, Any]:
    """Each claim's system against its baseline on the test set (paired bootstrap)."""
    out = {}
    for claim in CLAIMS:
        for baseline, system in claim.pairs:
            found = compare(hyps[system], hyps[baseline], refs, ["bleu"], lang)["bleu"]
            found["verdict"] = verdict(found)
            out[f"{system} vs {baseline}"] = found
    return out


def gradient_flow(args: argparse.Namespace, valid_source: Path) -> dict[str, Any]:
    """Ratios ‖∂L/∂h_t‖/‖∂L/∂h_T‖ for the trained encoders and fresh ones of each cell."""
    from nmt.report.gradient_flow import gradient_ratios

    base = recipe_for(VARIANTS[0], args).model
    out: dict[str, Any] = {"length": args.flow_length, "trained": {}, "fresh": {}}
    for cell, name in CELLS.items():
        _, rnn, inputs = trained(args.runs / name, valid_source, args.flow_length, 64)
        out["trained"][cell] = gradient_ratios(rnn, inputs, seed=1)
        out["sentences"] = len(inputs)
        sizes = (64, base.hidden_size, base.embedding_size, 1000, 1)
        out["fresh"][cell] = gradient_ratios(*fresh(cell, args.flow_length, *sizes), seed=1)
    plot_gradients(out["trained"], args.out / "gradient_flow_trained.png", "trained encoders")
    plot_gradients(out["fresh"], args.out / "gradient_flow_fresh.png", "freshly initialised")
    return out


def heatmap_sentences(sources: list[str], count: int = 3) -> list[int]:
    """The first `count` test sentences of 8 to 14 words: fixed, and short enough to read."""
    return [i for i, s in enumerate(sources) if 8 <= len(s.split()) <= 14][:count]


def heatmaps(args: argparse.Namespace, sources: list[str]) -> list[dict[str, Any]]:
    shown = heatmap_sentences(sources)
    out = []
    for name in HEATMAPS:
        translator = Translator.load(args.runs / name, "cpu")
        found = translator.search([sources[i] for i in shown], attention=True)
        for k, (index, best) in enumerate(zip(shown, found, strict=True)):
            png = f"attention_{name}_{k + 1}.png"
            plot_attention(best[0], args.out / png)
            out.append({"variant": name, "line": index + 1, "source": sources[index],
                        "translation": best[0].text, "png": png})  # fmt: skip
    return out


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [x.split(":", 1)[1].strip() for x in cpuinfo.read_text().splitlines()
                 if x.startswith("model name")]  # fmt: skip
        cpu = names[0] if names else cpu
    return {"cpu": cpu, "cores": os.cpu_count(), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version()}  # fmt: skip


def measure(runs: dict[str, dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    recipe = recipe_for(VARIANTS[0], args)
    lang = recipe.data.target_lang
    valid_src, valid_ref = split_files(recipe, "valid")
    sources, refs = read_aligned(*split_files(recipe, "test"), purpose="score")
    hyps = {name: read_lines(args.runs / name / "test.hyp") for name in runs}
    for name in runs:
        translator = Translator.load(args.runs / name, "cpu")
        runs[name]["valid"] = file_perplexity(translator, valid_src, valid_ref)
    by_length = score_by_length(sources, refs, {n: hyps[n] for n in BY_LENGTH}, lang, 6, 100)
    plot_by_length(by_length, args.out / "bleu_by_length.png")
    return {
        "runs": runs,
        "comparisons": comparisons(hyps, refs, lang),
        "by_length": by_length,
        "gradient_flow": gradient_flow(args, valid_src),
        "heatmaps": heatmaps(args, sources),
        "test_sentences": len(sources),
        "test_file": str(split_files(recipe, "test")[0]),
        "recipe": str(BASE.relative_to(Path(__file__).parents[1])),
        "base": recipe_to_dict(recipe_for(VARIANTS[4], args)),
        "epochs": args.epochs,
        "overrides": args.overrides,
        "variants": [vars(v) | {"overrides": list(v.overrides)} for v in VARIANTS],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/story"))
    parser.add_argument("--runs", type=Path, default=Path("runs/story"))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--flow-length", type=int, default=20, help="source tokens")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--reuse", action="store_true", help="measure models already trained")
    args = parser.parse_args()
    started = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        runs = {v.name: train_variant(v, args) for v in VARIANTS}
        report = measure(runs, args)
    except UserError as e:
        raise SystemExit(f"story.py: {e}") from None
    report["reused"] = args.reuse
    report["machine"] = machine()
    report["command"] = " ".join(["python", "benchmarks/story.py", *sys.argv[1:]])
    report["wall_minutes"] = round((time.perf_counter() - started) / 60, 1)
    (args.out / "story.json").write_text(json.dumps(report, indent=1, ensure_ascii=False))
    write_story(report, args.out)
    print(f"wrote {args.out.with_suffix('.md')} and {args.out}/ in {report['wall_minutes']} min")


if __name__ == "__main__":
    main()
