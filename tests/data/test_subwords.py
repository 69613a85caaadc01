"""nmt.data.subwords on its own: a `Segmenter` draw cuts each text into vocabulary
pieces that spell the text again, the same generator state draws the same cuts, and
`reachable` holds every piece a draw used (the distributions themselves, against
SentencePiece's: tests/data/test_sampling.py)."""

from __future__ import annotations

import numpy as np
import pytest

from nmt.data.subwords import reachable
from nmt.data.tokenizer import SentencePieceTokenizer
from nmt.data.toy import numbers

TEXTS = [source for source, _ in numbers("train", 200)]


@pytest.mark.parametrize(("model_type", "nbest"), [("unigram", -1), ("unigram", 4), ("bpe", -1)])
def test_a_draw_spells_the_text_in_reachable_pieces(model_type, nbest):
    tokenizer = SentencePieceTokenizer.train(TEXTS, 60, model_type)
    segmenter = tokenizer.segmenter(model_type, 0.3, nbest)
    texts = TEXTS[:40]
    draws = segmenter.sample(texts, np.random.default_rng(1))
    assert tokenizer.sp.decode(draws) == texts
    assert draws != tokenizer.encode(texts)  # some text is cut other than its best way
    assert draws == segmenter.sample(texts, np.random.default_rng(1))
    assert {i for ids in draws for i in ids} <= reachable(tokenizer.sp, texts)
