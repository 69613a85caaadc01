"""Encoder: packing makes padding invisible, and reversed input is reversed per sentence.

A padded batch gives, at every real position and in the final states, the numbers each
sentence gives alone; `reverse_padded` reverses each sentence's real tokens and leaves the
padding at the end; `reverse_input=True` reads the source backwards inside the encoder and
hands back memory in the original word order.
"""

import pytest
import torch

from nmt.model.encoder import Encoder, reverse_padded
from nmt.vocab import PAD

VOCAB = 20
LENGTHS = torch.tensor([5, 2, 6, 1])  # unsorted on purpose


def padded_batch(lengths: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """(B, max length) ids in [4, VOCAB), PAD after each sentence's end."""
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(4, VOCAB, (len(lengths), int(lengths.max())), generator=g)
    return src.masked_fill(torch.arange(src.size(1)) >= lengths.unsqueeze(1), PAD)


def make_encoder(cell: str, bidirectional: bool, reverse_input: bool = False) -> Encoder:
    torch.manual_seed(0)
    encoder = Encoder(VOCAB, 8, 6, 2, cell, bidirectional, reverse_input=reverse_input)
    return encoder.eval()


@pytest.mark.parametrize("bidirectional", [True, False], ids=["bi", "uni"])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_padded_batch_equals_each_sentence_alone(cell, bidirectional):
    encoder = make_encoder(cell, bidirectional)
    src = padded_batch(LENGTHS)
    out = encoder(src, LENGTHS)

    size = 6 * (2 if bidirectional else 1)
    assert out.memory.shape == (len(LENGTHS), src.size(1), size)
    assert out.hidden.shape == (2, len(LENGTHS), size)
    assert torch.equal(out.mask, src != PAD)
    assert (out.cell is None) == (cell != "lstm")
    for b, n in enumerate(LENGTHS.tolist()):
        alone = encoder(src[b : b + 1, :n], LENGTHS[b : b + 1])
        torch.testing.assert_close(out.memory[b, :n], alone.memory[0])
        torch.testing.assert_close(out.hidden[:, b], alone.hidden[:, 0])
        if cell == "lstm":
            torch.testing.assert_close(out.cell[:, b], alone.cell[:, 0])


def test_reverse_padded_reverses_each_sentence_and_keeps_padding_at_the_end():
    x = torch.tensor([[4, 5, 6, 0, 0], [7, 8, 0, 0, 0], [9, 10, 11, 12, 13]])
    lengths = torch.tensor([3, 2, 5])
    expected = torch.tensor([[6, 5, 4, 0, 0], [8, 7, 0, 0, 0], [13, 12, 11, 10, 9]])
    assert torch.equal(reverse_padded(x, lengths), expected)

    features = x.unsqueeze(2) * torch.tensor([1, -1])  # (B, S, 2): whole vectors move
    assert torch.equal(
        reverse_padded(features, lengths), expected.unsqueeze(2) * torch.tensor([1, -1])
    )


def test_reverse_padded_is_its_own_inverse():
    torch.manual_seed(0)
    src = padded_batch(LENGTHS, seed=1)
    assert torch.equal(reverse_padded(reverse_padded(src, LENGTHS), LENGTHS), src)
    x = torch.randn(len(LENGTHS), int(LENGTHS.max()), 3)
    assert torch.equal(reverse_padded(reverse_padded(x, LENGTHS), LENGTHS), x)


@pytest.mark.parametrize("bidirectional", [True, False], ids=["bi", "uni"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_reverse_input_reads_each_sentence_backwards(cell, bidirectional):
    backwards = make_encoder(cell, bidirectional, reverse_input=True)
    forwards = make_encoder(cell, bidirectional, reverse_input=False)
    forwards.load_state_dict(backwards.state_dict())
    src = padded_batch(LENGTHS)

    out = backwards(src, LENGTHS)
    manual = forwards(reverse_padded(src, LENGTHS), LENGTHS)
    torch.testing.assert_close(out.memory, reverse_padded(manual.memory, LENGTHS))
    torch.testing.assert_close(out.hidden, manual.hidden)
    assert torch.equal(out.mask, src != PAD)

    plain = forwards(src, LENGTHS)  # the reversal is not a no-op on this batch
    assert not torch.allclose(out.memory, plain.memory, atol=1e-4)
