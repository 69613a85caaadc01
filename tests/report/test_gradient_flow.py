"""The gradient-flow measurement: a hand check on a two-step tanh RNN, and the script."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from torch import nn

from nmt.report.gradient_flow import gradient_ratios, unrolled_cell


def test_a_two_step_tanh_rnn_matches_the_chain_rule_by_hand():
    torch.manual_seed(0)
    rnn = nn.RNN(3, 4, batch_first=True)
    x = torch.randn(2, 2, 3)  # two sentences of two steps
    ratios = gradient_ratios(rnn, x, seed=5)
    g = torch.randn(4, generator=torch.Generator().manual_seed(5))  # the loss direction
    w_ih, w_hh = rnn.weight_ih_l0.detach(), rnn.weight_hh_l0.detach()
    b = (rnn.bias_ih_l0 + rnn.bias_hh_l0).detach()
    expected = []
    for s in range(2):
        h1 = torch.tanh(w_ih @ x[s, 0] + b)  # h0 = 0
        h2 = torch.tanh(w_ih @ x[s, 1] + w_hh @ h1 + b)
        d_h1 = w_hh.T @ ((1 - h2**2) * g)  # dL/dh2 = g, back through one tanh step
        expected.append(float(d_h1.norm() / g.norm()))
    assert ratios[1] == pytest.approx(1.0)
    assert ratios[0] == pytest.approx(sum(expected) / 2, rel=1e-5)


@pytest.mark.parametrize("kind", [nn.RNN, nn.GRU, nn.LSTM])
def test_the_unrolled_cell_computes_the_layer(kind):
    torch.manual_seed(1)
    rnn = kind(5, 6, batch_first=True)
    x = torch.randn(3, 4, 5)
    out, _ = rnn(x)
    cell = unrolled_cell(rnn)
    h = torch.zeros(3, 6)
    c = torch.zeros(3, 6)
    for t in range(4):
        if kind is nn.LSTM:
            h, c = cell(x[:, t], (h, c))
        else:
            h = cell(x[:, t], h)
    assert torch.allclose(h, out[:, -1], atol=1e-6)


def test_the_script_reports_each_cell_and_draws_them(tmp_path, root):
    image = tmp_path / "flow.png"
    command = [sys.executable, str(root / "benchmarks" / "gradient_flow.py"), "--length", "6"]
    command += ["--batch", "4", "--hidden", "8", "--embedding", "8", "--plot", str(image)]
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    ratios = json.loads(done.stdout)["ratios"]
    assert set(ratios) == {"rnn", "gru", "lstm"}
    assert all(len(r) == 6 and r[-1] == 1.0 for r in ratios.values())
    assert image.read_bytes().startswith(b"\x89PNG")
