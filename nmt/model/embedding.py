"""The target side's view of an embedding table it shares with the source side.

With `model.share_embeddings` (fairseq's --share-all-embeddings) the source and target
embeddings are one table over the joint vocabulary. The target side, though, counts its
tokens in compact ids when the output layer is restricted to the target's pieces
(`tokenizer.restrict_target`, nmt.data.tokenizer.TargetSubset): compact id y is joint id
`joint_ids[y]`. `MappedEmbedding` looks target tokens up through that map, and
`MappedOutput` is an output projection tied to those rows of the table, so
restrict_target, share_embeddings and tie_embeddings combine. Without a restricted target
the decoder holds the encoder's own `nn.Embedding` and needs neither class.

The map is a buffer saved with the weights: a model directory needs nothing else to
rebuild it, and loading checks its length like any other tensor's shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nmt.vocab import SPECIALS


class MappedEmbedding(nn.Module):
    """Row `joint_ids[y]` of a shared table for target token y (compact ids).

    `joint_ids` None builds a model whose map comes with its weights (`load_weights`);
    running it before they are loaded is a bug, refused with a message.
    """

    def __init__(self, table: nn.Embedding, size: int, joint_ids: Sequence[int] | None = None):
        super().__init__()
        self.table = table
        if joint_ids is None:
            ids, self.known = torch.zeros(size, dtype=torch.long), False
        else:
            # on the CPU even under torch.device("meta"), so that it can be checked
            ids, self.known = torch.tensor(list(joint_ids), dtype=torch.long, device="cpu"), True
            _check_map(ids, size, table.num_embeddings)
        self.register_buffer("joint_ids", ids)
        self.num_embeddings, self.embedding_dim = size, table.embedding_dim
        self._rows: tuple[tuple[int, ...], torch.Tensor] | None = None  # kept for decoding

    @property
    def weight(self) -> torch.Tensor:
        """The target's rows of the shared table, (V_target, E): a gather, so gradients
        reach the table. Without gradients (decoding) the rows are gathered once and kept
        until the table or the map changes (a step would otherwise copy V_target × E)."""
        self._check_known()
        table = self.table.weight
        if torch.is_grad_enabled() and table.requires_grad:
            return table.index_select(0, self.joint_ids)
        ids = self.joint_ids
        key = (table._version, table.data_ptr(), ids._version, ids.data_ptr())
        if self._rows is None or self._rows[0] != key:
            self._rows = key, table.detach().index_select(0, ids)
        return self._rows[1]

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (...) compact ids → (..., E); <pad> maps to <pad>, whose row stays zero."""
        self._check_known()
        return self.table(self.joint_ids[tokens])

    def _check_known(self) -> None:
        if not self.known:
            raise RuntimeError(
                "the target→joint id map of the shared embedding was never given: pass "
                "build_model(..., target_ids=the target tokenizer's kept ids) or load weights"
            )

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args)
        if f"{prefix}joint_ids" in state_dict:
            self.known = True


class MappedOutput(nn.Module):
    """An output projection tied to a `MappedEmbedding`: logits = x · table[joint_ids]ᵀ."""

    def __init__(self, embedding: MappedEmbedding):
        super().__init__()
        self.embedding = embedding
        self.in_features = embedding.embedding_dim
        self.out_features = embedding.num_embeddings

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.embedding.weight)  # (..., E) → (..., V_target)


def _check_map(ids: torch.Tensor, size: int, joint_size: int) -> None:
    specials = torch.arange(len(SPECIALS))
    if ids.dim() != 1 or len(ids) != size or len(ids) < len(specials):
        raise ValueError(f"the target→joint id map has {len(ids)} ids for {size} targets")
    if not torch.equal(ids[: len(specials)], specials):
        raise ValueError("the target→joint id map must keep the special symbols' ids")
    if int(ids.min()) < 0 or int(ids.max()) >= joint_size:
        raise ValueError(f"the target→joint id map points outside the {joint_size} joint ids")


def shared_target_embedding(
    table: nn.Embedding, size: int, joint_ids: Sequence[int] | None
) -> nn.Module:
    """The decoder's embedding when it shares `table` (the encoder's): the table itself
    when the target ids are the joint ids, else a `MappedEmbedding`.

    `joint_ids` None with as many target ids as joint ones means the same ids (a joint
    vocabulary, tokenizer.restrict_target false).
    """
    identity = joint_ids is None and size == table.num_embeddings
    if joint_ids is not None and list(joint_ids) == list(range(table.num_embeddings)):
        identity = True  # a target side that uses every piece
    return table if identity else MappedEmbedding(table, size, joint_ids)


def tied_output(embedding: nn.Module, hidden_size: int, vocab_size: int) -> nn.Module:
    """An output projection (hidden → vocabulary) whose weight is the target embedding."""
    if isinstance(embedding, MappedEmbedding):
        return MappedOutput(embedding)
    output = nn.Linear(hidden_size, vocab_size, bias=False)
    output.weight = embedding.weight
    return output
