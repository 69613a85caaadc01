"""Decoder and model: every way of running the decoder computes the same function.

The fast all-steps path equals the step-by-step path (logits, loss and gradients);
teacher-forced `forward` equals driving `step` with the gold tokens; a sentence in a padded
batch gets the logits it gets alone; `DecoderState.reorder` moves every field's rows;
each attention name gets its row of the `WIRINGS` table, and the modules that row asks for;
scheduled sampling feeds the model's own greedy predictions after the first position;
tied embeddings share one tensor; `build_model`'s uniform init stays in range.
"""

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nmt.model.attention import ATTENTION
from nmt.model.decoder import WIRINGS, Decoder, DecoderState, wiring_for
from nmt.model.encoder import Encoder
from nmt.model.loss import token_nll
from nmt.model.seq2seq import Seq2Seq, build_model
from nmt.recipe.schema import ModelConfig
from nmt.vocab import BOS, EOS, PAD, UNK

SRC_VOCAB, TGT_VOCAB = 15, 13
REAL = [i for i in range(TGT_VOCAB) if i not in (PAD, BOS)]  # columns `step` does not mask
ALL_ATTENTION = [*ATTENTION, "none"]


def tiny_model(
    attention: str = "luong_general",
    cell: str = "lstm",
    input_feeding: bool = True,
    decoder_layers: int = 2,
) -> Seq2Seq:
    """2-layer bidirectional encoder (memory 16), decoder of hidden size 16, no dropout."""
    torch.manual_seed(0)
    encoder = Encoder(SRC_VOCAB, 8, 8, num_layers=2, cell=cell, bidirectional=True)
    decoder = Decoder(
        TGT_VOCAB,
        8,
        16,
        num_layers=decoder_layers,
        memory_size=encoder.output_size,
        encoder_layers=2,
        cell=cell,
        attention=attention,
        input_feeding=input_feeding,
    )
    return Seq2Seq(encoder, decoder)


def pad(rows: list[list[int]]) -> torch.Tensor:
    width = max(map(len, rows))
    return torch.tensor([row + [PAD] * (width - len(row)) for row in rows])


def toy_batch(seed: int = 0):
    """src (B, S), src lengths (B,), tgt_in = <s> y and tgt_out = y </s>, both (B, T)."""
    g = torch.Generator().manual_seed(seed)
    src_lengths, tgt_lengths = [6, 3, 5], [4, 1, 6]
    src = [torch.randint(4, SRC_VOCAB, (n,), generator=g).tolist() for n in src_lengths]
    tgt = [torch.randint(4, TGT_VOCAB, (n,), generator=g).tolist() for n in tgt_lengths]
    return (
        pad(src),
        torch.tensor(src_lengths),
        pad([[BOS, *y] for y in tgt]),
        pad([[*y, EOS] for y in tgt]),
    )


def count_calls(module: nn.Module) -> list[int]:
    calls = [0]

    def hook(*_):
        calls[0] += 1

    module.register_forward_hook(hook)
    return calls


# ------------------------------------------------------------------ fast path = step path


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("attention", ["luong_dot", "luong_general", "luong_concat", "none"])
def test_fast_path_equals_step_path(attention, cell):
    model = tiny_model(attention, cell, input_feeding=False).train()
    rnn_calls = count_calls(model.decoder.rnn)
    src, src_lengths, tgt_in, tgt_out = toy_batch()
    params = [p for p in model.parameters() if p.requires_grad]

    results = []
    for step_by_step in (False, True):
        rnn_calls[0] = 0
        logits = model(src, src_lengths, tgt_in, step_by_step=step_by_step)
        loss = token_nll(logits, tgt_out)
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        results.append((rnn_calls[0], logits, loss, grads))
    (fast_calls, fast_logits, fast_loss, fast_grads) = results[0]
    (step_calls, step_logits, step_loss, step_grads) = results[1]

    assert fast_calls == 1  # the fast path really ran: one RNN call for all positions
    assert step_calls == 0  # the step path runs fused cells on the module's own weights
    torch.testing.assert_close(fast_logits, step_logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fast_loss, step_loss, atol=1e-5, rtol=1e-5)
    for p, g_fast, g_step in zip(params, fast_grads, step_grads, strict=True):
        assert (g_fast is None) == (g_step is None)
        if g_fast is not None:
            torch.testing.assert_close(g_fast, g_step, atol=1e-5, rtol=1e-4)
            assert g_fast.abs().sum() > 0 or p.dim() == 1  # the loss reached this weight


# ------------------------------------------------------------------ forward = step


@pytest.mark.parametrize(
    "attention, cell, input_feeding",
    [(a, "lstm", f) for a in ALL_ATTENTION for f in (True, False)]
    + [(a, c, True) for a in ("bahdanau", "luong_general") for c in ("gru", "rnn")],
)
def test_teacher_forced_forward_equals_stepping_gold_tokens(attention, cell, input_feeding):
    model = tiny_model(attention, cell, input_feeding).eval()
    src, src_lengths, tgt_in, _ = toy_batch()
    with torch.no_grad():
        log_probs = F.log_softmax(model(src, src_lengths, tgt_in)[..., REAL], dim=-1)
        state = model.encode(src, src_lengths)
        for t in range(tgt_in.size(1)):
            step_log_probs, state, weights = model.step(tgt_in[:, t], state)
            assert torch.isneginf(step_log_probs[:, [PAD, BOS]]).all()
            torch.testing.assert_close(
                step_log_probs[:, REAL], log_probs[:, t], atol=1e-5, rtol=1e-5
            )
            assert (weights is None) == (attention == "none")
            if weights is not None:
                assert weights.shape == src.shape
                assert torch.equal(weights[src == PAD], torch.zeros(int((src == PAD).sum())))


# ------------------------------------------------------------------ batched = one by one


@pytest.mark.parametrize(
    "attention, cell, input_feeding, decoder_layers",
    [(a, "lstm", True, 2) for a in ALL_ATTENTION]
    + [
        ("luong_general", "lstm", False, 2),
        ("bahdanau", "gru", True, 1),
        ("luong_general", "rnn", True, 1),
    ],
)
def test_batched_model_equals_one_sentence_at_a_time(
    attention, cell, input_feeding, decoder_layers
):
    model = tiny_model(attention, cell, input_feeding, decoder_layers).eval()
    src, src_lengths, tgt_in, tgt_out = toy_batch()
    with torch.no_grad():
        logits = model(src, src_lengths, tgt_in)
        for b in range(src.size(0)):
            n_src, n_tgt = int(src_lengths[b]), int((tgt_out[b] != PAD).sum())
            alone = model(src[b : b + 1, :n_src], src_lengths[b : b + 1], tgt_in[b : b + 1, :n_tgt])
            torch.testing.assert_close(logits[b, :n_tgt], alone[0], atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------ state


def test_reorder_selects_rows_of_every_field():
    batch, layers, size = 3, 2, 4

    def rows(*shape: int, batch_dim: int) -> torch.Tensor:
        """Every entry along batch_dim equals its row number: rows are easy to track."""
        view = [1] * len(shape)
        view[batch_dim] = batch
        return torch.arange(batch).view(view).expand(shape).float() + torch.rand(shape) / 2

    state = DecoderState(
        hidden=rows(layers, batch, size, batch_dim=1),
        cell=rows(layers, batch, size, batch_dim=1),
        input_feed=rows(batch, size, batch_dim=0),
        memory=rows(batch, 5, size, batch_dim=0),
        keys=rows(batch, 5, size, batch_dim=0),
        mask=rows(batch, 5, batch_dim=0) > 0.5,
    )
    index = torch.tensor([2, 0, 0, 1])
    reordered = state.reorder(index)
    for field in dataclasses.fields(DecoderState):
        before, after = getattr(state, field.name), getattr(reordered, field.name)
        dim = 1 if field.name in ("hidden", "cell") else 0
        assert torch.equal(after, before.index_select(dim, index)), field.name

    bare = dataclasses.replace(state, cell=None, input_feed=None, memory=None, keys=None, mask=None)
    bare = bare.reorder(index)
    assert bare.cell is None and bare.memory is None and bare.mask is None
    assert torch.equal(bare.hidden, state.hidden[:, index])


def test_input_feeding_feeds_the_attentional_vector_back():
    model = tiny_model("luong_general", input_feeding=True).eval()
    src, src_lengths, tgt_in, _ = toy_batch()
    with torch.no_grad():
        state = model.encode(src, src_lengths)
        assert torch.equal(state.input_feed, torch.zeros(src.size(0), 16))
        log_probs, state, _ = model.step(tgt_in[:, 0], state)
        # the state carries the vector h~ that the step projected to its log-probabilities
        expected = F.log_softmax(model.decoder.output(state.input_feed)[:, REAL], -1)
        torch.testing.assert_close(log_probs[:, REAL], expected)
        # and the next step reads it
        fed, _, _ = model.step(tgt_in[:, 1], state)
        unfed, _, _ = model.step(
            tgt_in[:, 1], dataclasses.replace(state, input_feed=state.input_feed * 0)
        )
        assert not torch.allclose(fed, unfed, atol=1e-4)


@pytest.mark.parametrize("decoder_layers", [2, 1, 3])
def test_bridge_maps_encoder_layer_l_to_decoder_layer_l(decoder_layers):
    model = tiny_model("luong_general", decoder_layers=decoder_layers).eval()
    decoder = model.decoder
    src, src_lengths, _, _ = toy_batch()
    with torch.no_grad():
        encoded = model.encoder(src, src_lengths)
        state = decoder.init_state(encoded)
        for layer in range(decoder_layers):
            source = layer if decoder_layers == 2 else -1  # the top layer when depths differ
            h = torch.tanh(decoder.bridge_h[layer](encoded.hidden[source]))
            c = decoder.bridge_c[layer](encoded.cell[source])  # a cell state: not squashed
            torch.testing.assert_close(state.hidden[layer], h)
            torch.testing.assert_close(state.cell[layer], c)


def test_the_bridge_passes_on_large_encoder_cell_states():
    """An LSTM's cell state is unbounded and grows along a sentence (|c| ≈ 6.5 after one
    epoch on Multi30k). Through tanh(W c + b) every sentence started the decoder from the
    same saturated ±1, no gradient reached the encoder, and a decoder without attention,
    which sees the source only through its initial state, ignored it. The cell map must
    tell large states apart and pass their gradient on, whatever their size."""
    model = tiny_model("none")
    src, src_lengths, _, _ = toy_batch()
    encoded = model.encoder(src, src_lengths)
    direction = torch.randn(2, 1, 16)  # (L_enc, 1, D)

    def start(cell: torch.Tensor) -> torch.Tensor:
        return model.decoder.init_state(dataclasses.replace(encoded, cell=cell)).cell

    # two sentences whose final cell states point the same way, one twice the other's size
    big = start(torch.cat([20 * direction, 40 * direction], dim=1))  # (L, 2, H)
    assert (big[:, 0] - big[:, 1]).abs().mean() > 1.0

    grads = []
    for size in (0.1, 20.0):
        cell = (size * direction).expand(-1, 3, -1).clone().requires_grad_()
        start(cell).sum().backward()
        grads.append(cell.grad)
    assert grads[0].abs().mean() > 0.01
    torch.testing.assert_close(grads[1], grads[0])  # as large for a large state as a small


# ------------------------------------------------------------------ wirings


@pytest.mark.parametrize(
    "attention, family",
    [("none", "none"), ("bahdanau", "bahdanau")] + [(a, "luong") for a in ATTENTION if "_" in a],
)
def test_each_attention_name_gets_its_family_wiring(attention, family):
    assert wiring_for(attention) is WIRINGS[family]
    for feeding in (True, False):
        decoder = tiny_model(attention, input_feeding=feeding).decoder
        wiring = decoder.wiring
        assert wiring is WIRINGS[family]
        assert (decoder.attention is None) == (not wiring.attends)
        assert hasattr(decoder, "combine") == (wiring.output != "state")
        # input feeding applies only where the wiring allows it, whatever is asked for
        assert decoder.input_feeding == (feeding and wiring.input_feeding)


@pytest.mark.parametrize("family", WIRINGS)
def test_wiring_table_is_consistent(family):
    wiring = WIRINGS[family]
    # the output reads a context exactly when there is attention
    assert wiring.attends == (wiring.output != "state")
    # only Luong's attentional vector h~ can be fed back
    assert not wiring.input_feeding or wiring.output == "attentional"
    # all positions at once needs an RNN input without context, queried by its own output
    if wiring.parallel:
        assert not wiring.context_in_input and wiring.query in (None, "current")
    # a context in the RNN input can only come from the previous state's query
    assert not wiring.context_in_input or wiring.query == "previous"


@pytest.mark.parametrize("attention", ["bahdanau", "none"])
def test_input_feeding_never_applies_without_luong(attention):
    fed = tiny_model(attention, input_feeding=True).eval()
    unfed = tiny_model(attention, input_feeding=False).eval()
    assert fed.decoder.rnn.input_size == unfed.decoder.rnn.input_size
    src, src_lengths, tgt_in, _ = toy_batch()
    with torch.no_grad():
        assert fed.encode(src, src_lengths).input_feed is None
        assert torch.equal(fed(src, src_lengths, tgt_in), unfed(src, src_lengths, tgt_in))


# ------------------------------------------------------------------ scheduled sampling


def bias_output(model: Seq2Seq, bias: dict[int, float]) -> None:
    """Give the output projection a bias so that the raw argmax avoids (or picks) tokens."""
    old = model.decoder.output
    new = nn.Linear(old.in_features, old.out_features, bias=True)
    with torch.no_grad():
        new.weight.copy_(old.weight)
        new.bias.zero_()
        for token, value in bias.items():
            new.bias[token] = value
    model.decoder.output = new


def greedy_teacher(model: Seq2Seq, src, src_lengths, steps: int) -> torch.Tensor:
    """Log-probs (B, T, REAL) of `step` fed its own argmax, as greedy search does."""
    state = model.encode(src, src_lengths)
    prev = torch.full((src.size(0),), BOS)
    out = []
    for _ in range(steps):
        log_probs, state, _ = model.step(prev, state)
        out.append(log_probs[:, REAL])
        prev = log_probs.argmax(-1)
    return torch.stack(out, dim=1)


@pytest.mark.parametrize("attention", ["luong_general", "bahdanau", "none"])
def test_scheduled_sampling_replaces_gold_inputs_after_the_first_position(attention):
    model = tiny_model(attention).train()
    bias_output(model, {PAD: -50.0, BOS: -50.0, UNK: -50.0})  # UNK is never predicted...
    src, src_lengths, tgt_in, _ = toy_batch()
    tgt_in = tgt_in.masked_fill(tgt_in > BOS, UNK)  # ...but every gold input after <s> is UNK

    teacher = model(src, src_lengths, tgt_in)
    assert torch.equal(model(src, src_lengths, tgt_in, teacher_forcing=1.0), teacher)
    torch.manual_seed(1)
    sampled = model(src, src_lengths, tgt_in, teacher_forcing=0.5)
    torch.testing.assert_close(sampled[:, 0], teacher[:, 0])
    assert not torch.allclose(sampled[:, 1:], teacher[:, 1:], atol=1e-3)


@pytest.mark.parametrize("attention", ["luong_general", "bahdanau", "none"])
def test_no_teacher_forcing_feeds_greedy_predictions(attention):
    model = tiny_model(attention).train()
    bias_output(model, {PAD: -50.0, BOS: -50.0})
    src, src_lengths, tgt_in, _ = toy_batch()
    sampled = model(src, src_lengths, tgt_in, teacher_forcing=0.0)
    expected = greedy_teacher(model, src, src_lengths, tgt_in.size(1))
    torch.testing.assert_close(F.log_softmax(sampled[..., REAL], -1), expected)


def test_scheduled_sampling_never_feeds_pad_or_bos():
    model = tiny_model("luong_general").train()
    bias_output(model, {PAD: 50.0})  # PAD has the largest raw logit everywhere
    src, src_lengths, tgt_in, _ = toy_batch()
    sampled = model(src, src_lengths, tgt_in, teacher_forcing=0.0)
    expected = greedy_teacher(model, src, src_lengths, tgt_in.size(1))
    torch.testing.assert_close(F.log_softmax(sampled[..., REAL], -1), expected)


# ------------------------------------------------------------------ construction


def test_tie_embeddings_shares_one_tensor():
    torch.manual_seed(0)
    tied = Decoder(TGT_VOCAB, 16, 16, 1, memory_size=16, encoder_layers=1, tie_embeddings=True)
    assert tied.output.weight is tied.embed.weight
    with torch.no_grad():
        tied.embed.weight[5, 0] = 7.0
    assert tied.output.weight[5, 0] == 7.0
    untied = Decoder(TGT_VOCAB, 16, 16, 1, memory_size=16, encoder_layers=1)
    assert untied.output.weight is not untied.embed.weight


@pytest.mark.parametrize("tie", [False, True])
def test_build_model_uniform_init_stays_in_range_and_keeps_padding_zero(tie):
    cfg = ModelConfig(
        embedding_size=16,
        hidden_size=16,
        encoder_layers=2,
        decoder_layers=2,
        dropout=0.0,
        tie_embeddings=tie,
        init_range=0.05,
    )
    torch.manual_seed(0)
    model = build_model(cfg, SRC_VOCAB, TGT_VOCAB)
    for name, p in model.named_parameters():
        assert p.abs().max() <= 0.05, name
        assert p.abs().max() > 0.025, name  # drawn from ±0.05, not left at PyTorch's default
    assert torch.equal(model.encoder.embed.weight[PAD], torch.zeros(16))
    assert torch.equal(model.decoder.embed.weight[PAD], torch.zeros(16))
    assert (model.decoder.output.weight is model.decoder.embed.weight) == tie


@pytest.mark.parametrize("input_feeding", [True, False])
def test_training_logits_never_offer_pad_or_bos(input_feeding):
    """Loss, perplexity and search share one distribution: <pad> and <s> get none of it."""
    model = tiny_model("luong_general", "lstm", input_feeding=input_feeding)
    src, src_lengths, tgt_in, _ = toy_batch()
    logits = model(src, src_lengths, tgt_in)
    assert torch.isneginf(logits[..., PAD]).all() and torch.isneginf(logits[..., BOS]).all()
    assert torch.isfinite(logits[..., 3:]).all()


@pytest.mark.parametrize(
    "attention, input_feeding, teacher_forcing",
    [("luong_general", False, 1.0), ("luong_general", True, 1.0), ("bahdanau", False, 1.0),
     ("none", False, 1.0), ("luong_dot", True, 0.5)],
)  # fmt: skip
def test_projecting_only_real_positions_equals_projecting_all(
    attention, input_feeding, teacher_forcing
):
    # The trainer asks for the real target positions only; the rows must be those of the
    # full (B, T, V) logits, on the parallel path, the step path and scheduled sampling.
    model = tiny_model(attention, input_feeding=input_feeding)
    src, src_lengths, tgt_in, tgt_out = toy_batch()
    real = tgt_out != PAD
    torch.manual_seed(1)
    full = model(src, src_lengths, tgt_in, teacher_forcing)
    torch.manual_seed(1)
    some = model(src, src_lengths, tgt_in, teacher_forcing, positions=real)
    assert some.shape == (int(real.sum()), TGT_VOCAB)
    assert torch.equal(some, full[real])
    assert torch.allclose(token_nll(some, tgt_out[real]), token_nll(full, tgt_out))
