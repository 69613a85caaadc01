"""Recipe rules that involve more than one key (each key's own rule is on its field, see
nmt/recipe/fields.py). `check_recipe` runs once a recipe is built, after `--set`
overrides and `data.use`; a broken rule is one UserError naming the keys and the fix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nmt.errors import UserError
from nmt.recipe.fields import MAX_PARAMETERS
from nmt.recipe.size import recipe_parameters

if TYPE_CHECKING:
    from nmt.recipe.schema import Recipe, TrainConfig

# train.teacher_forcing_schedule → the range of teacher_forcing_k it needs (Bengio et al.
# 2015): the ratio at update i is max(floor, k − c·i), max(floor, k^i) or
# max(floor, k / (k + exp(i / k))); each starts at or below 1 and decays.
TEACHER_FORCING_K = {
    "linear": ((lambda k: k <= 1), "in (0, 1] (the ratio at the first update)"),
    "exponential": ((lambda k: k < 1), "in (0, 1) (the ratio decays as k^i)"),
    "inverse_sigmoid": ((lambda k: k >= 1), ">= 1 (the ratio decays as k / (k + exp(i / k)))"),
}


Rule = tuple[bool, str]  # (the rule holds, the message that names its keys and the fix)


def check_recipe(r: Recipe, where: str) -> None:
    """Checks that involve more than one key (each key's own rule is on its field): the
    rules of each section in turn, the first broken one raised, then the model's size."""
    rules = [*_data_rules(r), *_tokenizer_rules(r), *_model_rules(r), *_train_rules(r)]
    for ok, message in rules:
        if not ok:
            raise UserError(f"{where}: {message}")
    check_teacher_forcing(r.train, where)
    check_model_size(r, where)


def _data_rules(r: Recipe) -> list[Rule]:
    return [
        (r.data.source_lang != r.data.target_lang, "data.source_lang equals data.target_lang"),
        (
            r.data.prepared is None or r.tokenizer.sampling is None,
            "data.prepared holds fixed token ids, and tokenizer.sampling segments the text "
            "afresh each epoch: remove one of them",
        ),
    ]


def _tokenizer_rules(r: Recipe) -> list[Rule]:
    tok = r.tokenizer
    return [
        *_given_tokenizer_rules(r),
        (
            tok.target_vocab_size is None or not tok.joint,
            "tokenizer.target_vocab_size needs tokenizer.joint: false (one vocabulary per side)",
        ),
        (
            tok.sampling is None or tok.type == "sentencepiece",
            "tokenizer.sampling samples subword segmentations: it needs tokenizer.type "
            "sentencepiece (a word has one segmentation); remove tokenizer.sampling",
        ),
        (
            tok.sampling is None or tok.model_type == "unigram" or tok.sampling.nbest == -1,
            "tokenizer.sampling.nbest applies to model_type unigram only (BPE-dropout drops "
            "merges with probability alpha): remove tokenizer.sampling.nbest",
        ),
        (
            tok.sampling is None or tok.model_type == "unigram" or tok.sampling.alpha < 1,
            "tokenizer.sampling.alpha is BPE-dropout's merge dropout for model_type bpe: "
            "make it < 1 (1 would drop every merge, leaving single characters)",
        ),
    ]


def _given_tokenizer_rules(r: Recipe) -> list[Rule]:
    """tokenizer.model / target_model (SentencePiece) and vocab / target_vocab (word): each
    with its type, and one per side with joint: false."""
    tok = r.tokenizer
    rules = []
    for key, kind, other in (("model", "sentencepiece", "vocab"), ("vocab", "word", "model")):
        one, target = getattr(tok, key), getattr(tok, f"target_{key}")
        given = one is not None or target is not None
        rules += [
            (
                not given or tok.type == kind,
                f"tokenizer.{key} names a {kind} tokenizer file: it needs tokenizer.type "
                f"{kind} (tokenizer.type is {tok.type}; for type {tok.type} use "
                f"tokenizer.{other})",
            ),
            (
                target is None or not tok.joint,
                f"tokenizer.target_{key} is the target side's file: it needs tokenizer.joint: "
                f"false (with a joint vocabulary tokenizer.{key} serves both sides)",
            ),
            (
                tok.joint or (one is None) == (target is None),
                f"tokenizer.joint: false with tokenizer.{key} or tokenizer.target_{key}: give "
                f"both (tokenizer.{key} the source side's file, tokenizer.target_{key} the "
                "target side's)",
            ),
        ]
    return rules


def _model_rules(r: Recipe) -> list[Rule]:
    m = r.model
    encoder_out = m.encoder_size * m.directions
    return [
        (
            m.encoder_hidden_size is not None or m.hidden_size % m.directions == 0,
            "a bidirectional encoder splits model.hidden_size over two directions: make it even "
            "or set model.encoder_hidden_size",
        ),
        (
            m.attention != "luong_dot" or encoder_out == m.hidden_size,
            f"luong_dot scores s·h need the encoder output size ({encoder_out}) to equal "
            f"model.hidden_size ({m.hidden_size}); use luong_general or change the sizes",
        ),
        (
            m.input_feeding is not True or m.attention.startswith("luong"),
            f"model.input_feeding feeds Luong's attentional vector back; attention "
            f"{m.attention} has none: remove model.input_feeding",
        ),
        (
            not m.tie_embeddings or m.embedding_size == m.hidden_size,
            "model.tie_embeddings needs model.embedding_size == model.hidden_size",
        ),
        (
            not m.share_embeddings or r.tokenizer.joint,
            "model.share_embeddings needs tokenizer.joint: true (one vocabulary for both "
            "sides); set tokenizer.joint: true or remove model.share_embeddings",
        ),
        (
            m.attention != "none" or m.bridge != "zeros",
            "attention none with bridge zeros would never show the decoder the source; "
            "use bridge: linear",
        ),
        (
            m.attention != "none" or r.decode.coverage_penalty == 0,
            "decode.coverage_penalty sums the attention each source word got, and "
            "model.attention none gives none: set decode.coverage_penalty: 0",
        ),
        (
            m.attention != "none" or not r.decode.replace_unk,
            "decode.replace_unk copies the source word of most attention, and model.attention "
            "none gives none: set decode.replace_unk: false",
        ),
        (
            r.decode.unk_dictionary is None or r.decode.replace_unk,
            "decode.unk_dictionary is read only when <unk>s are replaced: set "
            "decode.replace_unk: true, or remove decode.unk_dictionary",
        ),
        (
            m.bridge != "copy"
            or (m.encoder_layers == m.decoder_layers and encoder_out == m.hidden_size),
            "bridge copy hands each encoder layer's final state to the same decoder layer: it "
            "needs equal layer counts and encoder output size == model.hidden_size",
        ),
    ]


def _train_rules(r: Recipe) -> list[Rule]:
    t = r.train
    return [
        (
            r.data.valid is not None or (t.patience == 0 and t.lr_schedule != "plateau"),
            "train.patience and lr_schedule plateau watch the valid split (train.best_metric): "
            "set data.valid",
        ),
        (
            t.max_epochs is not None or t.max_steps is not None or t.max_minutes is not None,
            "set at least one of train.max_epochs, train.max_steps, train.max_minutes",
        ),
    ]


def check_model_size(r: Recipe, where: str) -> None:
    """Refuse a model past MAX_PARAMETERS, counted from the recipe before anything is
    built (nmt.recipe.size), naming the keys that make it large."""
    count = recipe_parameters(r)
    if count <= MAX_PARAMETERS:
        return
    m, tok = r.model, r.tokenizer
    keys = {
        "model.hidden_size": m.hidden_size,
        "model.encoder_hidden_size": m.encoder_hidden_size,
        "model.embedding_size": m.embedding_size,
        "tokenizer.vocab_size": tok.vocab_size,
        "tokenizer.target_vocab_size": None if tok.joint else tok.target_vocab_size,
    }
    sizes = ", ".join(f"'{key}' ({value})" for key, value in keys.items() if value is not None)
    raise UserError(
        f"{where}: the model would have {count:.3g} parameters, more than the "
        f"{MAX_PARAMETERS:.0e} nmt builds (8 GB of float32 weights): make {sizes} or the "
        f"layer counts ({m.encoder_layers} + {m.decoder_layers}) smaller"
    )


def check_teacher_forcing(t: TrainConfig, where: str) -> None:
    """train.teacher_forcing_schedule's keys: k in the schedule's range, c for linear
    only, and a floor (train.teacher_forcing) below 1 for a schedule to decay to."""
    schedule, k, c = t.teacher_forcing_schedule, t.teacher_forcing_k, t.teacher_forcing_c
    name = f"train.teacher_forcing_schedule {schedule}"
    if schedule == "constant":
        given = [key for key, value in (("k", k), ("c", c)) if value is not None]
        if given:
            raise UserError(
                f"{where}: train.teacher_forcing_{given[0]} shapes a teacher_forcing_schedule "
                "(linear, exponential, inverse_sigmoid) and the schedule is constant: remove "
                f"train.teacher_forcing_{given[0]} or choose a schedule"
            )
        return
    test, rule = TEACHER_FORCING_K[schedule]
    if k is None or not test(k):
        got = "is not set" if k is None else f"is {k:g}"
        raise UserError(f"{where}: {name} needs train.teacher_forcing_k {rule}; it {got}")
    if schedule == "linear" and c is None:
        raise UserError(
            f"{where}: {name} needs train.teacher_forcing_c, the ratio's decrease per update "
            "(e.g. 0.0001: from k to the floor over (k − floor) / c updates)"
        )
    if schedule != "linear" and c is not None:
        raise UserError(
            f"{where}: train.teacher_forcing_c is the slope of the linear schedule; {name} "
            "has none: remove train.teacher_forcing_c"
        )
    if t.teacher_forcing >= 1:
        raise UserError(
            f"{where}: {name} decays to train.teacher_forcing, which is {t.teacher_forcing:g}: "
            "set train.teacher_forcing to the floor it should reach, below 1 (e.g. 0.5)"
        )
