"""`train.tensorboard: true`: the run's curves and attention maps for TensorBoard.

An event listener, like the CLI's: it hears the training events and writes them to
RUN_DIR/tensorboard/ with PyTorch's SummaryWriter (the optional `tensorboard` package):

    train/loss, train/learning_rate, train/tokens_per_second,
    train/teacher_forcing                                        at every log line
    valid/loss, valid/perplexity, valid/bleu                     at every evaluation
    attention/0, attention/1, ...  heatmaps of the first few valid sentences, greedy,
                                   by the weights being evaluated (labelled with their
                                   pieces when matplotlib is installed)

    tensorboard --logdir runs/quickstart/tensorboard
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from nmt.decode.ensemble import attends
from nmt.decode.translate import Translation, Translator
from nmt.errors import UserError
from nmt.events import Evaluation, Event, Progress

SENTENCES = 3  # valid sentences whose attention is drawn at each evaluation
MISSING = (
    "train.tensorboard needs the tensorboard package: pip install tensorboard "
    "(in a checkout: pip install -e '.[tensorboard]'), or set train.tensorboard: false"
)


def check_available() -> None:
    """A UserError now, before training starts, if TensorBoard cannot be written."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        raise UserError(MISSING) from None


def _heatmap(translation: Translation, scale: int = 12) -> np.ndarray:
    """The attention as an image without labels (3 × H × W, dark = high weight)."""
    weights = np.asarray(translation.attention or [[0.0]], dtype=np.float32)
    pixels = np.kron(1.0 - weights, np.ones((scale, scale), dtype=np.float32))
    return np.repeat(pixels[None], 3, axis=0)


class TensorBoardLog:
    """Writes the events it hears; `tee` puts it beside another listener."""

    def __init__(
        self,
        log_dir: Path,
        translator: Translator,
        sentences: Sequence[str],
        purge_step: int | None = None,  # a resumed run: drop what came after its checkpoint
    ):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(log_dir), purge_step=purge_step, flush_secs=10)
        self.translator = translator
        self.sentences = list(sentences[:SENTENCES])

    def tee(self, other: Callable[[Event], None]) -> Callable[[Event], None]:
        def both(event: Event) -> None:
            self(event)
            other(event)

        return both

    def __call__(self, event: Event) -> None:
        if isinstance(event, Progress):
            scalars = {
                "train/loss": event.loss,
                "train/learning_rate": event.learning_rate,
                "train/tokens_per_second": event.tokens_per_second,
                "train/teacher_forcing": event.teacher_forcing,  # nmt.training.schedules
            }
        elif isinstance(event, Evaluation):
            scalars = {
                "valid/loss": event.valid_loss,
                "valid/perplexity": event.valid_ppl,
                "valid/bleu": event.valid_bleu,
            }
            self._attention(event.step)
        else:
            return
        for name, value in scalars.items():
            self.writer.add_scalar(name, value, event.step)

    def _attention(self, step: int) -> None:
        if not self.sentences or not attends(self.translator.model):
            return
        found = self.translator.search(self.sentences, attention=True, beam_size=1)
        for i, hyps in enumerate(found):
            if not hyps:
                continue
            try:
                from nmt.decode.figure import attention_figure

                figure = attention_figure(hyps[0], "train.tensorboard's labelled heatmaps")
                self.writer.add_figure(f"attention/{i}", figure, step)  # closes it
            except UserError:  # no matplotlib: the bare matrix
                self.writer.add_image(f"attention/{i}", _heatmap(hyps[0]), step)

    def close(self) -> None:
        self.writer.close()
