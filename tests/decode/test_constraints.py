"""Terminology constraints (nmt.decode.constraints, issue 25 item 2): Post & Vilar 2018's
dynamic beam allocation over the batched beam search.

Checked: a hypothesis's progress through its phrases (met, abandoned, restarted); the
round-by-round dealing of beam slots over the banks; with no constraints (None, or every
line empty) the search is exactly today's, and in a batch that has some, the sentences
without any get exactly today's hypotheses; over 40 seeded random constraint sets (0-3
phrases of 1-3 tokens from the tiny model's vocabulary, beams 1-5) every hypothesis holds
each of its phrases as a run of tokens, and through a Translator over the shared toy
model every translation holds each phrase in its detokenized text too; a constraint
longer than the length limit still fits (the limit grows by the constraint tokens);
ensembles; the refusals (greedy, <unk>, a count mismatch); nmt translate --constraints
end to end and its one-line errors; the JSON API's field.
"""

from __future__ import annotations

import math
import random

import pytest
import torch
from helpers.cli import assert_user_error, translate, write_lines
from helpers.search import MAX_LENGTHS, SRC_LENGTHS, source_batch, tiny_model

from nmt.data.toy import numbers
from nmt.decode.batched import decode_ids
from nmt.decode.constraints import Progress, advance, constrained_beam_search, deal, next_tokens
from nmt.decode.search import beam_search
from nmt.decode.translate import Translator
from nmt.errors import UserError
from nmt.vocab import UNK

LINES = [src for src, _ in numbers("test", 6)]


def holds(tokens: list[int], phrase: list[int]) -> bool:
    """Whether `phrase` is a run of consecutive tokens of `tokens`."""
    return any(tokens[i : i + len(phrase)] == phrase for i in range(len(tokens)))


def hyps(found):
    return [[(h.tokens, h.score) for h in sentence] for sentence in found]


# ---- progress and dealing -------------------------------------------------------------


def test_progress_meets_abandons_and_restarts_phrases():
    phrases = [(5, 6), (7,)]
    p = advance(phrases, Progress(), 5)
    assert p == Progress(done=0, phrase=0, at=1, met=1)
    assert next_tokens(phrases, p) == [6]  # only the phrase under way continues
    assert advance(phrases, p, 6) == Progress(done=0b01, phrase=-1, at=0, met=2)
    # another token gives the half-written phrase back; one that starts a phrase starts it
    assert advance(phrases, p, 4) == Progress(met=0)
    assert advance(phrases, p, 7) == Progress(done=0b10, met=1)
    assert advance(phrases, p, 5) == Progress(phrase=0, at=1, met=1)  # "5 5 6" restarts
    assert next_tokens(phrases, Progress()) == [5, 7]
    assert next_tokens(phrases, Progress(done=0b10, met=1)) == [5]
    # a phrase met stays met; the same phrase twice must be written twice
    twice = [(7,), (7,)]
    assert advance(twice, advance(twice, Progress(), 7), 7).done == 0b11


def test_slots_are_dealt_round_by_round_from_the_highest_bank():
    # (score, met, row, token, progress): bank 2 has one entry, bank 1 two, bank 0 three
    entries = [(-1.0, 0, 0, 4, None), (-2.0, 0, 0, 5, None), (-3.0, 0, 0, 6, None)]
    entries += [(-5.0, 1, 0, 7, None), (-4.0, 1, 0, 8, None), (-9.0, 2, 0, 9, None)]
    chosen = deal(entries, 3)  # one each: the best of banks 2, 1, 0
    assert sorted(entries[e][3] for e in chosen) == [4, 8, 9]
    assert [entries[e][0] for e in chosen] == [-1.0, -4.0, -9.0]  # best score first
    assert sorted(entries[e][3] for e in deal(entries, 5)) == [4, 5, 7, 8, 9]
    assert sorted(entries[e][3] for e in deal(entries, 1)) == [9]  # the top bank first
    # one bank: the best k, as unconstrained search keeps; -inf entries only to fill up
    flat = [(-3.0, 0, 0, 4, None), (float("-inf"), 0, 0, 5, None), (-1.0, 0, 0, 6, None)]
    assert deal(flat, 2) == [2, 0]
    assert deal(flat, 3) == [2, 0, 1]


# ---- no constraints: today's search -----------------------------------------------------


@pytest.mark.parametrize("beam", [2, 4])
def test_without_constraints_the_search_is_todays(beam):
    model = tiny_model()
    src, lengths = source_batch(SRC_LENGTHS)
    base = beam_search(model.step, model.encode(src, lengths), MAX_LENGTHS, beam, nbest=2)
    empty = [[] for _ in SRC_LENGTHS]
    same = constrained_beam_search(
        model.step, model.encode(src, lengths), MAX_LENGTHS, beam, empty, nbest=2
    )
    assert hyps(same) == hyps(base)


def test_decode_ids_without_constraints_is_decode_ids(translator):
    src_ids = translator.encode(LINES)
    settings = translator.decode_config(beam_size=3)
    args = translator.model, src_ids, settings, translator.device, 2
    base = decode_ids(*args, True)
    for constraints in (None, [[] for _ in LINES]):
        found = decode_ids(*args, True, constraints=constraints)
        assert hyps(found) == hyps(base)
        assert all(
            torch.equal(a.attention, b.attention)
            for x, y in zip(found, base, strict=True)
            for a, b in zip(x, y, strict=True)
        )
    texts = translator.translate(LINES, beam_size=3)
    assert translator.translate(LINES, beam_size=3, constraints=[[""] for _ in LINES]) == texts


def test_sentences_without_constraints_beside_others_get_todays_hypotheses():
    model = tiny_model()
    src, lengths = source_batch(SRC_LENGTHS)
    base = beam_search(model.step, model.encode(src, lengths), MAX_LENGTHS, 3, nbest=2)
    constraints = [[[5, 6]], [], [[7], [8, 9]], [], []]
    found = constrained_beam_search(
        model.step, model.encode(src, lengths), MAX_LENGTHS, 3, constraints, nbest=2
    )
    for b in (1, 3, 4):
        assert hyps([found[b]]) == hyps([base[b]])


# ---- every output holds its constraints ------------------------------------------------


def test_every_hypothesis_holds_each_of_its_random_constraints():
    model = tiny_model()
    src, lengths = source_batch(SRC_LENGTHS)
    rng = random.Random(25)
    for case in range(40):
        constraints = [
            [[rng.randrange(4, 10) for _ in range(rng.randint(1, 3))] for _ in range(n)]
            for n in (rng.randint(0, 3) for _ in SRC_LENGTHS)
        ]
        beam = rng.randint(1, 5)
        nbest = rng.randint(1, beam)
        found = constrained_beam_search(
            model.step, model.encode(src, lengths), MAX_LENGTHS, beam, constraints, nbest
        )
        for phrases, sentence in zip(constraints, found, strict=True):
            assert 1 <= len(sentence) <= nbest, (case, phrases)  # only those meeting all end
            for h in sentence:
                assert all(holds(h.tokens, p) for p in phrases), (case, beam, phrases, h.tokens)
                # the limit: the usual one plus the constraint tokens
                assert len(h.tokens) <= max(MAX_LENGTHS) + sum(map(len, phrases))


@pytest.fixture(scope="module")
def translator(model_dir) -> Translator:
    return Translator.load(model_dir, "cpu")


def target_words(translator: Translator) -> list[str]:
    """The toy task's target words that the shared model's target vocabulary can write."""
    words = sorted({w for _, tgt in numbers("train", 300) for w in tgt.split()})
    ids = translator.tgt_tokenizer.encode(words)
    return [w for w, x in zip(words, ids, strict=True) if UNK not in x]


def test_every_translation_holds_its_random_phrases_as_text(translator):
    words = target_words(translator)
    assert len(words) > 20
    rng = random.Random(2)
    for case in range(40):
        constraints = [
            [" ".join(rng.sample(words, rng.randint(1, 2))) for _ in range(rng.randint(0, 3))]
            for _ in LINES
        ]
        beam = rng.randint(2, 5)
        found = translator.search(LINES, beam_size=beam, constraints=constraints)
        ids = translator.constraint_ids(constraints)
        for phrases, phrase_ids, best in zip(constraints, ids, found, strict=True):
            pieces = best[0].target_pieces
            for text, x in zip(phrases, phrase_ids, strict=True):
                assert holds(pieces, translator.tgt_tokenizer.pieces(x)), (case, text, pieces)
                assert text in best[0].text, (case, text, best[0].text)


def test_a_constraint_longer_than_the_length_limit_still_fits(translator):
    words = target_words(translator)[:4]
    phrase = " ".join(words)
    short = {"max_length_ratio": 0.1, "max_length_offset": 0}  # ⌈0.1 · source length⌉
    plain = translator.search(LINES[:2], **short)
    limits = [math.ceil(0.1 * len(f[0].source_pieces)) for f in plain]
    assert [len(f[0].target_pieces) <= n for f, n in zip(plain, limits, strict=True)] == [1, 1]
    assert len(translator.constraint_ids([[phrase]])[0][0]) > limits[0]
    found = translator.search(LINES[:2], beam_size=2, constraints=[[phrase], []], **short)
    assert phrase in found[0][0].text
    assert len(found[1][0].target_pieces) <= limits[1]  # a line without any keeps its limit


def test_an_ensemble_holds_its_constraints_too(model_dir):
    ensemble = Translator.load([model_dir, model_dir], "cpu")
    assert ensemble.size == 2
    words = target_words(ensemble)
    constraints = [[words[i], f"{words[i + 1]} {words[i + 2]}"] for i in range(len(LINES))]
    out = ensemble.translate(LINES, beam_size=3, constraints=constraints)
    for phrases, text in zip(constraints, out, strict=True):
        assert all(p in text for p in phrases), (phrases, text)
    # a model ensembled with itself searches as the model alone
    alone = Translator.load(model_dir, "cpu")
    assert alone.translate(LINES, beam_size=3, constraints=constraints) == out


def test_attention_alignments_and_coverage_work_with_constraints(translator):
    words = target_words(translator)
    constraints = [[words[i]] for i in range(len(LINES))]
    found = translator.search(
        LINES, nbest=2, attention=True, beam_size=3, coverage_penalty=0.2, constraints=constraints
    )
    for phrases, best in zip(constraints, found, strict=True):
        for t in best:
            assert phrases[0] in t.text
            assert t.attention is not None and len(t.attention) == len(t.target_pieces) + 1
            assert t.alignment is not None
        assert [t.score for t in best] == sorted((t.score for t in best), reverse=True)


def test_the_refusals_are_one_line(translator):
    word = target_words(translator)[0]
    with pytest.raises(UserError, match=r"^--constraints need a beam search.*--beam 2 or more$"):
        translator.translate(LINES[:1], beam_size=1, constraints=[[word]])
    translator.translate(LINES[:1], beam_size=1, constraints=[[]])  # none: greedy as ever
    with pytest.raises(UserError, match=r"^2 lines of constraints for 1 lines to translate"):
        translator.translate(LINES[:1], constraints=[[word], []])
    with pytest.raises(UserError, match=r"constraint '☃' \(line 2\) has a piece this model"):
        translator.constraint_ids([[word], ["☃"]])


# ---- the command line and the JSON API -------------------------------------------------


def test_nmt_translate_constraints_end_to_end(runner, model_dir, translator, tmp_path):
    words = target_words(translator)
    src = write_lines(tmp_path / "in.txt", LINES[:4])
    wanted = [[words[0]], [], [words[1], f"{words[2]} {words[3]}"], [words[4]]]
    cons = write_lines(tmp_path / "terms.tsv", ["\t".join(p) for p in wanted])
    out = tmp_path / "out.txt"
    result = translate(runner, model_dir, str(src), "--constraints", str(cons), "-o", str(out))
    assert result.exit_code == 0, result.output
    got = out.read_text(encoding="utf-8").splitlines()
    assert got == translator.translate(LINES[:4], constraints=wanted)
    assert all(p in text for phrases, text in zip(wanted, got, strict=True) for p in phrases)
    # stdin: the same
    piped = translate(
        runner, model_dir, "-", "--constraints", str(cons), input="\n".join(LINES[:4]) + "\n"
    )
    assert piped.exit_code == 0, piped.output
    assert piped.stdout.splitlines() == got


def test_nmt_translate_constraints_errors_are_one_line(runner, model_dir, translator, tmp_path):
    word = target_words(translator)[0]
    src = write_lines(tmp_path / "in.txt", LINES[:2])
    three = write_lines(tmp_path / "three.tsv", [word, "", word])
    result = translate(runner, model_dir, str(src), "--constraints", str(three))
    assert_user_error(result, f"--constraints {three} has 3 lines and {src} 2")
    piped = translate(
        runner, model_dir, "-", "--constraints", str(three), input=f"{LINES[0]}\n{LINES[1]}\n"
    )
    assert piped.exit_code != 0 and "has 3 lines and standard input 2" in piped.stderr
    missing = tmp_path / "missing.tsv"
    result = translate(runner, model_dir, str(src), "--constraints", str(missing))
    assert_user_error(result, f"{missing}: no such file (named by --constraints)")
    unk = write_lines(tmp_path / "unk.tsv", [word, "☃"])
    result = translate(runner, model_dir, str(src), "--constraints", str(unk))
    assert_user_error(result, f"--constraints {unk}: constraint '☃' (line 2)")
    two = write_lines(tmp_path / "two.tsv", [word, ""])
    result = translate(runner, model_dir, str(src), "--constraints", str(two), "--greedy")
    assert_user_error(result, "--constraints need a beam search")


def test_the_json_api_takes_constraints(model_dir, translator):
    pytest.importorskip("fastapi")
    from helpers.serving import post, running

    from nmt.serve.engine import TorchEngine
    from nmt_runtime.serve.app import create_app
    from nmt_runtime.serve.limits import Limits

    words = target_words(translator)
    wanted = [[words[0], words[1]], []]
    plain = translator.translate(LINES[:1], beam_size=3)[0]
    limits = Limits(max_chars=200, max_tokens=30, max_texts=8, max_body_bytes=5000)
    with running(create_app([TorchEngine.load(model_dir, device="cpu")], limits)) as address:
        body = {"text": LINES[:2], "beam_size": 3, "constraints": wanted}
        status, data = post(address, "/api/translate", body)
        assert status == 200, data
        got = [t["text"] for t in data["translations"]]
        assert got == translator.translate(LINES[:2], beam_size=3, constraints=wanted)
        assert all(w in got[0] for w in wanted[0])
        one = {"text": LINES[0], "beam_size": 3, "constraints": wanted[0]}  # one text: one list
        status, data = post(address, "/api/translate", one)
        assert status == 200 and data["translations"][0]["text"] == got[0]
        status, data = post(address, "/api/translate", {**one, "constraints": []})  # none
        assert status == 200 and data["translations"][0]["text"] == plain
        status, data = post(address, "/api/translate", {**body, "beam_size": 1})
        assert status == 400 and data["error"].startswith("--constraints need a beam search")
        status, data = post(address, "/api/translate", {**body, "constraints": [words[:1]]})
        assert status == 400 and "1 lines of constraints for 2 lines" in data["error"]


def test_the_server_batches_constrained_requests_apart(model_dir, translator):
    """With a phrase for some text, a request gets its own batch key (`Plan.constrained`)
    and its items carry their constraint ids; constraints without a phrase are none (the
    plain key and items), but a list of texts still takes one list each. A single text's
    flat list is its one list (`TranslateRequest.options`)."""
    pytest.importorskip("fastapi")
    from nmt.serve.engine import TorchEngine
    from nmt_runtime.serve.limits import ApiError, Limits
    from nmt_runtime.serve.schema import TranslateRequest
    from nmt_runtime.serve.server import Server

    engine = TorchEngine.load(model_dir, device="cpu")
    server = Server([engine], Limits(), None)
    words, texts = target_words(translator), LINES[:2]
    wanted = [[words[0]], []]

    def prepare(**options):
        return server.prepare(engine, texts, 1, False, {"beam_size": 3, **options})

    plain, empty, held = prepare(), prepare(constraints=[[], [" "]]), prepare(constraints=wanted)
    assert empty.key == plain.key and empty.items == plain.items
    assert held.key != plain.key and held.key.plan.constrained
    pairs = zip(translator.encode(texts), translator.constraint_ids(wanted), strict=True)
    assert held.items == list(pairs)
    found = [t[0].text for t in server.run(held.key, held.items)]
    assert found == translator.translate(texts, beam_size=3, constraints=wanted)
    flat = "^constraints: a list of texts takes one list of phrases each$"
    with pytest.raises(ApiError, match=flat):
        prepare(constraints=[words[0]])
    with pytest.raises(ApiError, match="^0 lines of constraints for 2 lines to translate"):
        prepare(constraints=[])
    one = TranslateRequest(text=texts[0], constraints=[words[0]]).options()["constraints"]
    assert one == [[words[0]]]
    assert TranslateRequest(text=texts[0], constraints=[]).options()["constraints"] == [[]]
    assert TranslateRequest(text=texts, constraints=wanted).options()["constraints"] == wanted
