"""The end of a training run: the test split, translated with the best weights, scored,
and the run's summary written to results.json (nmt.training.setup calls `score_test` last).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import torch

from nmt.decode.settings import decode_summary
from nmt.metrics import score
from nmt.progress import Tracker

if TYPE_CHECKING:
    from nmt.training.loop import Stop
    from nmt.training.run import Run


def score_test(run: Run, epochs_done: float, stopped_by: Stop | None = None) -> dict[str, Any]:
    """Training summary and, with a test split, its scores with the best weights.

    Every line of the test set is translated and scored (an empty source gives an empty
    hypothesis), through `Translator`, the same path `nmt translate` takes. The summary
    is written to results.json and returned. `stopped_by` is the train.* limit that ended
    training; with `limits` beside `steps` and `epochs` it says how far the run got, so a
    run cut short by train.max_minutes (the machine's speed) cannot pass for a full one.
    """
    state, device, test_split = run.state, run.device, run.data.test
    cfg = run.cfg
    results: dict[str, Any] = {
        "stopped_by": stopped_by,
        "steps": state.step,
        "epochs": epochs_done,
        "limits": {
            "max_steps": cfg.max_steps,
            "max_epochs": cfg.max_epochs,
            "max_minutes": cfg.max_minutes,
            "patience": cfg.patience,
        },
        "train_seconds": round(state.train_seconds, 1),
        "train_tokens_per_second": round(state.train_tokens / max(state.train_seconds, 1e-9)),
        "best_step": state.best_step,
        "valid_bleu": state.best_bleu if state.best_bleu >= 0 else None,
        "skipped_updates": state.skipped,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
    }
    hyps = None
    if test_split is not None:
        translator = run.translator
        run.run_dir.load_best(translator.model, device)
        settings = translator.decode_config()
        cut_before = translator.truncated
        start = time.perf_counter()
        with Tracker(run.on_event, "testing", len(test_split.source), "sentences") as tracker:
            hyps = translator.translate(test_split.source, progress=tracker.advance)
        seconds = time.perf_counter() - start
        lang = run.recipe.data.target_lang
        scores = score(hyps, test_split.target, ["bleu", "chrf"], lang)
        results = {
            "bleu": scores["bleu"]["score"],
            "chrf": scores["chrf"]["score"],
            "signature": {name: s["signature"] for name, s in scores.items()},
            "beam_size": settings.beam_size,
            "decode": decode_summary(settings),
            "test_sentences": len(hyps),
            "test_truncated": translator.truncated - cut_before,
            "test_translate_seconds": round(seconds, 2),
            **results,
        }
    run.run_dir.write_results(results, hyps)
    return results
