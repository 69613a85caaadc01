"""Helpers for the export and runtime tests: model directories with random weights.

`random_model_dir(path, *overrides)` writes what `nmt train` would (recipe.yaml, the
tokenizer files, model.safetensors) for the tiny quickstart recipe with `--set`-style
overrides, trained for no steps: the weights are `build_model`'s random ones, drawn with
a wide init range so that the step distributions are peaked and a near-tie between two
tokens (which fp32 rounding could break either way) is rare. The tokenizers are trained
on the toy corpus, once per tokenizer setting.

`exported(name)` is architecture `name`'s model directory and its export, made once per
test session (tests must not write into either).
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import torch

from nmt.data.tokenizer import TargetSubset, joint_ids, tokenizer_files, train_tokenizers
from nmt.data.toy import numbers
from nmt.export.write import export_model
from nmt.model.seq2seq import build_model
from nmt.recipe.load import load_recipe, recipe_to_yaml
from nmt.recipe.schema import TokenizerConfig
from nmt.store import checkpoint

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "recipes" / "quickstart.yaml"
SMALL = [
    "model.embedding_size=16",
    "model.hidden_size=32",
    "model.init_range=0.3",
    "decode.max_length_ratio=1.2",
    "tokenizer.vocab_size=100",
    "data.train={toy: numbers, split: train, size: 300}",
]

# Every architecture nmt trains, as overrides of the small recipe: each cell, uni- and
# bidirectional, 1 to 3 layers, reversed input, every attention, input feeding on and off,
# every bridge, tied and shared embeddings, word tokenizers, per-side vocabularies.
ARCHITECTURES: dict[str, list[str]] = {
    "lstm_luong_general": [],
    "gru_bahdanau": ["model.cell=gru", "model.attention=bahdanau"],
    "rnn_luong_dot": ["model.cell=rnn", "model.attention=luong_dot"],
    "lstm_luong_concat_nofeed": ["model.attention=luong_concat", "model.input_feeding=false"],
    "gru_none_copy": [
        "model.cell=gru", "model.attention=none", "model.bridge=copy",
        "model.bidirectional=false", "model.encoder_layers=2", "model.decoder_layers=2",
    ],
    # shorter outputs: 20 steps into a long beam, this random model meets two hypotheses
    # of exactly equal float32 scores, which PyTorch's topk may order either way
    "lstm_none_reversed": [
        "model.attention=none", "model.reverse_input=true", "model.bidirectional=false",
        "decode.max_length_ratio=0.5",
    ],
    "lstm_3_layers_unidirectional": [
        "model.encoder_layers=3", "model.decoder_layers=2", "model.bidirectional=false",
    ],
    "gru_2_layers_zeros_bridge": [
        "model.cell=gru", "model.encoder_layers=2", "model.decoder_layers=2",
        "model.bridge=zeros",
    ],
    "rnn_bahdanau_reversed": [
        "model.cell=rnn", "model.attention=bahdanau", "model.reverse_input=true",
    ],
    "lstm_tied_shared_restricted": [
        "model.tie_embeddings=true", "model.share_embeddings=true",
        "model.embedding_size=32",
    ],
    "lstm_tied_full_vocabulary": [
        "model.tie_embeddings=true", "model.embedding_size=32",
        "tokenizer.restrict_target=false",
    ],
    "gru_words_per_side": [
        "model.cell=gru", "tokenizer.type=word", "tokenizer.joint=false",
        "tokenizer.vocab_size=60", "tokenizer.target_vocab_size=50",
    ],
}  # fmt: skip


@functools.cache
def _tokenizers(cfg: TokenizerConfig):
    pairs = numbers("train", 300)
    src, tgt = train_tokenizers(cfg, [s for s, _ in pairs], [t for _, t in pairs])
    if cfg.restrict_target:
        tgt = TargetSubset.of_texts(tgt, [t for _, t in pairs])
    return src, tgt


def random_model_dir(directory: Path, *overrides: str, seed: int = 0) -> Path:
    """A model directory of the small recipe with `overrides`, random weights drawn by `seed`."""
    recipe = load_recipe(QUICKSTART, [*SMALL, *overrides])
    src, tgt = _tokenizers(recipe.tokenizer)
    torch.manual_seed(seed)
    model = build_model(recipe.model, src.vocab_size, tgt.vocab_size, target_ids=joint_ids(tgt))
    directory.mkdir(parents=True)
    (directory / checkpoint.RECIPE).write_text(recipe_to_yaml(recipe), encoding="utf-8")
    for name, data in tokenizer_files(recipe.tokenizer, src, tgt).items():
        (directory / name).write_bytes(data)
    checkpoint.save_weights(directory / checkpoint.WEIGHTS, model)
    return directory


def sources(count: int = 12) -> list[str]:
    """English toy sentences of several lengths, with an empty line among them."""
    lines = [english for english, _ in numbers("test", count)]
    lines.insert(min(2, len(lines)), "")
    return lines


@functools.cache
def exported(name: str, precision: str = "fp32") -> tuple[Path, Path]:
    """(model directory, exported directory) of architecture `name`, made once per session."""
    base = Path(tempfile.mkdtemp(prefix=f"nmt-export-{name}-"))
    atexit.register(shutil.rmtree, base, True)
    model = random_model_dir(base / "model", *ARCHITECTURES[name])
    export_model([model], base / "exported", precision)  # type: ignore[arg-type]
    return model, base / "exported"
