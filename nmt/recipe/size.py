"""How many parameters a recipe's model has, counted from the recipe alone.

The recipe check (nmt.recipe.rules) refuses a model past `MAX_PARAMETERS` before anything
is built or read, so an absurd `model.hidden_size` or `tokenizer.vocab_size` in a recipe,
a `--set`, or a model directory's edited recipe.yaml is one line naming the keys, not
minutes of building or an allocation traceback. The count follows the shapes the modules
make (nmt.model.encoder, nmt.model.decoder, nmt.model.attention); a test checks that it equals
`build_model`'s for every cell, attention, bridge and sharing option. The vocabulary
sizes are the recipe's (the tokenizer may learn fewer pieces, and a restricted target
vocabulary keeps fewer still), so for a recipe the count is an upper bound.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nmt.recipe.schema import ModelConfig, Recipe

GATES = {"lstm": 4, "gru": 3, "rnn": 1}  # weight blocks per layer of nn.LSTM / GRU / RNN


def rnn_parameters(cell: str, inputs: int, hidden: int, layers: int, directions: int = 1) -> int:
    """nn.LSTM / nn.GRU / nn.RNN: per layer and direction, gates × hidden × (inputs +
    hidden + 2 biases); layers above the first read both directions of the one below."""
    total = 0
    for layer in range(layers):
        width = inputs if layer == 0 else hidden * directions
        total += directions * GATES[cell] * hidden * (width + hidden + 2)
    return total


def model_parameters(m: ModelConfig, src_vocab: int, tgt_vocab: int) -> int:
    """The parameters of `build_model(m, src_vocab, tgt_vocab)`, a shared one once."""
    hidden, emb, mem = m.hidden_size, m.embedding_size, m.encoder_size * m.directions
    encoder = src_vocab * emb + rnn_parameters(
        m.cell, emb, m.encoder_size, m.encoder_layers, m.directions
    )
    family = m.attention.partition("_")[0]  # none, bahdanau, luong (nmt.model.decoder.WIRINGS)
    attention = {
        "luong_general": mem * hidden,  # W
        "luong_concat": hidden * hidden + mem * hidden + 2 * hidden,  # W, U and its bias, v
        "bahdanau": hidden * hidden + mem * hidden + 2 * hidden,
    }.get(m.attention, 0)
    inputs = emb + (mem if family == "bahdanau" else 0) + (hidden if m.feeds_input else 0)
    combine = {
        "luong": (mem + hidden) * hidden,  # W_c, no bias
        "bahdanau": (hidden + mem + emb) * hidden + hidden,  # W_o, the deep output
    }.get(family, 0)
    maps = m.decoder_layers * (2 if m.cell == "lstm" else 1) if m.bridge == "linear" else 0
    decoder = (
        (0 if m.share_embeddings else tgt_vocab * emb)
        + attention
        + rnn_parameters(m.cell, inputs, hidden, m.decoder_layers)
        + combine
        + maps * (mem * hidden + hidden)
        + (0 if m.tie_embeddings else hidden * tgt_vocab)
    )
    return encoder + decoder


def recipe_parameters(r: Recipe) -> int:
    """The parameters of the recipe's model at its tokenizer's vocabulary sizes."""
    tok = r.tokenizer
    target = tok.target_vocab_size if not tok.joint and tok.target_vocab_size else tok.vocab_size
    return model_parameters(r.model, tok.vocab_size, target)
