"""Model-directory I/O (nmt.store.checkpoint): safetensors weights, atomic writes, resumable state.

Checked here: weights round-trip, tied weights included (and stay tied); files without the
right `nmt_format` metadata, unreadable or missing files, and weights for a model of
another shape are `UserError`s naming the file; `write_*` and `save_weights` leave no
temporary file behind and replace old content; `save_last`/`load_last` restore model,
optimizer and scheduler state, the trainer dict and torch's random state, survive being
saved twice, and fall back to `last.old` after a crash between the two renames.
"""

from __future__ import annotations

import json
import os
import re

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from nmt.errors import UserError
from nmt.store.checkpoint import (
    FORMAT,
    LAST,
    WEIGHTS,
    load_last,
    load_weights,
    save_last,
    save_weights,
)
from nmt.store.files import append_jsonl, write_bytes, write_json, write_text


class Tiny(nn.Module):
    """Embedding → GRU → output projection, optionally tied to the embedding."""

    def __init__(self, vocab: int = 11, size: int = 6, tie: bool = False):
        super().__init__()
        self.embedding = nn.Embedding(vocab, size)
        self.rnn = nn.GRU(size, size, batch_first=True)
        self.out = nn.Linear(size, vocab)
        if tie:
            self.out.weight = self.embedding.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.rnn(self.embedding(x))[0])


def same_parameters(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def leftovers(directory) -> list[str]:
    return sorted(p.name for p in directory.rglob("*") if "tmp" in p.name or "old" in p.name)


# ---------------------------------------------------------------------------- weights


@pytest.mark.parametrize("tie", [False, True])
def test_weights_round_trip(tmp_path, tie):
    torch.manual_seed(0)
    model, other = Tiny(tie=tie), Tiny(tie=tie)
    assert not same_parameters(model, other)
    save_weights(tmp_path / WEIGHTS, model)
    load_weights(tmp_path / WEIGHTS, other)
    assert same_parameters(model, other)
    if tie:
        assert other.out.weight is other.embedding.weight
    x = torch.tensor([[1, 2, 3]])
    assert torch.equal(model(x), other(x))
    assert leftovers(tmp_path) == []


def test_tied_weights_stored_once(tmp_path):
    save_weights(tmp_path / "tied.safetensors", Tiny(vocab=500, size=64, tie=True))
    save_weights(tmp_path / "untied.safetensors", Tiny(vocab=500, size=64, tie=False))
    tied, untied = (os.path.getsize(tmp_path / f"{n}.safetensors") for n in ("tied", "untied"))
    assert untied - tied >= 500 * 64 * 4 * 0.9


def test_save_weights_replaces_old_file(tmp_path):
    path = tmp_path / WEIGHTS
    path.write_bytes(b"old junk")
    model = Tiny()
    save_weights(path, model)
    fresh = Tiny()
    load_weights(path, fresh)
    assert same_parameters(model, fresh)


def test_missing_weights_file(tmp_path):
    with pytest.raises(UserError, match=re.escape(f"{tmp_path / WEIGHTS}: missing")) as e:
        load_weights(tmp_path / WEIGHTS, Tiny())
    assert str(tmp_path / WEIGHTS) in str(e.value)


@pytest.mark.parametrize("metadata", [None, {"other": "x"}, {"nmt_format": FORMAT + "0"}])
def test_wrong_format_metadata(tmp_path, metadata):
    path = tmp_path / WEIGHTS
    model = Tiny()
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(path), metadata=metadata)
    with pytest.raises(
        UserError, match=re.escape(f"{path}: written by another version of nmt")
    ) as e:
        load_weights(path, Tiny())
    assert str(path) in str(e.value) and "format" in str(e.value)


def test_not_a_safetensors_file(tmp_path):
    path = tmp_path / WEIGHTS
    path.write_bytes(b"\x00" * 3 + b"not safetensors at all")
    with pytest.raises(UserError, match=re.escape(f"{path}: not a readable safetensors file")) as e:
        load_weights(path, Tiny())
    assert str(path) in str(e.value)


def test_weights_of_another_architecture(tmp_path):
    class Other(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(11, 6)
            self.projection = nn.Linear(6, 11)

    save_weights(tmp_path / WEIGHTS, Other())
    with pytest.raises(
        UserError, match=re.escape(f"{tmp_path / WEIGHTS}: the weights do not fit")
    ) as e:
        load_weights(tmp_path / WEIGHTS, Tiny())
    assert str(tmp_path / WEIGHTS) in str(e.value)


@pytest.mark.parametrize("shape", [{"vocab": 12}, {"size": 8}])
def test_weights_of_another_shape(tmp_path, shape):
    save_weights(tmp_path / WEIGHTS, Tiny())
    with pytest.raises(
        UserError, match=re.escape(f"{tmp_path / WEIGHTS}: the weights do not fit")
    ) as e:
        load_weights(tmp_path / WEIGHTS, Tiny(**shape))
    assert str(tmp_path / WEIGHTS) in str(e.value)


# ---------------------------------------------------------------------------- atomic writes


def test_write_bytes_text_json_are_atomic_and_right(tmp_path):
    write_bytes(tmp_path / "a.bin", b"\x00\x01")
    write_text(tmp_path / "b.txt", "Grüße\n")
    write_json(tmp_path / "c.json", {"bleu": 12.5, "sprache": "Deutsch ß"})
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "b.txt").read_text(encoding="utf-8") == "Grüße\n"
    assert json.loads((tmp_path / "c.json").read_text(encoding="utf-8")) == {
        "bleu": 12.5,
        "sprache": "Deutsch ß",
    }
    assert "ß" in (tmp_path / "c.json").read_text(encoding="utf-8")  # not \u00df
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.txt", "c.json"]


def test_write_replaces_old_content(tmp_path):
    path = tmp_path / "f.txt"
    write_text(path, "a much longer first version\n")
    write_text(path, "short\n")
    assert path.read_text() == "short\n"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_append_jsonl(tmp_path):
    path = tmp_path / "metrics.jsonl"
    append_jsonl(path, {"step": 1, "bleu": 1.5})
    append_jsonl(path, {"step": 2, "bleu": 2.5})
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert rows == [{"step": 1, "bleu": 1.5}, {"step": 2, "bleu": 2.5}]


# ---------------------------------------------------------------------------- last state


def trained(tie: bool = False, steps: int = 3):
    """A model, Adam and a scheduler after a few steps, so all carry real state."""
    model = Tiny(tie=tie)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    x = torch.randint(0, 11, (4, 5))
    for _ in range(steps):
        optimizer.zero_grad()
        model(x).logsumexp(-1).mean().backward()
        optimizer.step()
        scheduler.step()
    return model, optimizer, scheduler


def fresh(tie: bool = False):
    model = Tiny(tie=tie)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.5)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    return model, optimizer, scheduler


def optimizer_states_equal(a: torch.optim.Optimizer, b: torch.optim.Optimizer) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    if sa["param_groups"] != sb["param_groups"] or sa["state"].keys() != sb["state"].keys():
        return False
    for k in sa["state"]:
        for name, value in sa["state"][k].items():
            if not torch.equal(torch.as_tensor(value), torch.as_tensor(sb["state"][k][name])):
                return False
    return True


@pytest.mark.parametrize("tie", [False, True])
def test_save_last_load_last_round_trip(tmp_path, tie):
    torch.manual_seed(1)
    model, optimizer, scheduler = trained(tie)
    trainer = {"step": 3, "epoch": 1, "best_bleu": 12.25, "history": [1.0, 2.0]}
    save_last(tmp_path, model, optimizer, scheduler, trainer)
    expected_draw = torch.rand(5)

    torch.manual_seed(99)
    model2, optimizer2, scheduler2 = fresh(tie)
    torch.rand(100)
    assert not same_parameters(model, model2)
    state = load_last(tmp_path, model2, optimizer2, scheduler2, torch.device("cpu"))

    assert state == trainer
    assert torch.equal(torch.rand(5), expected_draw)
    assert same_parameters(model, model2)
    if tie:
        assert model2.out.weight is model2.embedding.weight
    assert optimizer_states_equal(optimizer, optimizer2)
    assert optimizer2.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"]
    assert scheduler2.state_dict() == scheduler.state_dict()
    assert leftovers(tmp_path) == []


def test_restored_training_continues_identically(tmp_path):
    torch.manual_seed(2)
    model, optimizer, scheduler = trained()
    save_last(tmp_path, model, optimizer, scheduler, {"step": 3})
    model2, optimizer2, scheduler2 = fresh()
    load_last(tmp_path, model2, optimizer2, scheduler2, torch.device("cpu"))
    x = torch.randint(0, 11, (4, 5))
    for m, opt, sched in ((model, optimizer, scheduler), (model2, optimizer2, scheduler2)):
        opt.zero_grad()
        m(x).logsumexp(-1).mean().backward()
        opt.step()
        sched.step()
    assert same_parameters(model, model2)


def test_save_last_twice_keeps_the_newest(tmp_path):
    model, optimizer, scheduler = trained(steps=1)
    save_last(tmp_path, model, optimizer, scheduler, {"step": 1})
    model, optimizer, scheduler = trained(steps=2)
    save_last(tmp_path, model, optimizer, scheduler, {"step": 2})
    assert leftovers(tmp_path) == []
    assert sorted(p.name for p in (tmp_path / LAST).iterdir()) == [
        WEIGHTS,
        "optimizer.pt",
        "trainer.json",
    ]
    model2, optimizer2, scheduler2 = fresh()
    state = load_last(tmp_path, model2, optimizer2, scheduler2, torch.device("cpu"))
    assert state == {"step": 2}
    assert same_parameters(model, model2)


def test_load_last_falls_back_to_old_after_a_crash(tmp_path):
    model, optimizer, scheduler = trained()
    save_last(tmp_path, model, optimizer, scheduler, {"step": 3})
    last = tmp_path / LAST
    os.replace(last, last.with_name("last.old"))  # as if killed between the two renames
    model2, optimizer2, scheduler2 = fresh()
    state = load_last(tmp_path, model2, optimizer2, scheduler2, torch.device("cpu"))
    assert state == {"step": 3}
    assert same_parameters(model, model2)


def test_load_last_without_checkpoint(tmp_path):
    with pytest.raises(
        UserError, match=re.escape(f"{tmp_path}: no checkpoints/last to resume")
    ) as e:
        load_last(tmp_path, *fresh(), torch.device("cpu"))
    assert str(tmp_path) in str(e.value)


def test_weights_file_gets_the_usual_file_mode(tmp_path):
    model = torch.nn.Linear(2, 2)
    save_weights(tmp_path / "model.safetensors", model)
    (tmp_path / "plain.txt").write_text("x")
    modes = [(tmp_path / p).stat().st_mode & 0o777 for p in ("model.safetensors", "plain.txt")]
    assert modes[0] == modes[1]
