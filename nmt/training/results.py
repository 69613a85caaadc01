"""The end of a training run: the test split, translated with the best weights, scored,
and the run's summary (`TrainResults`) written to results.json (nmt.training.loop calls
`score_test` last).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch

from nmt.decode.settings import decode_summary
from nmt.metrics import score
from nmt.progress import Tracker
from nmt.training.run import Run

# what stopped a run: the train.* limit that was reached (results.json's stopped_by)
Stop = Literal["max_steps", "max_epochs", "max_minutes", "patience"]


@dataclass(frozen=True)
class Limits:
    """The recipe's train.* limits the run had (None: not set; patience 0: never)."""

    max_steps: int | None
    max_epochs: int | None
    max_minutes: float | None
    patience: int


@dataclass(frozen=True)
class TestScores:
    """The test split translated with the best weights, as `nmt translate` would."""

    bleu: float
    chrf: float
    signature: dict[str, str]  # sacreBLEU's, per metric
    beam_size: int
    decode: dict[str, Any]  # the decode settings (nmt.decode.settings.decode_summary)
    sentences: int
    truncated: int  # sources cut to decode.max_input_length
    translate_seconds: float


@dataclass(frozen=True)
class TrainResults:
    """What `train` returns and results.json holds. `stopped_by` is the train.* limit that
    ended training; with `limits` beside `steps` and `epochs` it says how far the run got,
    so a run cut short by train.max_minutes (the machine's speed) cannot pass for a full
    one. `test` is None without a test split."""

    stopped_by: Stop | None
    steps: int
    epochs: float
    limits: Limits
    train_seconds: float
    train_tokens_per_second: int
    best_step: int
    valid_bleu: float | None  # the best evaluation's; None: never evaluated on a valid split
    skipped_updates: int
    device: str  # the GPU's name, or "cpu"
    test: TestScores | None = None

    def to_json(self) -> dict[str, Any]:
        """results.json's object: the test scores first (test_* for the counts), then
        the training summary."""
        summary = asdict(self)
        test = summary.pop("test")
        if test is None:
            return summary
        counts = ("sentences", "truncated", "translate_seconds")
        return {**{f"test_{k}" if k in counts else k: v for k, v in test.items()}, **summary}


def score_test(run: Run, epochs_done: float, stopped_by: Stop | None = None) -> TrainResults:
    """Training summary and, with a test split, its scores with the best weights.

    Every line of the test set is translated and scored (an empty source gives an empty
    hypothesis), through `Translator`, the same path `nmt translate` takes. The summary
    is written to results.json and returned.
    """
    state, cfg = run.state, run.cfg
    hyps, test = _translate_test(run) if run.data.test is not None else (None, None)
    results = TrainResults(
        stopped_by=stopped_by,
        steps=state.step,
        epochs=epochs_done,
        limits=Limits(cfg.max_steps, cfg.max_epochs, cfg.max_minutes, cfg.patience),
        train_seconds=round(state.train_seconds, 1),
        train_tokens_per_second=round(state.train_tokens / max(state.train_seconds, 1e-9)),
        best_step=state.best_step,
        valid_bleu=state.best_bleu if state.best_bleu >= 0 else None,
        skipped_updates=state.skipped,
        device=torch.cuda.get_device_name(run.device) if run.device.type == "cuda" else "cpu",
        test=test,
    )
    run.run_dir.write_results(results.to_json(), hyps)
    return results


def _translate_test(run: Run) -> tuple[list[str], TestScores]:
    """The test split's translations with the best weights (loaded into the
    translator's model, so valid and test decode alike), and their scores."""
    translator, split = run.translator, run.data.test
    assert split is not None
    run.run_dir.load_best(translator.model, run.device)
    settings = translator.decode_config()
    cut_before = translator.truncated
    start = time.perf_counter()
    with Tracker(run.on_event, "testing", len(split.source), "sentences") as tracker:
        hyps = translator.translate(split.source, progress=tracker.advance)
    seconds = time.perf_counter() - start
    scores = score(hyps, split.target, ["bleu", "chrf"], run.recipe.data.target_lang)
    return hyps, TestScores(
        bleu=scores["bleu"]["score"],
        chrf=scores["chrf"]["score"],
        signature={name: s["signature"] for name, s in scores.items()},
        beam_size=settings.beam_size,
        decode=decode_summary(settings),
        sentences=len(hyps),
        truncated=translator.truncated - cut_before,
        translate_seconds=round(seconds, 2),
    )
