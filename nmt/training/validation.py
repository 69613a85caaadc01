"""Evaluating and saving during training: valid scores, the best weights, metrics.jsonl,
the resumable checkpoint (`nmt.training.setup` calls `evaluate_and_save` and `save_checkpoint`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nmt.data.prepare import Split
from nmt.decode.scoring import mean_nll, perplexity
from nmt.decode.translate import Translator
from nmt.errors import UserError
from nmt.events import Evaluation
from nmt.metrics import score
from nmt.progress import Tracker
from nmt.store.checkpoint import rng_state

if TYPE_CHECKING:
    from nmt.training.run import Run
    from nmt.training.state import TrainerState


def evaluate_and_save(run: Run, epochs_done: float, rng: list[dict] | None = None) -> None:
    """Valid loss, perplexity, BLEU and chrF (greedy, or train.valid_beam); keep the best
    weights by train.best_metric; metrics; checkpoint.

    metrics.jsonl is appended before the checkpoint is saved: a run killed in between
    resumes from the checkpoint before, drops this entry and evaluates this step again.
    A valid loss that is not finite, or whose perplexity is not (`_diverged`), is
    divergence, even when the training loss still is finite (a huge learning rate can
    leave it so): the run stops with a UserError before anything of this evaluation is
    written.
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
        diverged = _diverged(loss)  # NaN would still "improve" on a BLEU of -1: never save it
        if diverged is not None:
            raise UserError(nonfinite_message(run, state.step, diverged))
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


def nonfinite_message(
    run: Run, step: int, problem: str = "the training loss is not finite (NaN or inf)"
) -> str:
    """One line for a run stopped because the training or the valid loss diverged
    (`problem` says which and how): what was kept, and the settings to try."""
    cfg = run.cfg
    kept = (
        f"{run.run_dir.path} keeps the checkpoint of step {run.saved_step} (--resume continues "
        "from it)"
        if run.saved_step is not None
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


def _improves(metric: str, scores: dict[str, float], state: TrainerState) -> bool:
    """Whether this evaluation beats the best so far by train.best_metric. For BLEU or
    chrF, a tie (say 0 early on) goes to the lower loss."""
    if metric == "loss":
        return scores["loss"] < state.best_loss
    best = state.best_bleu if metric == "bleu" else state.best_chrf
    return (scores[metric], -scores["loss"]) > (best, -state.best_loss)
