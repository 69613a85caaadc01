"""The loss (nmt.model.loss): cross-entropy over real target tokens, label smoothing over the
tokens the model can write, and a perplexity that cannot overflow.

Checked here: on a 6-token vocabulary whose <pad> and <s> logits are -inf (as the
decoder makes them), the smoothed loss equals a hand computation and is finite; ε = 0
gives plain cross-entropy; padding positions cost nothing; a real decoder's smoothed
loss is finite and has finite gradients.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from nmt.decode.scoring import perplexity
from nmt.model.loss import token_nll
from nmt.model.seq2seq import build_model
from nmt.recipe.schema import ModelConfig
from nmt.vocab import BOS, EOS, PAD

NEG = float("-inf")
# Two positions over a 6-token vocabulary: <pad>, <unk>, <s>, </s>, "a", "b".
LOGITS = torch.tensor(
    [
        [[NEG, 0.5, NEG, 1.0, 2.0, -1.0], [NEG, 0.0, NEG, 3.0, 0.0, 1.0]],
    ]
)  # (B=1, T=2, V=6)
TARGET = torch.tensor([[4, EOS]])  # "a" </s>


def by_hand(logits: list[float], gold: int, eps: float) -> float:
    """(1 - ε)(-log p(gold)) + ε · mean over the 4 writable tokens of -log p(w)."""
    writable = [i for i in range(6) if i not in (PAD, BOS)]
    z = math.log(sum(math.exp(logits[i]) for i in writable))
    nll = -(logits[gold] - z)
    uniform = sum(-(logits[w] - z) for w in writable) / len(writable)
    return (1 - eps) * nll + eps * uniform


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
def test_smoothed_loss_equals_the_hand_computation(eps):
    expected = sum(by_hand(LOGITS[0, t].tolist(), int(TARGET[0, t]), eps) for t in range(2))
    got = token_nll(LOGITS, TARGET, eps)
    assert math.isfinite(float(got))
    assert float(got) == pytest.approx(expected, rel=1e-6)


def test_zero_smoothing_is_plain_cross_entropy():
    plain = F.cross_entropy(LOGITS.view(-1, 6), TARGET.view(-1), reduction="sum")
    assert torch.allclose(token_nll(LOGITS, TARGET, 0.0), plain)


def test_full_vocabulary_smoothing_would_be_infinite():
    # The bug this module fixes: PyTorch's smoothing spreads mass over <pad> and <s> too.
    broken = F.cross_entropy(LOGITS.view(-1, 6), TARGET.view(-1), label_smoothing=0.1)
    assert math.isinf(float(broken))


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_padding_positions_cost_nothing(eps):
    padded_logits = torch.cat([LOGITS, torch.randn(1, 1, 6)], dim=1)
    padded_logits[..., [PAD, BOS]] = NEG
    padded_target = torch.tensor([[4, EOS, PAD]])
    assert torch.allclose(
        token_nll(padded_logits, padded_target, eps), token_nll(LOGITS, TARGET, eps)
    )


def test_a_real_decoders_smoothed_loss_and_gradients_are_finite():
    torch.manual_seed(0)
    cfg = ModelConfig(embedding_size=8, hidden_size=8, encoder_layers=1, decoder_layers=1)
    model = build_model(cfg, 11, 9)
    src = torch.tensor([[4, 5, 6], [7, 8, PAD]])
    tgt_in = torch.tensor([[BOS, 4, 5], [BOS, 6, PAD]])
    tgt_out = torch.tensor([[4, 5, EOS], [6, EOS, PAD]])
    loss = token_nll(model(src, torch.tensor([3, 2]), tgt_in), tgt_out, 0.1)
    loss.backward()
    assert math.isfinite(loss.item())
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())


def test_perplexity_cannot_overflow():
    assert perplexity(1.0) == pytest.approx(math.e)
    assert perplexity(1e6) == math.inf  # math.exp would raise OverflowError
