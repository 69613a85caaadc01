"""`nmt serve`'s JSON API and LibreTranslate's, on a real server on 127.0.0.1."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import socket
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from helpers.serving import post, request, running  # noqa: E402

from nmt.decode.translate import Translator  # noqa: E402
from nmt.recipe.schema import MAX_BEAM  # noqa: E402
from nmt.serve.engine import TorchEngine  # noqa: E402
from nmt_runtime.serve.app import create_app  # noqa: E402
from nmt_runtime.serve.limits import Limits  # noqa: E402

LINES = ["1 2 3", "4 5", "7 8 9 0 1", "2"]


@pytest.fixture(scope="module")
def served(model_dir: Path) -> TorchEngine:
    return TorchEngine.load(model_dir, device="cpu")


@pytest.fixture(scope="module")
def translator(model_dir: Path) -> Translator:
    return Translator.load(model_dir, device="cpu")


@pytest.fixture(scope="module")
def server(served: TorchEngine):
    limits = Limits(max_chars=200, max_tokens=30, max_texts=8, max_body_bytes=5000)
    with running(create_app([served], limits)) as address:
        yield address


def test_health_models_and_languages(server, served, model_dir):
    assert request(server, "GET", "/health") == (
        200,
        {"status": "ok", "models": [served.name], "api_key_required": False},
    )
    status, models = request(server, "GET", "/models")
    assert status == 200 and [m["name"] for m in models] == [model_dir.name]
    info = models[0]
    assert (info["source"], info["target"]) == (served.source, served.target)
    assert info["decode"]["beam_size"] == served.translator.recipe.decode.beam_size
    assert info["results"]["signature"]["bleu"].startswith("nrefs:1")
    assert info["attention"] is True
    status, languages = request(server, "GET", "/languages")
    codes = {lang["code"]: lang["targets"] for lang in languages}
    assert status == 200 and codes[served.source] == [served.target]
    assert served.target in codes


@pytest.mark.parametrize("beam", [1, 3])
def test_api_translate_equals_the_translator(server, translator, beam):
    status, data = post(server, "/api/translate", {"text": LINES, "beam_size": beam})
    assert status == 200
    expected = translator.translate(LINES, beam_size=beam)
    assert [t["text"] for t in data["translations"]] == expected
    status, one = post(server, "/api/translate", {"text": LINES[0], "beam_size": beam})
    assert [t["text"] for t in one["translations"]] == expected[:1]


def test_api_nbest_scores_and_attention(server, translator):
    status, data = post(
        server, "/api/translate", {"text": LINES[2], "beam_size": 4, "nbest": 3, "attention": True}
    )
    assert status == 200
    result = data["translations"][0]
    found = translator.search([LINES[2]], nbest=3, attention=True, beam_size=4)[0]
    assert [result["text"]] + [a["text"] for a in result["alternatives"]] == [t.text for t in found]
    scores = [result["score"]] + [a["score"] for a in result["alternatives"]]
    assert scores == sorted(scores, reverse=True)
    rows = result["attention"]
    assert len(rows) == len(result["target_pieces"]) + 1  # and </s>
    assert all(len(row) == len(result["source_pieces"]) for row in rows)
    assert all(abs(sum(row) - 1) < 1e-4 for row in rows)


def test_an_empty_text_gets_an_empty_translation(server):
    status, data = post(server, "/api/translate", {"text": ["", LINES[1]]})
    assert status == 200 and data["translations"][0]["text"] == ""
    assert data["translations"][1]["text"] != "" or data["translations"][1]["score"] is not None


def test_libretranslate_json_form_list_and_alternatives(server, served, translator):
    pair = {"source": served.source, "target": served.target}
    status, data = post(server, "/translate", {"q": LINES[0], **pair})
    assert (status, data) == (200, {"translatedText": translator.translate(LINES[:1])[0]})
    status, data = post(server, "/translate", {"q": LINES, **pair, "format": "text"})
    assert data == {"translatedText": translator.translate(LINES)}
    form = f"q={LINES[1].replace(' ', '+')}&source=auto&target={served.target}".encode()
    kind = {"Content-Type": "application/x-www-form-urlencoded"}
    status, data = post(server, "/translate", None, raw=form, headers=kind)
    assert (status, data["translatedText"]) == (200, translator.translate(LINES[1:2])[0])
    status, data = post(server, "/translate", {"q": LINES[2], **pair, "alternatives": 2})
    found = translator.search([LINES[2]], nbest=3, beam_size=max(3, 5))[0]
    assert data == {"translatedText": found[0].text, "alternatives": [t.text for t in found[1:]]}


BAD_REQUESTS = [
    ("/api/translate", b"{not json", 400, "not valid JSON"),
    ("/api/translate", b"[1, 2]", 400, "JSON object"),
    ("/api/translate", b'{"text": 5}', 400, "text"),
    ("/api/translate", b'{"text": ["a", 3]}', 400, "text"),
    ("/api/translate", b'{"text": []}', 400, "no text"),
    ("/api/translate", b'{"txt": "1 2"}', 400, "text"),
    ("/api/translate", b'{"text": "1", "beam_size": 0}', 400, "beam_size"),
    ("/api/translate", b'{"text": "1", "nbest": 4, "beam_size": 2}', 400, "nbest 4"),
    ("/api/translate", b'{"text": "1", "model": "nope"}', 404, "no model named 'nope'"),
    ("/api/translate", b'{"text": "' + b"1 " * 150 + b'"}', 413, "--max-chars"),
    ("/api/translate", b'{"text": "' + b"1 " * 40 + b'"}', 413, "--max-tokens"),
    ("/api/translate", b'{"text": ["1","1","1","1","1","1","1","1","1"]}', 413, "--max-texts"),
    ("/api/translate", b'{"text": "' + b"1" * 6000 + b'"}', 413, "--max-body-bytes"),
    ("/translate", b'{"q": "1", "source": "xx", "target": "yy"}', 400, "xx→yy is not served"),
    ("/translate", b'{"q": "1", "target": "en", "format": "html"}', 400, "html"),
    ("/translate", b'{"source": "auto", "target": "en"}', 400, "q"),
    ("/translate", b"{oops", 400, "not valid JSON"),
]


@pytest.mark.parametrize(("path", "body", "status", "says"), BAD_REQUESTS)
def test_bad_requests_get_a_one_line_json_error_and_the_server_goes_on(
    server, translator, path, body, status, says
):
    got, data = post(server, path, None, raw=body, headers={"Content-Type": "application/json"})
    assert got == status, data
    assert set(data) == {"error"} and says in data["error"] and "\n" not in data["error"]
    ok, answer = post(server, "/api/translate", {"text": LINES[0]})
    assert (ok, answer["translations"][0]["text"]) == (200, translator.translate(LINES[:1])[0])


def test_unknown_paths_and_methods_answer_json_errors(server):
    assert request(server, "GET", "/nowhere") == (404, {"error": "Not Found"})
    status, data = request(server, "GET", "/api/translate")
    assert status == 405 and set(data) == {"error"}


def test_the_page_and_the_openapi_docs_are_served(server):
    status, page = request(server, "GET", "/")
    assert status == 200 and 'id="heatmap"' in page and "http" not in page.split("<script>")[1]
    status, spec = request(server, "GET", "/openapi.json")
    schemas = spec["components"]["schemas"]
    assert {"TranslateRequest", "TranslateResponse", "LibreResponse"} <= set(schemas)


def test_concurrent_requests_share_search_batches(served, translator):
    limits = Limits(max_wait=0.3)  # long enough for all eight to meet
    app = create_app([served], limits)
    with running(app) as address:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(lambda line: post(address, "/api/translate", {"text": line}), LINES * 2)
            )
        batches = app.state.server.batcher.batches
    assert [data["translations"][0]["text"] for _, data in answers] == translator.translate(
        LINES * 2
    )
    assert batches < 8


def test_a_client_that_hangs_up_does_not_break_its_batch(served, translator):
    app = create_app([served], Limits(max_wait=0.3))
    with running(app) as address:
        host, port = address.split(":")
        body = b'{"text": "3 4 5"}'
        head = "POST /api/translate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        quitter = socket.create_connection((host, int(port)), timeout=10)
        quitter.sendall(head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            pending = [
                pool.submit(post, address, "/api/translate", {"text": line}) for line in LINES
            ]
            quitter.close()  # gone while its request waits for its batch
            answers = [f.result(timeout=60) for f in pending]
        after = post(address, "/api/translate", {"text": LINES[0]})
    assert [data["translations"][0]["text"] for _, data in answers] == translator.translate(LINES)
    assert after[1]["translations"][0]["text"] == translator.translate(LINES[:1])[0]


def test_an_api_key_is_required_when_set(served):
    with running(create_app([served], api_key="s3cret")) as address:
        assert request(address, "GET", "/health")[1]["api_key_required"] is True
        assert post(address, "/api/translate", {"text": "1"})[0] == 403
        wrong = {"X-API-Key": "guess"}
        assert post(address, "/api/translate", {"text": "1"}, headers=wrong)[0] == 403
        for headers in ({"X-API-Key": "s3cret"}, {"Authorization": "Bearer s3cret"}):
            assert post(address, "/api/translate", {"text": "1"}, headers=headers)[0] == 200
        libre = {"q": "1", "target": served.target}
        assert post(address, "/translate", libre)[0] == 403
        assert post(address, "/translate", {**libre, "api_key": "s3cret"})[0] == 200
        assert request(address, "GET", "/models")[0] == 403
        assert request(address, "GET", "/languages")[0] == 200  # public, as LibreTranslate's


def test_two_models_side_by_side_and_an_ambiguous_pair(model_dir, served):
    other = TorchEngine.load(model_dir, name="twin", device="cpu")
    with running(create_app([served, other])) as address:
        status, data = post(address, "/api/translate", {"text": "1 2", "model": "twin"})
        assert status == 200 and data["model"] == "twin"
        status, data = post(address, "/api/translate", {"text": "1 2"})
        assert status == 400 and "several models fit" in data["error"]


def test_libretranslate_takes_the_first_model_for_a_pair_or_the_one_named(model_dir, served):
    twin = TorchEngine.load(model_dir, name="twin", device="cpu")
    pair = {"q": "1 2", "source": served.source, "target": served.target}
    app = create_app([served, twin])
    server, used = app.state.server, []
    run = server.run

    def recording(key, ids):  # which model each search ran on
        used.append(key.model)
        return run(key, ids)

    server.run = recording  # before the start: the lifespan hands it to the batcher
    with running(app) as address:
        plain = post(address, "/translate", pair)  # as LibreTranslate's clients send it
        named = post(address, "/translate", {**pair, "model": "twin"})
        form = f"q=1+2&source=auto&target={served.target}&model=twin".encode()
        kind = {"Content-Type": "application/x-www-form-urlencoded"}
        as_form = post(address, "/translate", None, raw=form, headers=kind)
        unknown = post(address, "/translate", {**pair, "model": "nope"})
        wrong_pair = post(address, "/translate", {**pair, "target": "xx", "model": "twin"})
    expected = served.translator.translate(["1 2"])[0]
    assert plain == (200, {"translatedText": expected})
    assert named == as_form == (200, {"translatedText": expected})  # twin is the same model
    assert used == [served.name, "twin", "twin"]
    assert unknown[0] == 404 and set(unknown[1]) == {"error"}
    assert "no model named 'nope'" in unknown[1]["error"]
    assert wrong_pair[0] == 400 and "model 'twin' translates" in wrong_pair[1]["error"]


def test_the_page_beam_box_allows_what_the_api_allows(server):
    status, page = request(server, "GET", "/")
    assert status == 200 and "{{" not in page
    assert f'id="beam" type="number" min="1" max="{MAX_BEAM}"' in page
    assert post(server, "/api/translate", {"text": "1", "beam_size": MAX_BEAM})[0] == 200
    assert post(server, "/api/translate", {"text": "1", "beam_size": MAX_BEAM + 1})[0] == 400


def test_two_models_with_one_name_are_refused(served):
    from nmt_runtime.errors import UserError

    with pytest.raises(UserError, match="two models are named"):
        create_app([served, served])


def test_an_ensemble_is_served_under_one_name(model_dir, translator):
    ensemble = TorchEngine.load([model_dir, model_dir], name="ensemble", device="cpu")
    with running(create_app([ensemble])) as address:
        status, models = request(address, "GET", "/models")
        status, data = post(address, "/api/translate", {"text": LINES})
    assert models[0]["directories"] == [str(model_dir)] * 2
    assert data["model"] == "ensemble"
    # a model ensembled with itself translates as that model alone
    assert [t["text"] for t in data["translations"]] == translator.translate(LINES)


def test_a_text_longer_than_the_model_reads_is_refused_not_cut(model_dir, translator):
    """decode.max_input_length cuts a file's long lines (and says so); a server must not
    answer for a text it did not read whole, so the text is refused with a 413."""
    served = TorchEngine.load(model_dir, device="cpu")
    cap = len(translator.encode(LINES[1:2])[0])
    assert len(translator.encode(LINES[2:3])[0]) > cap
    decode = dataclasses.replace(served.translator.recipe.decode, max_input_length=cap)
    served.translator.recipe = dataclasses.replace(served.translator.recipe, decode=decode)
    with running(create_app([served], Limits())) as address:
        status, data = post(address, "/api/translate", {"text": LINES[2]})
        assert status == 413 and f"reads at most {cap}" in data["error"], data
        status, data = post(address, "/api/translate", {"text": LINES[1]})
        assert status == 200
        assert data["translations"][0]["text"] == translator.translate(LINES[1:2])[0]
