"""--threads sets PyTorch's CPU threads for train, translate and evaluate; 0 is refused."""

from __future__ import annotations

import pytest
import torch

from nmt.cli.main import app


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_translate_with_one_thread(runner, model_dir, tmp_path, restore_threads):
    source = tmp_path / "in.txt"
    source.write_text("one red dog sleeps\n", encoding="utf-8")
    args = ["translate", str(source), "--model", str(model_dir), "--device", "cpu"]
    result = runner.invoke(app, [*args, "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert torch.get_num_threads() == 1
    assert len(result.stdout.splitlines()) == 1


@pytest.mark.parametrize("verb", ["train", "translate", "evaluate"])
def test_zero_threads_is_one_clear_error(runner, model_dir, tmp_path, verb, restore_threads):
    src = tmp_path / "in.txt"
    src.write_text("one\n", encoding="utf-8")
    args = {
        "train": ["train", "recipes/quickstart.yaml"],
        "translate": ["translate", str(src), "--model", str(model_dir)],
        "evaluate": ["evaluate", "bleu", "--model", str(model_dir), "--source", str(src),
                     "--reference", str(src)],
    }[verb]  # fmt: skip
    result = runner.invoke(app, [*args, "--threads", "0"])
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: --threads 0: give 1 or more threads"
