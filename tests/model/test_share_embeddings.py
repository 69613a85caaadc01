"""Shared source/target embeddings (`model.share_embeddings`, nmt.model.embedding).

Checked here: with a joint vocabulary and no restricted target, the decoder's embedding is
the encoder's (one parameter; gradients from both sides reach it); with a restricted
target, the decoder reads the shared table at `joint_ids[y]`, and a tied output layer
projects onto exactly those rows; the parameter count drops by the target embedding's size;
the id map is saved with the weights, so a model built without it and loaded computes what
the trained one did, and one never loaded refuses to run; decoding gathers the tied rows
once, and again after the weights change; int8 decoding keeps working;
recipe errors; training and translating through the library and the CLI.
"""

from __future__ import annotations

import contextlib
import dataclasses

import pytest
import torch
from safetensors.torch import load_file

from nmt.cli.main import app
from nmt.data.batching import EpochSchedule
from nmt.data.prepare import prepare_data
from nmt.data.tokenizer import TargetSubset, tokenizer_files
from nmt.decode.translate import Translator
from nmt.errors import UserError
from nmt.model.seq2seq import build_model, quantize_int8
from nmt.recipe.load import recipe_to_yaml
from nmt.recipe.schema import ModelConfig
from nmt.store import checkpoint
from nmt.training.loop import train_step
from nmt.training.setup import OPTIMIZERS
from nmt.vocab import BOS, PAD

CFG = ModelConfig(embedding_size=16, hidden_size=16, encoder_layers=1, decoder_layers=1)
KEPT = [0, 1, 2, 3, 5, 8, 9, 12, 20, 33]  # compact target id y is joint id KEPT[y]
JOINT = 40
SIZES = (JOINT, len(KEPT))


def model(share: bool = True, tie: bool = False, target_ids=KEPT, sizes=SIZES):
    cfg = dataclasses.replace(CFG, share_embeddings=share, tie_embeddings=tie, dropout=0.0)
    return build_model(cfg, *sizes, target_ids=target_ids)


def test_without_a_restricted_target_the_decoder_holds_the_encoders_embedding():
    m = model(target_ids=None, sizes=(JOINT, JOINT))
    assert m.decoder.embed is m.encoder.embed
    table = m.encoder.embed.weight
    src, tgt = torch.tensor([[5, 6]]), torch.tensor([[BOS, 30]])
    logits = m(src, torch.tensor([2]), tgt)
    logits[..., 4:].logsumexp(-1).sum().backward()
    used = set(table.grad.abs().sum(1).nonzero().flatten().tolist())
    assert {5, 6} <= used and {BOS, 30} <= used  # source rows and target rows, one tensor
    names = [name for name, _ in m.named_parameters()]
    assert "encoder.embed.weight" in names and "decoder.embed.weight" not in names


@pytest.mark.parametrize("tie", [False, True])
def test_a_restricted_target_reads_the_shared_table_through_its_ids(tie):
    m = model(tie=tie)
    table = m.encoder.embed.weight
    y = torch.tensor([[0, 4, 9, 5]])
    assert torch.equal(m.decoder.embed(y), table[torch.tensor(KEPT)[y]])
    if tie:
        x = torch.randn(3, 16)
        assert torch.allclose(m.decoder.output(x), x @ table[KEPT].T)
        assert m.decoder.output.out_features == len(KEPT)
    with torch.no_grad():  # one tensor: a change to the table is a change to both sides
        table[KEPT[4]] += 1.0
    assert torch.equal(m.decoder.embed(torch.tensor([4])), table[KEPT[4]].unsqueeze(0))
    assert torch.equal(m.decoder.embed(torch.tensor([PAD])), torch.zeros(1, 16))


def test_gradients_from_both_sides_reach_the_shared_rows():
    m = model(tie=True)
    src, tgt = torch.tensor([[6, 7]]), torch.tensor([[BOS, 4, 5]])  # target joint 2, 5, 8
    logits = m(src, torch.tensor([2]), tgt, positions=torch.ones(1, 3, dtype=torch.bool))
    torch.nn.functional.cross_entropy(logits, torch.tensor([4, 5, 3])).backward()
    used = set(m.encoder.embed.weight.grad.abs().sum(1).nonzero().flatten().tolist())
    assert {6, 7} <= used  # source embeddings
    assert {2, 5, 8} <= used  # target embeddings (BOS, compact 4 and 5)
    assert set(KEPT[3:]) <= used  # the tied output layer's rows
    assert not used - {6, 7, *KEPT}  # and nothing else


@pytest.mark.parametrize("tie", [False, True])
def test_sharing_saves_the_target_embedding(tie):
    apart = sum(p.numel() for p in model(share=False, tie=tie).parameters())
    shared = sum(p.numel() for p in model(share=True, tie=tie).parameters())
    assert apart - shared == len(KEPT) * CFG.embedding_size


def test_the_id_map_is_saved_with_the_weights(tmp_path):
    trained = model(tie=True)
    path = tmp_path / "model.safetensors"
    checkpoint.save_weights(path, trained)
    saved = load_file(str(path))
    assert saved["decoder.embed.joint_ids"].tolist() == KEPT
    assert [k for k in saved if k.endswith("embed.weight")] == ["encoder.embed.weight"]
    loaded = model(tie=True, target_ids=None)  # as Translator.load builds it
    checkpoint.load_weights(path, loaded)
    src, tgt = torch.tensor([[6, 7, 9]]), torch.tensor([[BOS, 4, 5]])
    assert torch.equal(loaded(src, torch.tensor([3]), tgt), trained(src, torch.tensor([3]), tgt))


def test_decoding_keeps_the_gathered_rows_until_the_weights_change(tmp_path):
    m, x = model(tie=True).eval(), torch.randn(2, 16)
    output = m.decoder.output
    with torch.no_grad():
        first = output(x)
        assert output.embedding.weight is output.embedding.weight  # gathered once
        m.encoder.embed.weight[KEPT[5]] += 1.0
        changed = output(x)
        assert torch.allclose(changed, x @ m.encoder.embed.weight[KEPT].T)
        assert torch.equal(first[:, 4], changed[:, 4]) and not torch.equal(
            first[:, 5], changed[:, 5]
        )
        other = model(tie=True)
        checkpoint.save_weights(tmp_path / "w.safetensors", other)
        checkpoint.load_weights(tmp_path / "w.safetensors", m)  # copied into the table
        assert torch.allclose(output(x), other.decoder.output(x))


def test_a_model_never_given_its_id_map_refuses_to_run():
    m = model(target_ids=None)
    with pytest.raises(RuntimeError, match="target_ids"):
        m(torch.tensor([[6]]), torch.tensor([1]), torch.tensor([[BOS]]))


@pytest.mark.parametrize(
    ("ids", "words"),
    [
        ([0, 1, 2, 3, 5], "5 ids for 10"),
        ([1, 0, 2, 3, *KEPT[4:]], "special"),
        ([*KEPT[:-1], 40], "outside"),
    ],
)
def test_a_bad_id_map_is_refused(ids, words):
    with pytest.raises(ValueError, match=words):
        model(target_ids=ids)


def test_int8_decoding_of_a_shared_tied_model():
    m = quantize_int8(model(tie=True))
    state = m.encode(torch.tensor([[6, 7]]), torch.tensor([2]))
    log_probs, _, _ = m.step(torch.tensor([BOS]), state)
    assert log_probs.shape == (1, len(KEPT)) and torch.isfinite(log_probs[0, 3:]).all()


# ---------------------------------------------------------------------------- recipes


def test_sharing_needs_a_joint_vocabulary(make_recipe, tmp_path):
    with pytest.raises(
        UserError, match=r"model\.share_embeddings needs tokenizer\.joint: true"
    ) as e:
        make_recipe(tmp_path, "model.share_embeddings=true", "tokenizer.joint=false")
    assert "model.share_embeddings" in str(e.value) and "tokenizer.joint" in str(e.value)


def test_sharing_with_tie_needs_equal_sizes(make_recipe, tmp_path):
    with pytest.raises(UserError, match="model.embedding_size == model.hidden_size"):
        make_recipe(tmp_path, "model.share_embeddings=true", "model.tie_embeddings=true")


def test_the_cli_names_the_keys(runner, quickstart, tiny_overrides, tmp_path):
    sets = [*tiny_overrides, "model.share_embeddings=true", "tokenizer.joint=false"]
    args = [arg for item in sets for arg in ("--set", item)]
    result = runner.invoke(app, ["train", str(quickstart), *args, "--output-dir", str(tmp_path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "model.share_embeddings needs tokenizer.joint: true" in result.stderr


# ---------------------------------------------------------------------------- training


SHARED = ["model.share_embeddings=true", "model.tie_embeddings=true", "model.hidden_size=16"]


def test_train_save_load_translate_with_a_restricted_target(make_recipe, tmp_path):
    """The library path `nmt train` takes, with the target ids given to build_model; then
    `Translator.load` rebuilds the model from the directory alone and decodes the same."""
    out = tmp_path / "run"
    recipe = make_recipe(out, *SHARED)
    data = prepare_data(recipe)
    assert isinstance(data.tgt_tok, TargetSubset)
    sizes = data.src_tok.vocab_size, data.tgt_tok.vocab_size
    trained = build_model(recipe.model, *sizes, target_ids=data.tgt_tok.kept)
    optimizer = OPTIMIZERS["adam"](trained.parameters(), lr=0.01)
    batches = iter(EpochSchedule(data.train_ids, 500, recipe.seed))
    for _ in range(5):
        batch, _ = next(batches)
        fp32 = contextlib.nullcontext()
        train_step(trained, batch, batch.target_tokens, optimizer, recipe.train, fp32)
    out.mkdir()
    for name, content in tokenizer_files(recipe.tokenizer, data.src_tok, data.tgt_tok).items():
        (out / name).write_bytes(content)
    (out / checkpoint.RECIPE).write_text(recipe_to_yaml(recipe), encoding="utf-8")
    checkpoint.save_weights(out / checkpoint.WEIGHTS, trained)

    loaded = Translator.load(out, "cpu")
    assert loaded.model.decoder.embed.joint_ids.tolist() == data.tgt_tok.kept
    fresh = Translator(trained, recipe, data.src_tok, data.tgt_tok, torch.device("cpu"))
    lines = ["three red dogs sleep", "one cat"]
    assert loaded.translate(lines, beam_size=2) == fresh.translate(lines, beam_size=2)


@pytest.mark.slow
def test_train_and_translate_through_the_cli(runner, quickstart, tiny_overrides, tmp_path):
    """A joint vocabulary without restriction: one table for source, target and output."""
    out = tmp_path / "run"
    sets = [*tiny_overrides, *SHARED, "tokenizer.restrict_target=false", "train.max_steps=10"]
    args = [arg for item in sets for arg in ("--set", item)]
    result = runner.invoke(
        app, ["train", str(quickstart), *args, "--output-dir", str(out), "--device", "cpu"]
    )
    assert result.exit_code == 0, result.output
    weights = load_file(str(out / checkpoint.WEIGHTS))
    assert [k for k in weights if "embed" in k or "output" in k] == ["encoder.embed.weight"]
    source = tmp_path / "in.en"
    source.write_text("three red dogs\n", encoding="utf-8")
    result = runner.invoke(app, ["translate", str(source), "--model", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 1


def test_train_and_translate_a_restricted_target_through_the_cli(
    runner, quickstart, tiny_overrides, tmp_path
):
    out = tmp_path / "run"
    sets = [*tiny_overrides, *SHARED, "train.max_steps=10"]
    args = [arg for item in sets for arg in ("--set", item)]
    result = runner.invoke(
        app, ["train", str(quickstart), *args, "--output-dir", str(out), "--device", "cpu"]
    )
    assert result.exit_code == 0, result.output
    assert (out / "target_vocab.txt").is_file()
    source = tmp_path / "in.en"
    source.write_text("three red dogs\n", encoding="utf-8")
    result = runner.invoke(app, ["translate", str(source), "--model", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
