"""A small random Seq2Seq and a padded source batch: what the search and ensemble tests
decode (their consistency checks, not the oracle tests, which script their own steps)."""

from __future__ import annotations

import torch

from nmt.model.decoder import Decoder
from nmt.model.encoder import Encoder
from nmt.model.seq2seq import Seq2Seq
from nmt.vocab import PAD

SRC_LENGTHS = [5, 2, 7, 3, 4]
MAX_LENGTHS = torch.tensor([6, 3, 8, 4, 5])


def tiny_model(
    attention: str = "luong_general", cell: str = "lstm", size: int = 16, seed: int | None = 0
) -> Seq2Seq:
    """A random model, 12 source and 10 target ids, in eval mode (seed None: drawn from the
    global generator as it stands)."""
    if seed is not None:
        torch.manual_seed(seed)
    encoder = Encoder(12, 8, 8, num_layers=1, cell=cell, bidirectional=True)
    decoder = Decoder(10, 8, size, 1, encoder.output_size, 1, cell=cell, attention=attention)
    return Seq2Seq(encoder, decoder).eval()


def source_batch(lengths: list[int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(src (B, max length) of random ids padded with PAD, lengths (B,))."""
    g = torch.Generator().manual_seed(seed)
    src = torch.full((len(lengths), max(lengths)), PAD)
    for b, n in enumerate(lengths):
        src[b, :n] = torch.randint(4, 12, (n,), generator=g)
    return src, torch.tensor(lengths)
