"""How far a gradient travels back through an encoder's recurrence: the vanishing-gradient
picture (Hochreiter 1991; Bengio et al. 1994; Pascanu et al. 2013), measured.

The first layer of an encoder's RNN (forward direction) is unrolled step by step with
its own weights, so that every state h_t is a node of the autograd graph, and the loss is
L = g · h_T for a fixed random direction g of the last state. Then

    ratio(t) = ‖∂L/∂h_t‖ / ‖∂L/∂h_T‖,   averaged over the batch, t = 1 … T.

With no attention, this is the only way the first words can steer what the decoder
starts from; a tanh RNN's ratios fall off geometrically, an LSTM's or a GRU's less so.
"""

from __future__ import annotations

import torch
from torch import nn

CELLS: dict[type[nn.RNNBase], type[nn.RNNCellBase]] = {
    nn.RNN: nn.RNNCell,
    nn.GRU: nn.GRUCell,
    nn.LSTM: nn.LSTMCell,
}


def unrolled_cell(rnn: nn.RNNBase) -> nn.RNNCellBase:
    """A cell computing one step of `rnn`'s first layer, forward direction, same weights."""
    kind = CELLS[type(rnn)]
    options = {"nonlinearity": rnn.nonlinearity} if isinstance(rnn, nn.RNN) else {}
    cell = kind(rnn.input_size, rnn.hidden_size, bias=rnn.bias, **options)
    names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if rnn.bias else [])
    with torch.no_grad():
        for name in names:
            getattr(cell, name).copy_(getattr(rnn, f"{name}_l0"))
    return cell.to(next(rnn.parameters()).device)


def gradient_ratios(rnn: nn.RNNBase, inputs: torch.Tensor, seed: int = 0) -> list[float]:
    """ratio(t) for t = 1 … T of `inputs` (B, T, input size), as defined above."""
    cell = unrolled_cell(rnn)
    batch, steps = inputs.shape[:2]
    h = inputs.new_zeros(batch, rnn.hidden_size)
    c = inputs.new_zeros(batch, rnn.hidden_size)
    states = []
    for t in range(steps):
        if isinstance(cell, nn.LSTMCell):
            h, c = cell(inputs[:, t], (h, c))
        else:
            h = cell(inputs[:, t], h)
        h.retain_grad()
        states.append(h)
    direction = torch.randn(rnn.hidden_size, generator=torch.Generator().manual_seed(seed))
    (states[-1] @ direction.to(inputs.device)).sum().backward()
    norms = torch.stack([s.grad.norm(dim=1) for s in states], dim=1)  # (B, T)
    return (norms / norms[:, -1:]).mean(dim=0).tolist()
