"""Attention: every score in `ATTENTION` is a masked softmax over the source positions.

For one-step queries (B, H) and all-steps queries (B, T, H): the weights sum to 1 over the
source, are exactly 0 at padding (whatever the padded memory holds), the context is
weights @ memory, one call for all steps equals one call per step, and each class computes
the score its docstring gives.
"""

import pytest
import torch
import torch.nn.functional as F

from nmt.model.attention import ATTENTION, AdditiveAttention, DotAttention, GeneralAttention

QUERY_SIZE = 8
LENGTHS = torch.tensor([5, 3, 1])  # B = 3 sentences, S = 5 positions
STEPS = 4  # T target positions for the all-steps query


def make(name: str) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """The attention module, memory (B, S, D) and mask (B, S) True at real tokens."""
    torch.manual_seed(0)
    memory_size = QUERY_SIZE if name == "luong_dot" else 12
    attention = ATTENTION[name](QUERY_SIZE, memory_size)
    memory = torch.randn(len(LENGTHS), int(LENGTHS.max()), memory_size)
    mask = torch.arange(memory.size(1)) < LENGTHS.unsqueeze(1)
    return attention, memory, mask


def query(steps: int | None) -> torch.Tensor:
    shape = (len(LENGTHS), QUERY_SIZE) if steps is None else (len(LENGTHS), steps, QUERY_SIZE)
    return torch.randn(shape)


@pytest.mark.parametrize("steps", [None, STEPS], ids=["one_step", "all_steps"])
@pytest.mark.parametrize("name", list(ATTENTION))
def test_weights_are_a_distribution_over_real_tokens(name, steps):
    attention, memory, mask = make(name)
    q = query(steps)
    context, weights = attention(q, attention.project_keys(memory), memory, mask)

    lead = q.shape[:-1]  # (B,) or (B, T)
    assert weights.shape == (*lead, memory.size(1))
    assert context.shape == (*lead, memory.size(2))
    torch.testing.assert_close(weights.sum(-1), torch.ones(lead))
    pad = ~mask if steps is None else (~mask).unsqueeze(1).expand_as(weights)
    assert torch.equal(weights[pad], torch.zeros(int(pad.sum())))
    assert (weights[~pad] > 0).all()


@pytest.mark.parametrize("steps", [None, STEPS], ids=["one_step", "all_steps"])
@pytest.mark.parametrize("name", list(ATTENTION))
def test_context_is_weighted_average_of_memory(name, steps):
    attention, memory, mask = make(name)
    q = query(steps)
    context, weights = attention(q, attention.project_keys(memory), memory, mask)

    expected = torch.einsum("b...s,bsd->b...d", weights, memory)
    torch.testing.assert_close(context, expected)


@pytest.mark.parametrize("name", list(ATTENTION))
def test_all_steps_equal_one_step_at_a_time(name):
    attention, memory, mask = make(name)
    keys = attention.project_keys(memory)
    q = query(STEPS)
    context, weights = attention(q, keys, memory, mask)  # (B, T, D), (B, T, S)

    for t in range(STEPS):
        context_t, weights_t = attention(q[:, t], keys, memory, mask)
        torch.testing.assert_close(context[:, t], context_t)
        torch.testing.assert_close(weights[:, t], weights_t)


@pytest.mark.parametrize("name", list(ATTENTION))
def test_padded_memory_does_not_matter(name):
    attention, memory, mask = make(name)
    q = query(STEPS)
    context, weights = attention(q, attention.project_keys(memory), memory, mask)

    noisy = memory.masked_fill(~mask.unsqueeze(2), 1e3)
    context2, weights2 = attention(q, attention.project_keys(noisy), noisy, mask)
    torch.testing.assert_close(context2, context)
    torch.testing.assert_close(weights2, weights)


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return F.softmax(scores.masked_fill(~mask.unsqueeze(1), float("-inf")), dim=-1)


def test_scores_follow_their_formulas():
    torch.manual_seed(0)
    memory = torch.randn(3, 5, QUERY_SIZE)
    mask = torch.arange(5) < LENGTHS.unsqueeze(1)
    q = torch.randn(3, STEPS, QUERY_SIZE)

    def weights_of(attention):
        return attention(q, attention.project_keys(memory), memory, mask)[1]

    dot = DotAttention(QUERY_SIZE, QUERY_SIZE)  # s · h_j
    expected = masked_softmax(torch.einsum("bth,bsh->bts", q, memory), mask)
    torch.testing.assert_close(weights_of(dot), expected)

    general = GeneralAttention(QUERY_SIZE, QUERY_SIZE)  # s · W h_j
    keys = memory @ general.key_proj.weight.T
    expected = masked_softmax(torch.einsum("bth,bsh->bts", q, keys), mask)
    torch.testing.assert_close(weights_of(general), expected)

    additive = AdditiveAttention(QUERY_SIZE, QUERY_SIZE)  # v · tanh(W s + U h_j + b)
    w_s = q @ additive.query_proj.weight.T  # (B, T, A)
    u_h = memory @ additive.key_proj.weight.T + additive.key_proj.bias  # (B, S, A)
    hidden = torch.tanh(w_s.unsqueeze(2) + u_h.unsqueeze(1))  # (B, T, S, A)
    expected = masked_softmax(hidden @ additive.v.weight.squeeze(0), mask)
    torch.testing.assert_close(weights_of(additive), expected)


def test_dot_attention_refuses_mismatched_sizes():
    with pytest.raises(ValueError, match="equal sizes"):
        DotAttention(8, 12)
    DotAttention(8, 8)  # equal sizes are fine
