"""The two graphs a model exports as: the encoder, and one decoder step.

Search needs a model to do two things (nmt.decode.search): `encode` a source batch into
the decoder's initial state, and `step` that state by one token. Each becomes an ONNX
graph with named inputs and outputs; the names below are the whole contract between
this exporter and the runtime (nmt_runtime), which feeds the step's new state back into
the next step by name and never asks which architecture it runs:

    encoder:       src (B, S) int64, src_lengths (B,) int64
                → memory (B, S, D), keys (B, S, K), mask (B, S) bool,
                  hidden (L, B, H), cell (L, B, H), input_feed (B, H)
    decoder_step:  prev_tokens (N,) int64, hidden, cell, input_feed, memory, keys, mask
                → log_probs (N, V), hidden_out, cell_out, input_feed_out, attention (N, S),
                  top_log_probs (N, top_k), top_ids (N, top_k), eos_log_probs (N, 1)

The last three, and the optional input top_k (1,) int64, are added to the traced step by
nmt.export.onnx_files.add_top_k: each row's best top_k log-probs, best first, and the
</s> column, so that beam search ranks inside onnxruntime. Exports from before have none
of them, and the runtime ranks their log_probs itself.

Only the names a model has are present: `cell` for an LSTM, `input_feed` for Luong
attention with input feeding, `mask` and `attention` with attention at all (`memory`
comes out of every encoder, but only attention reads it), and
`keys` when the attention projects its keys (dot attention's keys are the memory itself,
so the step reads `memory` twice rather than carrying a copy). Both wrappers call the
model's own `encode` and `Decoder.step`, so the graphs compute what PyTorch computes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nmt.model.attention import DotAttention
from nmt.model.decoder import DecoderState
from nmt.model.seq2seq import Seq2Seq

# name → (the axis that counts batch rows, what it is), for the manifest and the runtime
STATE = {
    "hidden": (1, "(L, N, H) recurrent state of every decoder layer"),
    "cell": (1, "(L, N, H) LSTM cell state of every decoder layer"),
    "input_feed": (0, "(N, H) the previous attentional vector (Luong input feeding)"),
}
SOURCE = {
    "memory": (0, "(N, S, D) encoder outputs"),
    "keys": (0, "(N, S, K) the attention's keys, projected once per batch"),
    "mask": (0, "(N, S) True at real source tokens"),
}


@dataclass(frozen=True)
class Names:
    """Which named tensors one model's graphs have."""

    state: tuple[str, ...]  # carried from step to step, reordered with the beams
    source: tuple[str, ...]  # fixed per sentence: repeated per beam, never recomputed

    @property
    def encoder_outputs(self) -> tuple[str, ...]:
        """The memory always comes out, though only attention reads it: PyTorch's exporter
        fails on a reversed encoder whose outputs nothing uses (its peephole pass)."""
        memory = () if "memory" in self.source else ("memory",)
        return (*memory, *self.source, *self.state)

    @property
    def step_inputs(self) -> tuple[str, ...]:
        return ("prev_tokens", *self.state, *self.source)

    @property
    def step_outputs(self) -> tuple[str, ...]:
        attention = ("attention",) if self.source else ()
        return ("log_probs", *(f"{name}_out" for name in self.state), *attention)


def names_of(model: Seq2Seq) -> Names:
    """The named tensors `model`'s graphs take and give (see the module's docstring)."""
    decoder = model.decoder
    state = ["hidden"]
    if decoder.is_lstm:
        state.append("cell")
    if decoder.input_feeding:
        state.append("input_feed")
    source: list[str] = []
    if decoder.attention is not None:
        source = ["memory", "mask"]
        if not isinstance(decoder.attention, DotAttention):
            source.insert(1, "keys")
    return Names(tuple(state), tuple(source))


class EncoderGraph(nn.Module):
    """`Seq2Seq.encode` as a graph: src (B, S), src_lengths (B,) → `names.encoder_outputs`."""

    def __init__(self, model: Seq2Seq):
        super().__init__()
        self.model = model
        self.names = names_of(model)

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        encoded = self.model.encoder(src, src_lengths)
        state = self.model.decoder.init_state(encoded)  # what Seq2Seq.encode returns
        found = {"memory": encoded.memory}  # the state holds none without attention
        wanted = (*self.names.source, *self.names.state)
        found.update((name, getattr(state, name)) for name in wanted)
        return tuple(found[name] for name in self.names.encoder_outputs)


class StepGraph(nn.Module):
    """`Decoder.step` as a graph: `names.step_inputs` → `names.step_outputs`, positionally."""

    def __init__(self, model: Seq2Seq):
        super().__init__()
        self.decoder = model.decoder
        self.names = names_of(model)

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        given = dict(zip(self.names.step_inputs, inputs, strict=True))
        memory = given.get("memory")
        state = DecoderState(
            hidden=given["hidden"],
            cell=given.get("cell"),
            input_feed=given.get("input_feed"),
            memory=memory,
            keys=given.get("keys", memory),  # dot attention: the keys are the memory
            mask=given.get("mask"),
        )
        log_probs, state, attention = self.decoder.step(given["prev_tokens"], state)
        carried = tuple(getattr(state, name) for name in self.names.state)
        return (log_probs, *carried, *((attention,) if self.names.source else ()))


def example_inputs(model: Seq2Seq) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """Inputs to trace both graphs with: a batch of 2 sources of 5 and 3 tokens (different
    lengths, so that padding is traced), and the step inputs the encoder makes of it."""
    src = torch.tensor([[4, 5, 6, 7, 8], [4, 5, 6, 0, 0]], dtype=torch.long)
    src = src.clamp(max=model.encoder.embed.num_embeddings - 1)
    lengths = torch.tensor([5, 3], dtype=torch.long)
    with torch.no_grad():
        encoded = EncoderGraph(model)(src, lengths)
    prev = torch.full((2,), 2, dtype=torch.long)  # <s>
    names = names_of(model)
    by_name = dict(zip(names.encoder_outputs, encoded, strict=True))
    step = tuple(by_name[name] for name in names.step_inputs[1:])
    return (src, lengths), (prev, *step)


def dynamic_axes(names: Names) -> tuple[dict[str, dict[int, str]], dict[str, dict[int, str]]]:
    """The batch and source-length axes of every input and output, for both graphs."""
    rows = {name: axis for name, (axis, _) in {**STATE, **SOURCE}.items()}

    def axes(name: str, batch: str) -> dict[int, str]:
        base = name.removesuffix("_out")
        if base in ("memory", "keys", "mask", "attention"):
            return {0: batch, 1: "S"}
        if base in rows:
            return {rows[base]: batch}
        return {0: batch}  # prev_tokens, log_probs, src_lengths

    encoder = {"src": {0: "B", 1: "S"}, "src_lengths": {0: "B"}}
    encoder.update({name: axes(name, "B") for name in names.encoder_outputs})
    step = {name: axes(name, "N") for name in (*names.step_inputs, *names.step_outputs)}
    return encoder, step
