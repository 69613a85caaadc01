"""Images written to files: attention heatmaps (`nmt translate --plot`), and the format
and durable write every plot of nmt uses (curves, by-length). The figures themselves come
from matplotlib through nmt.decode.figure, which says how to install it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nmt.decode.figure import attention_figure, pyplot
from nmt.decode.translate import Translation
from nmt.errors import UserError
from nmt.store import files

DPI = 100


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
    nmt.store.files writes every file: a temporary file of its own, renamed over `path` once
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
