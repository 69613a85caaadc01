"""The decoder: a stacked RNN that writes the target one token at a time.

Three wirings, chosen once by the attention name from the table `WIRINGS`:

* `none` (Sutskever et al. 2014; Cho et al. 2014): the RNN starts from the encoder's
  final state and reads only the previous token; its state is the output.
* `bahdanau` (Bahdanau et al. 2015): the previous state s_{i-1} queries the source, the
  context c_i joins the previous token's embedding as RNN input, and the output is the
  "deep output" tanh(W_o [s_i; c_i; E y_{i-1}]).
* `luong_*` (Luong et al. 2015): the RNN steps first, the new state s_i queries the
  source, and the output is the attentional vector h̃_i = tanh(W_c [c_i; s_i]). With input
  feeding, h̃_{i-1} joins the next step's input.

Each row of `WIRINGS` is a `Wiring` that spells out what differs: which state queries the
source, whether the context joins the RNN input, what the output projection reads, whether
input feeding can apply and whether all positions can run at once. The decoder reads those
fields and never asks which design it is.

Search drives `step(prev_tokens, state)`; the state is an explicit, reorderable
dataclass, so beam search never sees RNN internals. Training calls `forward` on the whole
target. When no step depends on the previous step's output (Luong without input feeding,
or no attention, under pure teacher forcing) `forward` takes the fast path: one cuDNN
RNN call over all positions and one batched attention product for all steps. It uses the
same modules as the step path and gives the same numbers (a test checks this).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from nmt.model.attention import ATTENTION
from nmt.model.embedding import tied_output
from nmt.model.encoder import RNNS, EncoderOutput
from nmt.recipe.schema import Attention, Bridge, Cell
from nmt.vocab import NEVER_WRITTEN, PAD


@dataclass
class DecoderState:
    hidden: torch.Tensor  # (L, B, H)
    cell: torch.Tensor | None  # (L, B, H), LSTM only
    input_feed: torch.Tensor | None  # (B, H) previous attentional vector, Luong + feeding
    memory: torch.Tensor | None  # (B, S, D) encoder outputs; None without attention
    keys: torch.Tensor | None  # (B, S, K) projected once per batch by the attention
    mask: torch.Tensor | None  # (B, S) True at real source tokens

    def reorder(self, index: torch.Tensor) -> DecoderState:
        """Keep / repeat / permute batch rows: row b of the result is row index[b]."""

        def pick(t: torch.Tensor | None, dim: int = 0) -> torch.Tensor | None:
            return None if t is None else t.index_select(dim, index)

        return DecoderState(
            pick(self.hidden, 1),
            pick(self.cell, 1),
            pick(self.input_feed),
            pick(self.memory),
            pick(self.keys),
            pick(self.mask),
        )


Query = Literal["previous", "current"]  # s_{i-1} before the RNN step, or s_i after it
Output = Literal["state", "attentional", "deep"]


@dataclass(frozen=True)
class Wiring:
    """What tells the three decoder designs apart. `Decoder` reads these fields only.

    query: the decoder state that queries the source: "previous" s_{i-1}, before the RNN
        step (Bahdanau), or "current" s_i, after it (Luong); None: no attention at all.
    context_in_input: the context c_i joins the previous token's embedding as RNN input.
    output: what the output projection reads: the RNN "state" s_i; Luong's "attentional"
        vector h̃_i = tanh(W_c [c_i; s_i]); Bahdanau's "deep" output tanh(W_o [s_i; c_i; E y]).
    input_feeding: h̃_{i-1} may join the next step's input (Luong et al. 2015, §3.3).
    parallel: unless input feeding is on, no step needs the previous step's output, so
        teacher-forced training can run all positions at once (the RNN input never holds a
        context, and the query is the RNN's own output).
    """

    query: Query | None
    context_in_input: bool
    output: Output
    input_feeding: bool
    parallel: bool

    @property
    def attends(self) -> bool:
        return self.query is not None


WIRINGS: dict[str, Wiring] = {
    "none": Wiring(
        query=None,
        context_in_input=False,
        output="state",
        input_feeding=False,
        parallel=True,
    ),
    "bahdanau": Wiring(
        query="previous",
        context_in_input=True,
        output="deep",
        input_feeding=False,
        parallel=False,
    ),
    "luong": Wiring(
        query="current",
        context_in_input=False,
        output="attentional",
        input_feeding=True,
        parallel=True,
    ),
}


def wiring_for(attention: Attention) -> Wiring:
    """The wiring of an attention name: its family, the part before "_" (luong_dot: luong)."""
    return WIRINGS[attention.partition("_")[0]]


# Functional one-step cells matching nn.LSTM / nn.GRU / nn.RNN (tanh) weight layouts.
CELLS = {"lstm": torch.lstm_cell, "gru": torch.gru_cell, "rnn": torch.rnn_tanh_cell}
_WEIGHT_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _never_special(logits: torch.Tensor) -> torch.Tensor:
    """Logits with `NEVER_WRITTEN` (<pad>, <s>) at -inf: the decoder never produces them.

    Applied in training, scoring and search alike, so the loss, the perplexity and the
    search all see one distribution, over the tokens the model can actually write. Fills
    in place, without a copy of the (B, V) logits: every caller passes the fresh output of
    the projection, which nothing else holds and whose backward does not need it.
    """
    for token in NEVER_WRITTEN:  # one fill per id: no index tensor to copy to the GPU
        logits[..., token] = float("-inf")
    return logits


class Decoder(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        embedding_size: int,
        hidden_size: int,
        num_layers: int,
        memory_size: int,
        encoder_layers: int,
        cell: Cell = "lstm",
        attention: Attention = "luong_general",
        input_feeding: bool = True,
        bridge: Bridge = "linear",
        dropout: float = 0.0,
        tie_embeddings: bool = False,
        embedding: nn.Module | None = None,
    ):
        """`embedding`: a target embedding to use instead of a new one: the encoder's, for
        shared embeddings (`nmt.model.embedding.shared_target_embedding`)."""
        super().__init__()
        self.wiring = wiring = wiring_for(attention)
        # the config resolves the default (`ModelConfig.feeds_input`); the wiring guards it
        self.input_feeding = input_feeding and wiring.input_feeding
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.encoder_layers = encoder_layers
        self.cell = cell
        self.is_lstm = cell == "lstm"

        if embedding is None:
            embedding = nn.Embedding(vocab_size, embedding_size, padding_idx=PAD)
        self.embed = embedding
        self.dropout = nn.Dropout(dropout)
        self.attention = ATTENTION[attention](hidden_size, memory_size) if wiring.attends else None
        rnn_input = embedding_size
        rnn_input += memory_size if wiring.context_in_input else 0
        rnn_input += hidden_size if self.input_feeding else 0
        self.rnn = RNNS[cell](
            rnn_input,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        if wiring.output == "attentional":
            self.combine = nn.Linear(memory_size + hidden_size, hidden_size, bias=False)  # W_c
        elif wiring.output == "deep":  # W_o
            self.combine = nn.Linear(hidden_size + memory_size + embedding_size, hidden_size)
        # Bridge: decoder layer l starts from encoder layer l (or the top one when the
        # stacks differ in depth) through its own linear maps for h and c, tanh on h only
        # (`_bridge` says why); "copy" hands the states over unchanged (Sutskever et al.),
        # "zeros" starts from zero.
        self.bridge = bridge
        n_maps = num_layers if bridge == "linear" else 0
        self.bridge_h = nn.ModuleList(nn.Linear(memory_size, hidden_size) for _ in range(n_maps))
        self.bridge_c = nn.ModuleList(
            nn.Linear(memory_size, hidden_size) for _ in range(n_maps if self.is_lstm else 0)
        )
        self.output = (
            tied_output(self.embed, hidden_size, vocab_size)
            if tie_embeddings
            else nn.Linear(hidden_size, vocab_size, bias=False)
        )

    # ------------------------------------------------------------------ state

    def init_state(self, encoded: EncoderOutput) -> DecoderState:
        batch = encoded.memory.size(0)
        hidden = self._bridge(self.bridge_h, encoded.hidden, encoded.memory, squash=True)
        cell = (
            self._bridge(self.bridge_c, encoded.cell, encoded.memory, squash=False)
            if self.is_lstm
            else None
        )
        if self.attention is None:
            return DecoderState(hidden, cell, None, None, None, None)
        feed = encoded.memory.new_zeros(batch, self.hidden_size) if self.input_feeding else None
        keys = self.attention.project_keys(encoded.memory)
        return DecoderState(hidden, cell, feed, encoded.memory, keys, encoded.mask)

    def _bridge(
        self,
        maps: nn.ModuleList,
        final: torch.Tensor | None,
        memory: torch.Tensor,
        squash: bool,
    ) -> torch.Tensor:
        """Initial (L, B, H) decoder state from the encoder's final (L_enc, B, D) one.

        `squash`: tanh(W h + b) for a hidden state, which every cell keeps in (-1, 1); an
        LSTM's cell state gets W c + b, unsquashed. The cell state is unbounded and grows
        along a sentence: on Multi30k an encoder's final c reached |c| ≈ 6.5 in the first
        epoch, W c ≈ 46, and tanh(W c) was ±1 for every sentence, with no gradient left to
        reach the encoder. A decoder without attention, which sees the source only
        through this state, then ignored it (the same translation for every sentence).
        """
        if self.bridge == "copy" and final is not None:
            return final  # sizes and depths match: the recipe checks it
        if len(maps) == 0 or final is None:
            return memory.new_zeros(self.num_layers, memory.size(0), self.hidden_size)
        same_depth = self.encoder_layers == self.num_layers
        layers = [m(final[i if same_depth else -1]) for i, m in enumerate(maps)]
        return torch.tanh(torch.stack(layers)) if squash else torch.stack(layers)  # (L, B, H)

    # ------------------------------------------------------------------ one step

    def step(
        self, prev_tokens: torch.Tensor, state: DecoderState
    ) -> tuple[torch.Tensor, DecoderState, torch.Tensor | None]:
        """prev_tokens (B,) → log-probabilities (B, V), the next state, attention (B, S)."""
        emb = self.dropout(self.embed(prev_tokens))
        out, state, weights = self._advance(emb, state)
        return F.log_softmax(_never_special(self.output(out).float()), dim=-1), state, weights

    def _advance(
        self, emb: torch.Tensor, state: DecoderState
    ) -> tuple[torch.Tensor, DecoderState, torch.Tensor | None]:
        """One RNN step from the embedded previous token emb (B, E).

        Returns the output (B, H) after dropout, ready for the projection and, with input
        feeding, fed back as it is (as OpenNMT-py does).
        """
        context = weights = None
        inputs = [emb]
        if self.wiring.query == "previous":
            context, weights = self._attend(state.hidden[-1], state)  # query s_{i-1}: (B, D)
        if self.wiring.context_in_input:
            inputs.append(context)
        if self.input_feeding:
            inputs.append(state.input_feed)  # h̃_{i-1}: (B, H)
        s, hidden, cell = self._rnn_step(torch.cat(inputs, dim=-1), state)  # s: (B, H)
        if self.wiring.query == "current":
            context, weights = self._attend(s, state)  # query s_i: (B, D)
        out = self.dropout(self._output(s, context, emb))
        feed = out if self.input_feeding else None
        return out, replace(state, hidden=hidden, cell=cell, input_feed=feed), weights

    def _output(
        self, s: torch.Tensor, context: torch.Tensor | None, emb: torch.Tensor
    ) -> torch.Tensor:
        """What the output projection reads (`Wiring.output`), before dropout.

        s (..., H), context (..., D), emb (..., E) → (..., H), for one step (B, ·) or all
        steps (B, T, ·) alike.
        """
        if self.wiring.output == "attentional":  # Luong: h̃_i = tanh(W_c [c_i; s_i])
            return torch.tanh(self.combine(torch.cat([context, s], dim=-1)))
        if self.wiring.output == "deep":  # Bahdanau: tanh(W_o [s_i; c_i; E y_{i-1}])
            return torch.tanh(self.combine(torch.cat([s, context, emb], dim=-1)))
        return s

    def _attend(
        self, query: torch.Tensor, state: DecoderState
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.attention(query, state.keys, state.memory, state.mask)

    def _rnn_step(
        self, x: torch.Tensor, state: DecoderState
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """One time step of the stacked RNN, layer by layer, on `self.rnn`'s own weights.

        A fused cell per layer is cheaper than a cuDNN call on a sequence of length 1
        (+17% training throughput on an H100); dropout between layers as nn.LSTM applies
        it. x (B, in) → top-layer output (B, H) and the new (L, B, H) states.
        """
        cell_fn = CELLS[self.cell]
        hiddens, cells = [], []
        for layer in range(self.num_layers):
            weights = [getattr(self.rnn, f"{w}_l{layer}") for w in _WEIGHT_NAMES]
            if self.is_lstm:
                h, c = cell_fn(x, (state.hidden[layer], state.cell[layer]), *weights)
                cells.append(c)
            else:
                h = cell_fn(x, state.hidden[layer], *weights)
            hiddens.append(h)
            last = layer == self.num_layers - 1
            x = h if last else F.dropout(h, self.rnn.dropout, self.training)
        return x, torch.stack(hiddens), torch.stack(cells) if cells else None

    def _run_rnn(
        self, x: torch.Tensor, state: DecoderState
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor | None]]:
        """All time steps at once: x (B, T, in) → outputs (B, T, H), one cuDNN call."""
        if self.is_lstm:
            out, (h, c) = self.rnn(x, (state.hidden, state.cell))
            return out, (h, c)
        out, h = self.rnn(x, state.hidden)
        return out, (h, None)

    # ------------------------------------------------------------------ training

    def forward(
        self,
        tgt_in: torch.Tensor,
        state: DecoderState,
        teacher_forcing: float = 1.0,
        step_by_step: bool = False,
        positions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits (B, T, V) for every target position, reading tgt_in (B, T) = <s> y.

        With `positions` (B, T), a boolean mask such as the real (non-padding) targets,
        only those rows are projected: logits (N, V) in row-major order. The output layer
        and its softmax are the largest cost of a step, and padding is a sixth of a batch.

        teacher_forcing < 1 is scheduled sampling (Bengio et al. 2015): at each position,
        with probability 1 - teacher_forcing, the model reads its own greedy prediction
        instead of the gold previous token.
        """
        emb = self.dropout(self.embed(tgt_in))  # (B, T, E)
        parallel = self.wiring.parallel and not self.input_feeding
        if parallel and teacher_forcing >= 1.0 and not step_by_step:
            return self._project(self._forward_parallel(emb, state), positions)
        outputs, logits = [], []
        for t in range(tgt_in.size(1)):
            emb_t = emb[:, t]
            if teacher_forcing < 1.0 and t > 0:
                use_model = torch.rand(emb_t.size(0), 1, device=emb.device) >= teacher_forcing
                predicted = self.dropout(self.embed(logits[-1].argmax(-1)))
                emb_t = torch.where(use_model, predicted, emb_t)
            out, state, _ = self._advance(emb_t, state)
            outputs.append(out)
            if teacher_forcing < 1.0:  # the next step needs this step's prediction
                logits.append(_never_special(self.output(out)))
        if logits:
            found = torch.stack(logits, dim=1)  # (B, T, V)
            return found if positions is None else found[positions]
        return self._project(torch.stack(outputs, dim=1), positions)  # one projection

    def _project(self, out: torch.Tensor, positions: torch.Tensor | None) -> torch.Tensor:
        """Logits of the outputs (B, T, H) after dropout: (B, T, V), or (N, V) at `positions`."""
        return _never_special(self.output(out if positions is None else out[positions]))

    def _forward_parallel(self, emb: torch.Tensor, state: DecoderState) -> torch.Tensor:
        """Outputs (B, T, H) for all positions at once from the embedded inputs emb (B, T, E),
        after dropout, ready for the projection.

        Only for a `Wiring.parallel` wiring without input feeding: one cuDNN call for the
        RNN and one batched attention product, with the step path's modules and numbers.
        """
        rnn_out, _ = self._run_rnn(emb, state)  # (B, T, H): one cuDNN call
        context = None
        if self.wiring.attends:  # the query is s_i, which the RNN has just computed
            context, _ = self._attend(rnn_out, state)  # (B, T, D): one batched product
        return self.dropout(self._output(rnn_out, context, emb))
