"""A translation's attention as a matplotlib figure: which source pieces each target
piece looked at. Used by `nmt translate --plot` (through nmt.report.plot) and by
train.tensorboard's attention maps, so it sits below both.

Needs matplotlib (`pip install matplotlib`, or `pip install -e '.[plot]'` in a checkout);
`pyplot` imports it only when a figure is asked for.
"""

from __future__ import annotations

from types import ModuleType

from nmt.decode.translate import Translation
from nmt.errors import UserError


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
