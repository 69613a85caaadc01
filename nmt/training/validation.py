"""Evaluating and saving during training: valid scores, the best weights, metrics.jsonl,
the resumable checkpoint. The training loop (nmt.training.loop) calls `validate`, records
the scores in its TrainerState, then `write_evaluation` and `save_checkpoint`: nothing
here changes where training stands.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from nmt.data.prepare import Split
from nmt.decode.scoring import mean_nll, perplexity
from nmt.decode.translate import Translator
from nmt.errors import UserError
from nmt.events import Evaluation
from nmt.metrics import score
from nmt.progress import Tracker
from nmt.store.checkpoint import rng_state
from nmt.training.run import Run


def validate(run: Run) -> dict[str, float] | None:
    """Valid loss, BLEU and chrF (greedy, or train.valid_beam) of the weights evaluated
    (the weight average, with train.ema_decay); None without a valid split.

    A valid loss that is not finite, or whose perplexity is not (`_diverged`), is
    divergence, even when the training loss still is finite (a huge learning rate can
    leave it so): a UserError, before anything of this evaluation is recorded or written.
    """
    cfg, valid = run.cfg, run.data.valid
    if valid is None:
        return None
    tracker = Tracker(run.on_event, "validating", len(valid.sources), "sentences")
    with run.learner.autocast, tracker:
        scores = _validate(run.translator, valid, cfg.batch_tokens, cfg.valid_beam, tracker.advance)
    diverged = _diverged(scores["loss"])  # NaN would still "improve" on a BLEU of -1
    if diverged is not None:
        raise UserError(nonfinite_message(run, run.state.step, diverged))
    return scores


def write_evaluation(
    run: Run,
    scores: dict[str, float] | None,
    improved: bool,
    epochs_done: float,
    train_loss: float | None,
) -> None:
    """An evaluation the loop has recorded in its state: the best weights when it
    `improved` (without a valid split, always: the latest weights are the ones to keep),
    train.keep_checkpoints' copy, and its line in metrics.jsonl, with the learning rate
    and teacher-forcing ratio the next update uses and `train_loss`, the mean training
    loss since the last evaluation. The checkpoint is saved after this (`save_checkpoint`):
    a run killed in between resumes from the checkpoint before, drops this entry and
    evaluates this step again."""
    state, cfg = run.state, run.cfg
    entry: dict[str, Any] = {"step": state.step, "epoch": epochs_done}
    if scores is not None:
        loss, bleu, ppl = scores["loss"], scores["bleu"], perplexity(scores["loss"])
        entry.update(valid_loss=round(loss, 4), valid_ppl=round(ppl, 3), valid_bleu=bleu)
        entry.update(valid_chrf=scores["chrf"])
        run.on_event(
            Evaluation(state.step, epochs_done, loss, ppl, bleu, state.best_bleu, improved)
        )
    if improved:
        run.run_dir.save_best(run.translator.model)  # the weight average, with ema_decay
    if cfg.keep_checkpoints:
        run.run_dir.keep_checkpoint(run.translator.model, state.step, cfg.keep_checkpoints)
    schedules = run.learner.schedules
    entry.update(
        learning_rate=schedules.lr.at(state.step + 1),
        teacher_forcing=schedules.teacher_forcing.at(state.step),
        train_tokens_per_second=round(state.train_tokens / max(state.train_seconds, 1e-9)),
        train_seconds=round(state.train_seconds, 1),
    )
    if train_loss is not None:
        entry["train_loss"] = round(train_loss, 4)
    if state.skipped:
        entry["skipped_updates"] = state.skipped
    run.run_dir.append_metrics(entry)


def save_checkpoint(run: Run, rng: list[dict] | None = None) -> None:
    """checkpoints/last: weights, optimizer, schedules, random state, trainer state.
    `rng`: every rank's random state in a distributed run, gathered while the others
    wait (default: this process's alone)."""
    learner = run.learner
    average = learner.average.model if learner.average is not None else None
    run.run_dir.save_last(
        learner.model, learner.optimizer, learner.schedules, asdict(run.state), average,
        rng or [rng_state()],
    )  # fmt: skip


def nonfinite_message(
    run: Run, step: int, problem: str = "the training loss is not finite (NaN or inf)"
) -> str:
    """One line for a run stopped because the training or the valid loss diverged
    (`problem` says which and how): what was kept, and the settings to try."""
    cfg = run.cfg
    kept = (
        f"{run.run_dir.path} keeps the checkpoint of step {run.run_dir.saved_step} (--resume "
        "continues from it)"
        if run.run_dir.saved_step is not None
        else "nothing was saved (--overwrite starts over)"
    )
    settings = (
        f"train.learning_rate (now {cfg.learning_rate}), train.clip_norm (now "
        f"{cfg.clip_norm}), or train.skip_nonfinite: true"
    )
    if not problem.startswith("the training loss"):  # the weights diverged: skipping one
        settings = (  # update cannot help
            f"train.learning_rate (now {cfg.learning_rate}) or train.clip_norm (now "
            f"{cfg.clip_norm})"
        )
    return f"step {step}: {problem}, so training stopped; {kept}. Try a lower {settings}"


def _diverged(loss: float) -> str | None:
    """What is wrong with a valid loss that only diverged weights give, or None.

    NaN or inf; or so large that its perplexity overflows (`perplexity`: 700 nats per
    target token, where a model that learned nothing scores ln V, about 9 for 8000
    pieces). Weights blown up by a huge learning rate give either, while the training
    loss can stay finite.
    """
    if not math.isfinite(loss):
        return "the valid loss is not finite (NaN or inf)"
    if not math.isfinite(perplexity(loss)):
        return f"the valid perplexity is not finite (valid loss {loss:.3g} per target token)"
    return None


def _validate(
    translator: Translator,
    valid: Split,
    batch_tokens: int,
    beam: int,
    progress: Callable[[int], None] | None = None,
) -> dict[str, float]:
    """Per-token valid loss (no label smoothing), BLEU and chrF of a search with `beam`
    (1: greedy), on whole sources."""
    model, device = translator.model, translator.device
    loss, _ = mean_nll(model, valid.src_ids, valid.tgt_ids, batch_tokens, device)
    hyps = translator.translate(valid.sources, progress=progress, beam_size=beam)
    lang = translator.recipe.data.target_lang
    scores = score(hyps, valid.references, ["bleu", "chrf"], lang)
    return {"loss": loss, "bleu": scores["bleu"]["score"], "chrf": scores["chrf"]["score"]}
