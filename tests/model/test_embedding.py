"""nmt.model.embedding on its own: the target side's view of a shared embedding table
through the compact→joint id map, and the output layer tied to it (models that use them:
tests/model/test_share_embeddings.py)."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from nmt.model.embedding import (
    MappedEmbedding,
    MappedOutput,
    shared_target_embedding,
    tied_output,
)
from nmt.vocab import SPECIALS


def table(size: int = 10, dim: int = 3) -> nn.Embedding:
    torch.manual_seed(0)
    return nn.Embedding(size, dim)


def test_target_tokens_look_up_their_joint_rows():
    joint = table()
    ids = [*range(len(SPECIALS)), 7, 5]
    mapped = shared_target_embedding(joint, len(ids), ids)
    assert isinstance(mapped, MappedEmbedding)
    tokens = torch.tensor([[len(SPECIALS), len(SPECIALS) + 1]])
    assert torch.equal(mapped(tokens), joint.weight[[7, 5]].unsqueeze(0))
    output = tied_output(mapped, 3, len(ids))
    assert isinstance(output, MappedOutput)
    x = torch.randn(2, 3)
    assert torch.allclose(output(x), x @ joint.weight[ids].T)
    output(x).sum().backward()  # gradients reach the shared table
    assert joint.weight.grad is not None and joint.weight.grad[7].abs().sum() > 0


def test_the_same_ids_share_the_table_itself():
    joint = table()
    assert shared_target_embedding(joint, 10, None) is joint
    assert shared_target_embedding(joint, 10, list(range(10))) is joint
    output = tied_output(joint, 3, 10)
    assert output.weight is joint.weight


@pytest.mark.parametrize(
    ("ids", "words"),
    [
        ([0, 1], "has 2 ids for 5 targets"),
        ([1, 0, 2, 3, 4], "must keep the special symbols' ids"),
        ([0, 1, 2, 3, 99], "points outside the 10 joint ids"),
    ],
)
def test_a_bad_map_is_refused(ids, words):
    with pytest.raises(ValueError, match=re.escape(words)):
        MappedEmbedding(table(), 5, ids)


def test_a_map_never_given_is_refused_when_used():
    mapped = MappedEmbedding(table(), 5, None)
    with pytest.raises(RuntimeError, match="map of the shared embedding was never given"):
        mapped(torch.tensor([0]))
