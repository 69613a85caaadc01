"""Training: a recipe in, a model directory out.

`train` reads top to bottom in the order things happen:

    prepare_run      check and lock the model directory (rank 0 of a distributed run;
                     the other ranks only read it), read and tokenize the data, build
                     the model and its Learner (optimizer, schedules, precision, weight
                     average), or restore them and the TrainerState on --resume
    run_loop         nmt.training.loop: batch → update → report → evaluate → save →
                     limits, then the test split with the best weights → results.json
                     (TrainResults, which `train` returns)

It reports through one callback (`on_event`: nmt.events) and never prints; with
train.tensorboard, a TensorBoardLog (nmt.training.tensorboard) hears the same events. Under
torchrun every rank runs `train` (nmt.training.distributed says what each one does).
"""

from __future__ import annotations

import gc
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from nmt.data.prepare import Data, prepare_data
from nmt.data.prepared import prepared_data, trains_from_prepared
from nmt.data.tokenizer import joint_ids, load_tokenizers, tokenizer_files
from nmt.decode.translate import Translator
from nmt.device import (
    check_training_precision,
    make_autocast,
    make_scaler,
    pick_device,
    seed_everything,
    set_deterministic,
)
from nmt.errors import UserError
from nmt.events import Event, Message
from nmt.metrics import check_metrics
from nmt.model.seq2seq import Seq2Seq, build_model
from nmt.recipe.schema import Recipe, TrainConfig
from nmt.store import checkpoint, files
from nmt.training.distributed import ALONE, World
from nmt.training.ema import WeightAverage
from nmt.training.loop import run_loop, train_step  # noqa: F401 (train_step: the public step)
from nmt.training.results import TrainResults
from nmt.training.run import Learner, Run
from nmt.training.run_dir import FollowerDir, RunDir
from nmt.training.schedules import Schedules
from nmt.training.state import TrainerState, checked_state
from nmt.training.tensorboard import TensorBoardLog
from nmt.training.tensorboard import check_available as check_tensorboard
from nmt.training.warm_start import init_recipe, load_init_weights

OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "sgd": torch.optim.SGD,
    # Bahdanau et al. 2015: Adadelta with rho 0.95, eps 1e-6 (learning_rate 1.0).
    "adadelta": lambda params, lr: torch.optim.Adadelta(params, lr=lr, rho=0.95, eps=1e-6),
}


def train(
    recipe: Recipe,
    device: str = "auto",
    resume: bool = False,
    overwrite: bool = False,
    on_event: Callable[[Event], None] = lambda event: None,
    init_from: str | Path | None = None,
) -> TrainResults:
    """Train the recipe's model into `recipe.output_dir`; return what results.json says
    (`TrainResults.to_json` is its object).
    `init_from`: a model directory to start from (nmt.training.warm_start)."""
    init_dir = None if init_from is None else Path(init_from)
    if init_dir is not None:
        _check_init_from(init_dir, recipe, resume)
        recipe = init_recipe(recipe, init_dir)
    world = World.from_env(device)
    if not world.main:  # rank 0 reports for all
        on_event = lambda event: None  # noqa: E731
    opened = (
        RunDir.open(recipe, resume, overwrite)  # checked and locked
        if world.main
        else FollowerDir(Path(recipe.output_dir or "runs/model"), resume)
    )
    # a full disk: one line; RunDir names the file for its own writes, this the others'
    with opened as run_dir, files.refuse_disk_full(run_dir.path, run_dir.what_is_kept, False):
        run = prepare_run(recipe, run_dir, device, resume, on_event, init_dir, world)
        try:
            return run_loop(run)
        finally:
            if run.board is not None:
                run.board.close()
            if world.active:  # DDP's reducer holds the process group (gc: in case of
                run.learner.trainer = None  # reference cycles): free it first, so closing
                gc.collect()  # the world ends the group's threads now, not at shutdown
            world.close()


def prepare_run(
    recipe: Recipe,
    run_dir: RunDir,
    device: str,
    resume: bool,
    on_event: Callable[[Event], None],
    init_from: Path | None = None,
    world: World = ALONE,
) -> Run:
    """Data, tokenizers, model, optimizer, schedules and trainer state; writes the model
    directory only once the data has been read and tokenized and, on --resume, the whole
    checkpoint read back, all without error."""
    dev, cfg = _set_up(recipe, device, world), recipe.train
    if resume:
        _check_resume(run_dir, world)

    data = _data(recipe, run_dir, resume, init_from, on_event, world)
    sizes = data.src_tok.vocab_size, data.tgt_tok.vocab_size
    model = build_model(recipe.model, *sizes, target_ids=joint_ids(data.tgt_tok)).to(dev)
    if init_from is not None:  # before anything is written: a mismatch leaves no directory
        load_init_weights(model, recipe, init_from)
        on_event(Message(f"weights and tokenizers from {init_from}; a fresh optimizer"))
    if cfg.tensorboard:
        check_tensorboard()  # before anything is written
    learner = _learner(model, cfg, dev)
    state = TrainerState(world_size=world.size)
    if resume:  # read back before the first write: a refused resume leaves all as it was
        state = _restore(run_dir, learner, dev, world)
    learner.scaler = make_scaler(cfg.precision, dev, state.loss_scale)  # fp16: as it was

    tokenizers = tokenizer_files(recipe.tokenizer, data.src_tok, data.tgt_tok)
    run_dir.start(recipe, tokenizers)  # the first write
    if world.main:
        world.share(tokenizers)  # the other ranks wait for these (nothing else is shared)
    if resume:
        run_dir.resume_metrics(state.step)
        on_event(Message(f"resumed at step {state.step}, epoch {state.epoch}"))
    params = sum(p.numel() for p in model.parameters())
    on_event(Message(f"model: {params / 1e6:.2f}M parameters on {dev}"))
    # valid and test decode, and model.safetensors keeps, the average when there is one
    evaluated = model if learner.average is None else learner.average.model
    translator = Translator(evaluated, recipe, data.src_tok, data.tgt_tok, dev)
    board = _tensorboard(run_dir, translator, data, state.step if resume else None, world)
    on_event = board.tee(on_event) if board is not None else on_event
    if world.active:  # DDP all-reduces the gradients and starts every rank from rank 0's
        ids = [dev.index] if dev.type == "cuda" else None
        learner.trainer = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
    return Run(
        recipe=recipe,
        run_dir=run_dir,
        device=dev,
        data=data,
        learner=learner,
        translator=translator,
        state=state,
        on_event=on_event,
        world=world,
        board=board,
    )


def _set_up(recipe: Recipe, device: str, world: World) -> torch.device:
    """The device this rank trains on, once the recipe's metrics and precision are
    known to work there; determinism and seeds as the recipe asks."""
    dev = world.device(pick_device(device))
    check_metrics(["bleu", "chrf"], recipe.data.target_lang)
    check_training_precision(recipe.train.precision, dev)
    set_deterministic(recipe.train.deterministic)
    seed_everything(recipe.seed)
    if dev.type == "cuda":
        torch.set_float32_matmul_precision("high")  # TF32 matrix products on Ampere+
    return dev


def _learner(model: Seq2Seq, cfg: TrainConfig, device: torch.device) -> Learner:
    """The recipe's optimizer and schedules for `model`, its autocast, its weight
    average (train.ema_decay); the fp16 scaler comes once the trainer state is known."""
    optimizer = OPTIMIZERS[cfg.optimizer](model.parameters(), lr=cfg.learning_rate)
    return Learner(
        model=model,
        optimizer=optimizer,
        schedules=Schedules(cfg, optimizer),
        autocast=make_autocast(cfg.precision, device),
        average=None if cfg.ema_decay is None else WeightAverage(model, cfg.ema_decay),
    )


def _restore(run_dir: RunDir, learner: Learner, device: torch.device, world: World) -> TrainerState:
    """checkpoints/last into `learner` (weights, optimizer, schedules, average, this
    rank's random state); its trainer state."""
    kept = learner.average.model if learner.average is not None else None
    state = run_dir.load_last(
        learner.model, learner.optimizer, learner.schedules, device, kept, world.rank
    )
    run_dir.saved_step = state.step  # what a run that fails now keeps (other ranks too)
    return state


def _tensorboard(
    run_dir: RunDir, translator: Translator, data: Data, purge: int | None, world: World
) -> TensorBoardLog | None:
    """train.tensorboard's writer, on rank 0; a resumed run drops what came after `purge`."""
    if not translator.recipe.train.tensorboard or not world.main:
        return None
    sentences = data.valid.sources if data.valid is not None else []
    return TensorBoardLog(run_dir.path / "tensorboard", translator, sentences, purge)


def _data(
    recipe: Recipe,
    run_dir: RunDir,
    resume: bool,
    init_from: Path | None,
    on_event: Callable[[Event], None],
    world: World,
) -> Data:
    """The corpora, read and encoded with tokenizers trained now or saved before: from a
    prepared dataset, found or made (nmt.data.prepared), where the recipe allows. Ranks
    other than 0 wait for rank 0's tokenizer files, sent over the process group (the
    machines need not share a filesystem for that), and read the corpora with them."""
    if not world.main:
        with tempfile.TemporaryDirectory() as local:
            for name, content in world.share().items():
                (Path(local) / name).write_bytes(content)
            saved = load_tokenizers(recipe.tokenizer, Path(local))
        return prepare_data(recipe, on_event, saved)
    trained = run_dir.path if resume else init_from  # a model directory with tokenizers
    saved = None if trained is None else load_tokenizers(recipe.tokenizer, trained)
    if trains_from_prepared(recipe):  # the same ids, batches and weights, from arrays
        return prepared_data(recipe, on_event, saved)
    return prepare_data(recipe, on_event, saved)


def _check_init_from(init_from: Path, recipe: Recipe, resume: bool) -> None:
    if resume:
        raise UserError(
            "--init-from starts a new run from trained weights and --resume continues a "
            "saved one: give one of them"
        )
    if recipe.output_dir is not None and init_from.resolve() == Path(recipe.output_dir).resolve():
        raise UserError(
            f"--init-from {init_from} is also the output directory; write the new run "
            "elsewhere with --output-dir"
        )


def _check_resume(run_dir: RunDir, world: World) -> None:
    """On every rank, before the data is read: the saved trainer state is sound (field by
    field) and was trained by as many processes as this run has."""
    path = run_dir.path
    state = checked_state(checkpoint.read_trainer(path), checkpoint.trainer_file(path))
    if state.world_size != world.size:  # each rank's share of the batches would differ
        raise UserError(
            f"{path} was trained by {state.world_size} processes and this run has "
            f"{world.size}; resume with torchrun --nproc-per-node={state.world_size} (in all)"
        )
