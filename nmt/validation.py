"""Evaluating and saving during training: valid scores, the best weights, metrics.jsonl,
the resumable checkpoint (`nmt.train` calls `evaluate_and_save` and `save_checkpoint`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nmt.checkpoint import rng_state
from nmt.data import Split
from nmt.evaluate import score
from nmt.events import Evaluation
from nmt.loss import mean_nll, perplexity
from nmt.progress import Tracker
from nmt.translate import Translator

if TYPE_CHECKING:
    from nmt.train import Run, TrainerState


def evaluate_and_save(run: Run, epochs_done: float, rng: list[dict] | None = None) -> None:
    """Valid loss, perplexity, BLEU and chrF (greedy, or train.valid_beam); keep the best
    weights by train.best_metric; metrics; checkpoint.

    metrics.jsonl is appended before the checkpoint is saved: a run killed in between
    resumes from the checkpoint before, drops this entry and evaluates this step again.
    """
    state, cfg, valid = run.state, run.cfg, run.data.valid
    state.last_eval_step = state.step
    entry: dict[str, Any] = {"step": state.step, "epoch": epochs_done}
    improved = True  # no valid split: the latest weights are the ones to keep
    if valid is not None:
        tracker = Tracker(run.on_event, "validating", len(valid.sources), "sentences")
        with run.autocast, tracker:
            scores = _validate(
                run.translator, valid, cfg.batch_tokens, cfg.valid_beam, tracker.advance
            )
        loss, bleu = scores["loss"], scores["bleu"]
        improved = _improves(cfg.best_metric, scores, state)
        state.bad_evals = 0 if improved else state.bad_evals + 1
        if improved:
            state.best_bleu, state.best_chrf = bleu, scores["chrf"]
            state.best_loss, state.best_step = loss, state.step
        if cfg.lr_schedule == "plateau":
            run.scheduler.step(scores[cfg.best_metric])
        ppl = perplexity(loss)
        entry.update(valid_loss=round(loss, 4), valid_ppl=round(ppl, 3), valid_bleu=bleu)
        entry.update(valid_chrf=scores["chrf"])
        run.on_event(
            Evaluation(state.step, epochs_done, loss, ppl, bleu, state.best_bleu, improved)
        )
    if improved:
        run.run_dir.save_best(run.translator.model)  # the weight average, with ema_decay
    if cfg.keep_checkpoints:
        run.run_dir.keep_checkpoint(run.translator.model, state.step, cfg.keep_checkpoints)
    entry.update(
        learning_rate=run.optimizer.param_groups[0]["lr"],
        train_tokens_per_second=round(state.train_tokens / max(state.train_seconds, 1e-9)),
        train_seconds=round(state.train_seconds, 1),
    )
    if run.window_tokens:  # the mean training loss since the last evaluation
        entry["train_loss"] = round(run.window_loss / run.window_tokens, 4)
        run.window_loss, run.window_tokens = 0.0, 0
    if state.skipped:
        entry["skipped_updates"] = state.skipped
    run.run_dir.append_metrics(entry)
    save_checkpoint(run, rng)


def save_checkpoint(run: Run, rng: list[dict] | None = None) -> None:
    """checkpoints/last: weights, optimizer, schedule, random state, trainer position.
    `rng`: every rank's random state in a distributed run, gathered while the others
    wait; this rank's (0) is taken now, after whatever it did since."""
    rng = [rng_state(), *(rng or [])[1:]]
    if run.scaler is not None:  # resumes with the loss scale it had reached
        run.state.loss_scale = run.scaler.get_scale()
    state = dataclasses.asdict(run.state)
    average = run.average.model if run.average is not None else None
    run.run_dir.save_last(run.model, run.optimizer, run.scheduler, state, average, rng)
    run.saved_step = run.state.step


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


def _improves(metric: str, scores: dict[str, float], state: TrainerState) -> bool:
    """Whether this evaluation beats the best so far by train.best_metric. For BLEU or
    chrF, a tie (say 0 early on) goes to the lower loss."""
    if metric == "loss":
        return scores["loss"] < state.best_loss
    best = state.best_bleu if metric == "bleu" else state.best_chrf
    return (scores[metric], -scores["loss"]) > (best, -state.best_loss)
