"""nmt.report.plot and nmt.decode.figure on their own: the image format a file name
asks for, a durable write of a figure, an attention heatmap from a `Translation`, and
the one-line answer when matplotlib is missing (through the CLI: `nmt translate --plot`
in tests/decode/test_translate.py, curves and by-length in tests/report/)."""

from __future__ import annotations

import sys

import pytest

from nmt.decode.figure import attention_figure, pyplot
from nmt.decode.translate import Translation
from nmt.errors import UserError
from nmt.report.plot import image_format, plot_attention

PNG = b"\x89PNG\r\n\x1a\n"


def test_the_suffix_names_the_format(tmp_path):
    assert image_format(tmp_path / "a", "--plot") == "png"
    assert image_format(tmp_path / "a.SVG", "--plot") == "svg"
    with pytest.raises(UserError, match=r"^--out: matplotlib cannot write \.txt images; end"):
        image_format(tmp_path / "a.txt", "--out")


def test_an_attention_heatmap_is_written_whole(tmp_path):
    translation = Translation(
        "b a", -0.5, ["▁a", "▁b"], ["▁b", "▁a"], [[0.1, 0.9], [0.8, 0.2], [0.5, 0.5]]
    )
    figure = attention_figure(translation)
    labels = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    assert labels == ["▁b", "▁a", "</s>"]  # target pieces down, then </s>
    pyplot().close(figure)
    path = tmp_path / "attention.png"
    path.write_bytes(b"old")
    plot_attention(translation, path)
    assert path.read_bytes().startswith(PNG)
    assert [p.name for p in tmp_path.iterdir()] == ["attention.png"]  # no temporary left


def test_without_matplotlib_the_answer_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    with pytest.raises(UserError, match=r"^--plot needs matplotlib: pip install matplotlib"):
        pyplot("--plot")
