"""Attention heatmaps: which source pieces each target piece looked at.

Needs matplotlib (`pip install matplotlib`, or `pip install -e '.[plot]'` in a checkout);
nothing else in nmt imports it.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

from nmt import files
from nmt.errors import UserError
from nmt.translate import Translation

DPI = 100


def pyplot(needs: str = "--plot") -> ModuleType:
    """matplotlib.pyplot drawing to files only, or a UserError saying how to install it."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only, no screen needed
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError(
            f"{needs} needs matplotlib: pip install matplotlib "
            "(in a checkout: pip install -e '.[plot]')"
        ) from None
    return plt


def attention_figure(translation: Translation, needs: str = "--plot"):
    """A matplotlib Figure: target pieces (and </s>) down, source pieces across."""
    plt = pyplot(needs)
    rows = [*translation.target_pieces, "</s>"]
    cols = translation.source_pieces
    fig, ax = plt.subplots(figsize=(1 + 0.45 * len(cols), 1 + 0.4 * len(rows)))
    ax.imshow(translation.attention or [[0.0]], cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(cols)), cols, rotation=90)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("source")
    ax.set_ylabel("target")
    fig.tight_layout()
    return fig


def image_format(path: Path, label: str, needs: str = "--plot") -> str:
    """The image format `path` names by its suffix (png without one), or a UserError
    naming `label` for a suffix matplotlib cannot write (x.txt); a UserError naming
    `needs` if matplotlib is missing."""
    pyplot(needs)
    suffix = path.suffix.lower().lstrip(".")
    if not suffix:
        return "png"
    from matplotlib.backend_bases import FigureCanvasBase

    if suffix not in FigureCanvasBase.get_supported_filetypes():
        raise UserError(
            f"{label}: matplotlib cannot write .{suffix} images; "
            "end the name with .png (or .svg, .pdf)"
        )
    return suffix


def save_figure(fig: Any, path: Path, label: str, fmt: str = "png") -> None:
    """Write a matplotlib Figure to `path` in the format `fmt` (see `image_format`) as
    nmt.files writes every file: a temporary file of its own, renamed over `path` once
    complete (only a regular file is replaced); a failure is a UserError naming `label`."""
    with files.replacing(path, label) as f:
        try:
            fig.savefig(f, format=fmt, dpi=DPI)
        except OSError as e:
            raise UserError(f"{label}: writing failed ({e.strerror or e})") from None


def plot_attention(translation: Translation, path: Path, label: str = "--plot") -> None:
    """Write one PNG of `attention_figure` (a failure names `label`)."""
    fig = attention_figure(translation)
    try:
        save_figure(fig, path, f"{label} {path}")
    finally:
        pyplot().close(fig)
