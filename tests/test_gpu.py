"""The same code on the GPU: model paths, search, training step, weights I/O.

Skipped without CUDA (CI has none); run on a GPU machine with `pytest tests/test_gpu.py`.
"""

from __future__ import annotations

import pytest
import torch

from nmt.decode.search import beam_search, greedy_search, max_output_lengths
from nmt.model.loss import token_nll
from nmt.model.seq2seq import build_model
from nmt.recipe.schema import ModelConfig
from nmt.store import checkpoint

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
CUDA = torch.device("cuda")


@pytest.fixture(autouse=True)
def exact_fp32():
    """TF32 would make GPU and CPU differ by more than float tolerance."""
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def batch(device):
    g = torch.Generator().manual_seed(0)
    src = torch.randint(4, 40, (4, 9), generator=g)
    lengths = torch.tensor([9, 7, 4, 1])
    for b, n in enumerate(lengths.tolist()):
        src[b, n:] = 0
    tgt = torch.randint(4, 50, (4, 6), generator=g)
    return src.to(device), lengths, tgt.to(device)


@pytest.mark.parametrize("attention", ["none", "bahdanau", "luong_general", "luong_concat"])
@pytest.mark.parametrize("feeding", [True, False])
def test_gpu_matches_cpu(attention, feeding):
    torch.manual_seed(0)
    cfg = ModelConfig(
        embedding_size=16, hidden_size=32, attention=attention, input_feeding=feeding, dropout=0.0
    )
    model = build_model(cfg, 40, 50).eval()
    src, lengths, tgt = batch("cpu")
    expected = model(src, lengths, tgt)
    model.to(CUDA)
    fast = model(src.to(CUDA), lengths, tgt.to(CUDA))
    step = model(src.to(CUDA), lengths, tgt.to(CUDA), step_by_step=True)
    torch.testing.assert_close(fast.cpu(), expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(step.cpu(), expected, atol=1e-4, rtol=1e-4)


def test_search_on_gpu_beam1_equals_greedy():
    torch.manual_seed(0)
    model = build_model(ModelConfig(embedding_size=16, hidden_size=32, dropout=0.0), 40, 50)
    model.to(CUDA).eval()
    src, lengths, _ = batch(CUDA)
    max_len = max_output_lengths(lengths.to(CUDA), 1.5, 3)
    greedy = greedy_search(model.step, model.encode(src, lengths), max_len)
    beam = beam_search(model.step, model.encode(src, lengths), max_len, 1)
    assert [h[0].tokens for h in greedy] == [h[0].tokens for h in beam]
    five = beam_search(model.step, model.encode(src, lengths), max_len, 5, nbest=5)
    assert all(len(h) == 5 for h in five)


@pytest.mark.parametrize("autocast", [False, True])
def test_training_step_and_weights_on_gpu(tmp_path, autocast):
    torch.manual_seed(0)
    cfg = ModelConfig(embedding_size=32, hidden_size=32, tie_embeddings=True)
    model = build_model(cfg, 40, 50).to(CUDA)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    src, lengths, tgt = batch(CUDA)
    losses = []
    for _ in range(20):
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            loss = token_nll(model(src, lengths, tgt), tgt) / (tgt != 0).sum()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(loss))
    assert losses[-1] < losses[0] * 0.8  # it learns to copy this one batch
    # cuDNN keeps RNN weights in one flat buffer: saving must still work.
    checkpoint.save_weights(tmp_path / "w.safetensors", model)
    again = build_model(cfg, 40, 50)
    checkpoint.load_weights(tmp_path / "w.safetensors", again)
    for (name, a), b in zip(model.state_dict().items(), again.state_dict().values(), strict=True):
        assert torch.equal(a.cpu(), b), name
