"""The model directory's layout: every name it may hold, in one place, and the one check
that a path is a model directory.

    runs/x/                  what `nmt train` writes (RUN_FILES); `nmt average` writes a new
                             one with recipe, tokenizers, weights and averaged.json
      recipe.yaml            RECIPE: the resolved recipe, exactly as trained
      model.safetensors      WEIGHTS: the best weights (loading them runs no code)
      spm.model | vocab.txt  the tokenizer, joint; src.* + tgt.* one per side
                             (tokenizer_names; TOKENIZER_FILES lists every possible name)
      target_vocab.txt       TARGET_SUBSET: the target side's pieces (tokenizer.restrict_target)
      metrics.jsonl          METRICS: one JSON object per evaluation
      results.json           RESULTS: the test split's scores
      test.hyp               TEST_HYP: the test translations those scores score
      tensorboard/           TENSORBOARD: event files, with train.tensorboard
      averaged.json          AVERAGED: which checkpoints `nmt average` averaged
      checkpoints/           KEPT: step-N.safetensors (step_file), the last
                             train.keep_checkpoints evaluations' weights
        last/                LAST: model.safetensors + optimizer.pt + trainer.json
                             (+ average.safetensors with train.ema_decay), to resume;
                             last.tmp and last.old while it is replaced (LAST_TMP, LAST_OLD)

Nothing here reads or writes a file except `check_model_dir`, which looks: the writers are
nmt.store.checkpoint (weights, the resumable state) and nmt.training (the run's files).
"""

from __future__ import annotations

from pathlib import Path

from nmt.errors import UserError

RECIPE = "recipe.yaml"
WEIGHTS = "model.safetensors"
METRICS = "metrics.jsonl"
RESULTS = "results.json"
TEST_HYP = "test.hyp"
TENSORBOARD = "tensorboard"
AVERAGED = "averaged.json"

# Tokenizers (nmt.data.tokenizer): one file per kind, named once for a joint vocabulary
# and with src./tgt. in front for one per side.
SENTENCEPIECE = "spm.model"
WORDS = "vocab.txt"
TARGET_SUBSET = "target_vocab.txt"

KEPT = Path("checkpoints")
LAST = KEPT / "last"
LAST_TMP = KEPT / "last.tmp"  # the next checkpoint, being written
LAST_OLD = KEPT / "last.old"  # the previous one, until the next is in place
OPTIMIZER = "optimizer.pt"  # in LAST: optimizer, schedule and random states
TRAINER = "trainer.json"  # in LAST: the trainer's counters (nmt.training.state)
AVERAGE = "average.safetensors"  # in LAST: the weights' moving average (train.ema_decay)


def tokenizer_names(file_name: str, joint: bool) -> tuple[str, str]:
    """The source and target tokenizer files of a kind (`file_name`: SENTENCEPIECE or WORDS):
    one file for a joint vocabulary, one per side otherwise."""
    return (file_name, file_name) if joint else (f"src.{file_name}", f"tgt.{file_name}")


# Every tokenizer file a model directory may hold.
TOKENIZER_FILES = (
    *dict.fromkeys(
        name
        for kind in (SENTENCEPIECE, WORDS)
        for joint in (True, False)
        for name in tokenizer_names(kind, joint)
    ),
    TARGET_SUBSET,
)
# What a training run writes into its directory: --overwrite removes these and nothing else.
RUN_FILES = frozenset(
    {RECIPE, WEIGHTS, METRICS, RESULTS, TEST_HYP, TENSORBOARD, KEPT.name, *TOKENIZER_FILES}
)


# A prepared dataset (`nmt prepare`'s DATA_DIR) holds the tokenizers under the names above,
# its manifest and, for `nmt vocab`, each side's id counts over the training split.
DATASET_MANIFEST = "manifest.json"
COUNTS = "counts.npz"  # int64 arrays `source` and `target` (target: by the output layer's ids)


STEP_FILES = "step-*.safetensors"  # in KEPT: every name step_file gives (a glob)


def step_file(step: int) -> str:
    """The name, in KEPT, of the weights kept from the evaluation at `step`."""
    return f"step-{step:08d}.safetensors"


def kept_step(path: Path) -> int | None:
    """The step of a kept weights file named by `step_file`, or None for another name."""
    digits = path.name.removeprefix("step-").removesuffix(".safetensors")
    return int(digits) if path.name.startswith("step-") and digits.isdigit() else None


def check_model_dir(path: Path, flag: str | None = "--model") -> Path:
    """`path`'s recipe.yaml, once `path` is known to be a model directory `nmt train` wrote
    (or `nmt average`); else one UserError, the same wherever a model directory is given.
    `flag` names the option that gave `path` (None: a positional argument).

    A file is told apart (most often the recipe.yaml itself, meant for its directory);
    the weights and tokenizers are checked by those who read them.
    """
    named = f"{flag} {path}" if flag else str(path)
    hint = "runs/quickstart"
    if path.is_file():
        if path.name == RECIPE:
            hint = f"{path.parent}" if path.parent != Path() else ". (this one)"
        wants = f"{flag} wants" if flag else "give"
        raise UserError(
            f"{named} is a file, not a model directory: {wants} the directory that nmt train "
            f"wrote (holding {RECIPE} and {WEIGHTS}), e.g. {hint}"
        )
    if not (path / RECIPE).is_file():
        raise UserError(
            f"{named}: not a model directory (no {RECIPE}); give the directory that nmt train "
            f"wrote, e.g. {hint}"
        )
    return path / RECIPE
