"""bf16 and int8 on the CPU: they run, and agree with fp32 within stated tolerances.

bf16 keeps 8 bits of mantissa (about 2-3 significant digits), so on a tiny model the
teacher-forced loss in bf16 must be within 2% of the fp32 loss, and a short bf16
training run on the CPU must end with finite weights. Decoding in bf16 or int8 (dynamic
quantization of the linear layers) must give first-step log-probabilities within 0.1
nats of fp32's and the same greedy first token.
"""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load_file

from nmt.data.batching import collate
from nmt.decode.translate import Translator
from nmt.device import make_autocast
from nmt.errors import UserError
from nmt.model.loss import token_nll
from nmt.model.seq2seq import build_model
from nmt.recipe.schema import ModelConfig
from nmt.training.setup import train
from nmt.vocab import BOS, EOS


def test_bf16_loss_on_cpu_is_within_two_percent_of_fp32():
    torch.manual_seed(0)
    cfg = ModelConfig(embedding_size=32, hidden_size=64, dropout=0.0)
    model = build_model(cfg, 50, 40).eval()
    g = torch.Generator().manual_seed(1)
    src = torch.randint(4, 50, (8, 12), generator=g)
    body = torch.randint(4, 40, (8, 9), generator=g)
    tgt_in = torch.cat([torch.full((8, 1), BOS), body], dim=1)
    tgt_out = torch.cat([body, torch.full((8, 1), EOS)], dim=1)
    lengths = torch.full((8,), 12)
    losses = {}
    for precision in ("fp32", "bf16"):
        with torch.no_grad(), make_autocast(precision, torch.device("cpu")):
            losses[precision] = float(token_nll(model(src, lengths, tgt_in), tgt_out))
    assert losses["bf16"] != losses["fp32"]  # the products really ran in bf16
    assert math.isclose(losses["bf16"], losses["fp32"], rel_tol=0.02)


@pytest.mark.slow
def test_a_bf16_training_run_on_cpu(tmp_path, make_recipe):
    out = tmp_path / "run"
    r = train(make_recipe(out, "train.precision=bf16", "train.max_steps=6"), device="cpu")
    assert r.steps == 6
    weights = load_file(str(out / "model.safetensors"))
    assert all(t.dtype == torch.float32 and torch.isfinite(t).all() for t in weights.values())


def test_int8_and_bf16_decoding_agree_with_fp32(model_dir):
    # Tolerance: on the tiny model, each precision's first-step log-probabilities are within
    # 0.1 nats of fp32's, and greedy search picks the same first token in every sentence.
    from nmt.data.toy import numbers

    lines = [s for s, _ in numbers("test", 8)]
    fp32 = Translator.load(model_dir, "cpu")
    ids = fp32.encode(lines)
    first = {}
    for precision in ("fp32", "bf16", "int8"):
        translator = Translator.load(model_dir, "cpu", precision)
        if precision == "int8":
            assert type(translator.model.decoder.output).__module__.startswith("torch.ao")
        batch = collate(ids, None, list(range(len(ids))))
        with torch.no_grad(), translator.autocast:
            state = translator.model.encode(batch.src, batch.src_lengths)
            log_probs, _, _ = translator.model.step(torch.full((len(ids),), BOS), state)
        first[precision] = log_probs.float()
        found = translator.search(lines, beam_size=2)
        assert len(found) == len(lines) and all(f for f in found)
    for precision in ("bf16", "int8"):
        real = first["fp32"].isfinite()
        gap = (first[precision][real] - first["fp32"][real]).abs().max()
        assert gap < 0.1, (precision, float(gap))
        assert torch.equal(first[precision].argmax(-1), first["fp32"].argmax(-1))


def test_int8_decoding_needs_the_cpu(model_dir):
    if torch.cuda.is_available():
        with pytest.raises(UserError, match="int8 decoding runs on the CPU only"):
            Translator.load(model_dir, "cuda", "int8")
    else:
        with pytest.raises(UserError, match="--device cuda"):
            Translator.load(model_dir, "cuda", "int8")
