"""The recipe as data: frozen dataclasses, one per section (`DataConfig`, `TokenizerConfig`
with `SamplingConfig`, `ModelConfig`, `TrainConfig`, `DecodeConfig`) inside `Recipe`, each
field with its default and its own rule (nmt/recipe/fields.py: finite, positive, in
range). A recipe file holds these sections and the top-level keys `seed` and
`output_dir`; every key is optional except data.source_lang, data.target_lang and
data.train. Reading a file, `--set` overrides and the type checks are in
nmt/recipe/load.py, rules across keys in nmt/recipe/rules.py. `DecodeConfig` is the one
definition of the decode settings: translation-time overrides become one too
(`load.override_decode`, `Translator.decode_config`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from nmt.recipe.fields import (
    checked,
    fraction,
    layers,
    non_negative,
    positive,
    rate,
    size,
)
from nmt.recipe.sources import Source, TrainSource

Cell = Literal["lstm", "gru", "rnn"]
Attention = Literal["none", "bahdanau", "luong_dot", "luong_general", "luong_concat"]
Bridge = Literal["linear", "zeros", "copy"]
LrSchedule = Literal["constant", "plateau", "epoch_decay", "inverse_sqrt"]
TeacherForcingSchedule = Literal["constant", "linear", "exponential", "inverse_sigmoid"]

# Beam search scores beam × vocabulary continuations per sentence and step, so memory and
# time grow with the beam, while quality peaks at small beams (5-10 here) and often falls
# for wide ones (Koehn & Knowles 2017): a beam past 100 is a mistake, not a setting.
MAX_BEAM = 100
# GNMT's length penalty divides a score by ((5 + |Y|) / 6)^α; α is 0.6-1 in practice (Wu
# et al. 2016 tune it in [0, 1]), and a huge α overflows that power before any search.
MAX_LENGTH_PENALTY = 10.0


# ---------------------------------------------------------------------------- sections


@dataclass(frozen=True)
class DataConfig:
    source_lang: str
    target_lang: str
    train: TrainSource  # a source, or a list of weighted corpora (WeightedSources)
    valid: Source | None = None
    test: Source | None = None
    max_length: int = positive(100)  # tokens per side; longer training pairs are dropped
    max_ratio: float = checked(3.0, lambda v: v >= 1, ">= 1")  # longer/shorter side, at most
    alternatives: dict[str, dict[str, Any]] = field(default_factory=dict)
    use: str | None = None  # name of an entry in `alternatives` that replaces train/valid/test
    # a prepared dataset's directory (nmt prepare): made if absent, used if it matches;
    # None: nmt train keeps one in the cache ($NMT_CACHE_DIR/prepared/<key>)
    prepared: str | None = None


@dataclass(frozen=True)
class SamplingConfig:
    """Subword regularization: SentencePiece's sampling distributions (drawn by
    nmt.data.subwords), applied to the training split only."""

    # unigram: smoothing exponent of the sampling distribution; bpe: BPE-dropout probability
    alpha: float = fraction(0.1, low_open=True, high_open=False)
    # unigram only: -1 samples from every segmentation (the lattice), n > 1 from the n best
    nbest: int = checked(-1, lambda v: v == -1 or 1 < v <= 512, "-1 (all) or in [2, 512]")


@dataclass(frozen=True)
class TokenizerConfig:
    type: Literal["sentencepiece", "word"] = "sentencepiece"
    vocab_size: int = checked(8000, lambda v: v > 4, "> 4 (there are 4 special symbols)")
    joint: bool = True  # one vocabulary for both languages, or one per side
    target_vocab_size: int | None = checked(None, lambda v: v > 4, "> 4")  # per side only
    model_type: Literal["unigram", "bpe"] = "unigram"  # SentencePiece algorithm
    character_coverage: float = fraction(1.0, low_open=True, high_open=False)  # SentencePiece
    restrict_target: bool = True  # output layer over the pieces the target side uses only
    # None: off; {alpha, nbest}: training segmentations sampled afresh each epoch (Kudo 2018;
    # BPE-dropout, Provilkov et al. 2020, for model_type bpe); never for valid/test/translate
    sampling: SamplingConfig | None = None
    # sentences the tokenizer trains on, a seeded sample of the training split (per side;
    # a joint one: both sides together); SentencePiece reads at most 2M in any case
    sample_sentences: int = positive(2_000_000)
    # Bring your own (docs/design.md, "Tokenizers"): type sentencepiece, `model` an existing
    # SentencePiece model file, used as is instead of training one; type word, `vocab` a
    # vocabulary file (one token per line, anything after whitespace ignored) over
    # pre-tokenized text. Either way the model directory keeps a copy, and its size is the
    # file's (vocab_size is not used). With joint: false these are the source side's, and
    # target_model / target_vocab the target side's.
    model: str | None = None
    target_model: str | None = None
    vocab: str | None = None
    target_vocab: str | None = None


@dataclass(frozen=True)
class ModelConfig:
    cell: Cell = "lstm"
    embedding_size: int = size(256)
    hidden_size: int = size(512)  # decoder state, and the encoder's output by default
    encoder_hidden_size: int | None = size(None)  # per direction; default hidden / dirs
    encoder_layers: int = layers(2)
    decoder_layers: int = layers(2)
    bidirectional: bool = True
    reverse_input: bool = False  # Sutskever et al. 2014: read each source sentence backwards
    attention: Attention = "luong_general"
    input_feeding: bool | None = None  # Luong only: feed h̃_{i-1} back; None: on for Luong
    bridge: Bridge = "linear"  # copy: the encoder's final states as they are
    dropout: float = fraction(0.3, low_open=False, high_open=True)
    tie_embeddings: bool = False  # target embedding = output projection
    share_embeddings: bool = False  # source embedding = target embedding (needs joint vocab)
    init_range: float = non_negative(0.1)  # uniform(-r, r), as Sutskever/Luong; 0: PyTorch's

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def feeds_input(self) -> bool:
        """Input feeding as the decoder applies it: on for Luong unless turned off."""
        return self.attention.startswith("luong") and self.input_feeding is not False

    @property
    def encoder_size(self) -> int:
        """Per-direction hidden size of the encoder RNN."""
        return self.encoder_hidden_size or self.hidden_size // self.directions


@dataclass(frozen=True)
class TrainConfig:
    batch_tokens: int = positive(4096)  # sentences × longest side, padding included
    max_epochs: int | None = positive(10)  # the limits count over resumed runs too,
    max_steps: int | None = positive(None)
    max_minutes: float | None = positive(None)  # except minutes: per invocation
    optimizer: Literal["adam", "sgd", "adadelta"] = "adam"
    learning_rate: float = rate(1e-3)  # at most MAX_LEARNING_RATE (float32)
    # nmt.training.schedules: constant; plateau (× lr_decay after lr_patience evaluations
    # without a better best_metric); epoch_decay (× lr_decay after each epoch from
    # lr_decay_start); inverse_sqrt (learning_rate · sqrt(w / step) after w warm-up steps)
    lr_schedule: LrSchedule = "constant"
    lr_decay: float = fraction(0.5, low_open=True, high_open=True)  # rate × this on a decay
    lr_patience: int = non_negative(2)  # plateau: evaluations without improvement, then decay
    lr_decay_start: int = non_negative(5)  # epoch_decay: decay after every epoch past this
    warmup_steps: int = non_negative(0)  # the rate rises linearly from 0 over N updates; 0: none
    clip_norm: float = non_negative(5.0)  # 0 disables gradient clipping
    accumulate: int = positive(1)  # batches per update; the loss averages all their tokens
    label_smoothing: float = fraction(0.0, low_open=False, high_open=True)
    # P(gold previous token); with a teacher_forcing_schedule, the floor it decays to
    teacher_forcing: float = fraction(1.0, low_open=True, high_open=False)
    # scheduled sampling (Bengio et al. 2015), ratio at update i: linear max(floor, k − c·i),
    # exponential max(floor, k^i), inverse_sigmoid max(floor, k / (k + exp(i / k)))
    teacher_forcing_schedule: TeacherForcingSchedule = "constant"
    teacher_forcing_k: float | None = positive(None)  # the schedules' k (nmt.recipe.rules)
    teacher_forcing_c: float | None = positive(None)  # linear: the decrease per update
    eval_every: int = non_negative(0)  # steps between evaluations; 0: every epoch's end
    patience: int = non_negative(0)  # evaluations without improvement before stopping; 0: never
    # bf16: autocast on CUDA or CPU; fp16: autocast with a gradient scaler (GPUs without bf16)
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    log_every: int = positive(100)  # steps between progress lines
    save_every: int = non_negative(0)  # steps between resumable saves; 0: at each evaluation
    skip_nonfinite: bool = False  # a NaN/inf loss skips its update instead of stopping the run
    deterministic: bool = False  # deterministic kernels only (slower on CUDA); bit-exact reruns
    tensorboard: bool = False  # curves and attention maps in RUN_DIR/tensorboard/
    # None: off; d: evaluate, choose and save an average of the weights, avg ← d·avg + (1−d)·w
    ema_decay: float | None = checked(None, lambda v: 0 <= v < 1, "in [0, 1)")
    keep_checkpoints: int = non_negative(0)  # keep the last N evaluations' weights (nmt average)
    valid_beam: int = checked(1, lambda v: 0 < v <= MAX_BEAM, f"in [1, {MAX_BEAM}]")  # 1: greedy
    # what chooses the best model and drives patience and lr_schedule plateau
    best_metric: Literal["bleu", "chrf", "loss"] = "bleu"


@dataclass(frozen=True)
class DecodeConfig:
    beam_size: int = checked(5, lambda v: 0 < v <= MAX_BEAM, f"in [1, {MAX_BEAM}]")  # 1: greedy
    length_penalty: float = checked(  # GNMT alpha, for length_normalization gnmt
        0.6, lambda v: 0 <= v <= MAX_LENGTH_PENALTY, f">= 0 and <= {MAX_LENGTH_PENALTY:g}"
    )
    length_normalization: Literal["none", "average", "gnmt"] = "gnmt"
    # Wu et al. 2016's β: β · Σ_source log min(attention it got, 1) added to a finished
    # hypothesis's rank score, against outputs that leave source words untranslated. Needs
    # attention; 0 (the default) is the search without it.
    coverage_penalty: float = checked(
        0.0, lambda v: 0 <= v <= MAX_LENGTH_PENALTY, f">= 0 and <= {MAX_LENGTH_PENALTY:g}"
    )
    max_length_ratio: float = positive(2.0)  # output may be this many times the source...
    max_length_offset: int = non_negative(5)  # ...plus this many tokens
    min_length: int = non_negative(1)  # tokens before </s> may be produced
    batch_tokens: int = positive(8000)  # source tokens per translation batch
    # Sources longer than this many tokens are cut (counted and reported); None: never. A
    # search's time and memory grow with the source, and 300 is 3 × data.max_length's
    # default: longer than any pair such a model trained on, so a cut loses little quality.
    max_input_length: int | None = positive(300)
    # Each <unk> output becomes the source word of most attention (Luong et al. 2015b), or
    # its entry in unk_dictionary (lines source_word<TAB>target_word); nmt.decode.unk.
    # Needs attention; false (the default) leaves outputs as the model wrote them.
    replace_unk: bool = False
    unk_dictionary: str | None = None


@dataclass(frozen=True)
class Recipe:
    data: DataConfig
    tokenizer: TokenizerConfig = TokenizerConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    decode: DecodeConfig = DecodeConfig()
    seed: int = checked(1, lambda v: 0 <= v < 2**32, "in [0, 2^32)")
    output_dir: str | None = None  # default: runs/<recipe file name>
