"""The vanishing-gradient picture, measured: ‖∂L/∂h_t‖ / ‖∂L/∂h_T‖ through an encoder's
recurrence for tanh RNN, GRU and LSTM cells (nmt.report.gradient_flow), as JSON and a PNG.

    python benchmarks/gradient_flow.py --length 30 --plot gradient_flow.png
    python benchmarks/gradient_flow.py --model runs/multi30k_de_en --source val.de

Without --model, each cell gets a freshly initialised encoder the way nmt initialises
one (uniform ±model.init_range, 0.1) fed random token ids; with --model, that trained
model's encoder (its own cell only) is fed the first --batch lines of --source, cut or
kept to --length tokens. A script rather than an `nmt` verb: it is a measurement for the
story, not a step of anyone's translation work.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from nmt.model.seq2seq import build_model
from nmt.recipe.schema import ModelConfig
from nmt.report.gradient_flow import gradient_ratios


def fresh(
    cell: str, length: int, batch: int = 32, hidden: int = 256, embedding: int = 256,
    vocab: int = 1000, seed: int = 1,
) -> tuple[torch.nn.RNNBase, torch.Tensor]:  # fmt: skip
    """A freshly initialised one-layer encoder of `cell` and random embedded tokens."""
    torch.manual_seed(seed)
    cfg = ModelConfig(
        cell=cell, embedding_size=embedding, hidden_size=hidden, encoder_layers=1,
        decoder_layers=1, bidirectional=False, attention="none", dropout=0.0,
    )  # fmt: skip
    model = build_model(cfg, vocab, vocab)
    ids = torch.randint(4, vocab, (batch, length))
    return model.encoder.rnn, model.encoder.embed(ids).detach()


def trained(
    model_dir: Path, source: Path, length: int, batch: int = 32
) -> tuple[str, torch.nn.RNNBase, torch.Tensor]:
    """A trained model's cell, encoder RNN and its embeddings of the first `batch` lines
    of `source` that have `length` tokens or more, cut to `length`."""
    from nmt.data.corpus import read_lines
    from nmt.decode.translate import Translator

    translator = Translator.load(model_dir, "cpu")
    lines = read_lines(Path(source))
    ids = [x for x in translator.encode(lines) if len(x) >= length][:batch]
    if not ids:
        raise SystemExit(f"no line of {source} has {length} tokens; lower --length")
    src = torch.tensor([x[:length] for x in ids])
    encoder = translator.model.encoder
    return translator.recipe.model.cell, encoder.rnn, encoder.embed(src).detach()


def plot(results: dict[str, list[float]], path: Path, title: str = "") -> None:
    from nmt.report.plot import pyplot

    plt = pyplot("--plot")
    fig, ax = plt.subplots(figsize=(6, 4))
    for cell, ratios in results.items():
        ax.plot(range(1, len(ratios) + 1), ratios, marker=".", label=cell)
    ax.set_yscale("log")
    ax.set_xlabel("source position t")
    ax.set_ylabel("‖∂L/∂h_t‖ / ‖∂L/∂h_T‖")
    ax.set_title(title or "gradient flow back through the encoder")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", nargs="+", default=["rnn", "gru", "lstm"])
    parser.add_argument("--length", type=int, default=30)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--embedding", type=int, default=256)
    parser.add_argument("--vocab", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--model", help="a trained model directory (measures its cell)")
    parser.add_argument("--source", help="with --model: sentences to feed it")
    parser.add_argument("--plot", type=Path, help="write the curves here (PNG)")
    args = parser.parse_args()
    results = {}
    if args.model:
        cell, rnn, inputs = trained(args.model, args.source, args.length, args.batch)
        results[cell] = gradient_ratios(rnn, inputs, args.seed)
    else:
        for cell in args.cells:
            sizes = (args.batch, args.hidden, args.embedding, args.vocab, args.seed)
            results[cell] = gradient_ratios(*fresh(cell, args.length, *sizes), args.seed)
    if args.plot:
        plot(results, args.plot)
    rounded = {cell: [float(f"{r:.4g}") for r in ratios] for cell, ratios in results.items()}
    print(json.dumps({"length": args.length, "model": args.model, "ratios": rounded}, indent=1))


if __name__ == "__main__":
    main()
