"""The encoder: embeddings → stacked, optionally bidirectional RNN over packed sequences.

Packing (`pack_padded_sequence`) makes the RNN stop at each sentence's last real token,
so padding changes neither the outputs nor the final states: a padded batch gives the
same numbers as each sentence run alone (a test checks this).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from nmt.recipe.schema import Cell
from nmt.vocab import PAD

RNNS: dict[str, type[nn.RNNBase]] = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


@dataclass
class EncoderOutput:
    memory: torch.Tensor  # (B, S, D·H) top-layer outputs, both directions concatenated
    mask: torch.Tensor  # (B, S) True at real tokens
    hidden: torch.Tensor  # (L, B, D·H) final state of each layer, directions concatenated
    cell: torch.Tensor | None  # (L, B, D·H) final LSTM cell state, None for GRU / tanh RNN


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each row's first `lengths[b]` positions along dim 1; padding stays put.

    Sutskever et al. (2014) read the source backwards so that the first target words are
    near their source words. Reversing a padded batch as a block would move the padding to
    the front; this reverses every sentence on its own. It is its own inverse.
    """
    steps = torch.arange(x.size(1), device=x.device).unsqueeze(0)  # (1, S)
    ends = lengths.to(x.device).unsqueeze(1)  # (B, 1)
    index = torch.where(steps < ends, ends - 1 - steps, steps)  # (B, S)
    if x.dim() == 3:
        index = index.unsqueeze(2).expand_as(x)
    return x.gather(1, index)


class Encoder(nn.Module):
    """Embeddings and an `nn.LSTM` / `nn.GRU` / `nn.RNN` (tanh) stack.

    `hidden_size` is per direction: a bidirectional encoder's outputs have 2·hidden_size
    features (the forward and backward states of each position side by side).
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_size: int,
        hidden_size: int,
        num_layers: int = 1,
        cell: Cell = "lstm",
        bidirectional: bool = True,
        dropout: float = 0.0,
        reverse_input: bool = False,
    ):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embedding_size, padding_idx=PAD)
        self.dropout = nn.Dropout(dropout)
        self.rnn = RNNS[cell](
            embedding_size,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.reverse_input = reverse_input
        self.num_layers = num_layers
        self.directions = 2 if bidirectional else 1
        self.output_size = hidden_size * self.directions

    def forward(self, src: torch.Tensor, lengths: torch.Tensor) -> EncoderOutput:
        """src (B, S) ids, lengths (B,) on the CPU → memory in the original word order."""
        if self.reverse_input:
            src = reverse_padded(src, lengths)
        x = self.dropout(self.embed(src))  # (B, S, E)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, state = self.rnn(packed)
        memory, _ = pad_packed_sequence(out, batch_first=True, total_length=src.size(1))
        if self.reverse_input:  # attention then sees position j as source word j
            memory = reverse_padded(memory, lengths)
        hidden, cell = state if isinstance(state, tuple) else (state, None)
        return EncoderOutput(
            memory=memory,
            mask=src != PAD,
            hidden=self._join_directions(hidden),
            cell=None if cell is None else self._join_directions(cell),
        )

    def _join_directions(self, state: torch.Tensor) -> torch.Tensor:
        """(L·D, B, H) as PyTorch returns it → (L, B, D·H)."""
        layers, batch, size = self.num_layers, state.size(1), state.size(2)
        state = state.view(layers, self.directions, batch, size)
        return state.transpose(1, 2).reshape(layers, batch, self.directions * size)
