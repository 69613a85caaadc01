"""`nmt serve --model EXPORTED_DIR`: an exported directory behind the same server, through
nmt_runtime, answering what `nmt translate --model EXPORTED_DIR` writes; what the runtime
lacks (coverage penalty, alignments, constraints, UNK replacement) is refused by name."""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("onnxruntime")

from helpers.exporting import exported, sources  # noqa: E402
from helpers.serving import post, request, running, start, stop  # noqa: E402

from nmt.cli.main import app  # noqa: E402
from nmt.recipe import schema as recipe_schema  # noqa: E402
from nmt.serve.engine import TorchEngine, load_engine  # noqa: E402
from nmt_runtime import settings as runtime_settings  # noqa: E402
from nmt_runtime.errors import UserError  # noqa: E402
from nmt_runtime.serve.app import create_app  # noqa: E402

ARCHITECTURE = "lstm_luong_general"


def test_the_api_bounds_are_nmt_s_own():
    """The schema's bounds are the runtime's constants, which must be the recipe's."""
    assert runtime_settings.MAX_BEAM == recipe_schema.MAX_BEAM
    assert runtime_settings.MAX_LENGTH_PENALTY == recipe_schema.MAX_LENGTH_PENALTY


def nmt_translate(runner, tmp_path, model, *flags: str) -> list[str]:
    """What `nmt translate --model DIR FLAGS` writes for `sources()`."""
    source, output = tmp_path / "in.txt", tmp_path / "out.txt"
    source.write_text("\n".join(sources()) + "\n", encoding="utf-8")
    args = ["translate", str(source), "--model", str(model), "--output", str(output), *flags]
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    return output.read_text(encoding="utf-8").splitlines()


@pytest.mark.slow
def test_nmt_serve_of_an_exported_directory_answers_as_nmt_translate(runner, tmp_path):
    _, out = exported(ARCHITECTURE)
    expected = nmt_translate(runner, tmp_path, out)
    greedy = nmt_translate(runner, tmp_path, out, "--greedy")
    process, address = start([sys.executable, "-m", "nmt", "serve", "--model", str(out)])
    try:
        status, models = request(address, "GET", "/models")
        pair = {"source": models[0]["source"], "target": models[0]["target"]}
        answers = []
        for line in sources():  # one request at a time, each bounded by the helper's timeout
            nmt_api = post(address, "/api/translate", {"text": line})
            libre = post(address, "/translate", {"q": line, **pair})
            answers.append((nmt_api, libre))
        listed = post(address, "/api/translate", {"text": sources(), "beam_size": 1})
        page = request(address, "GET", "/")
    finally:
        code, err = stop(process)
    assert status == 200 and models[0]["directories"] == [str(out)]
    for want, ((s1, nmt_api), (s2, libre)) in zip(expected, answers, strict=True):
        assert (s1, s2) == (200, 200), (nmt_api, libre)
        assert nmt_api["translations"][0]["text"] == libre["translatedText"] == want
    assert [t["text"] for t in listed[1]["translations"]] == greedy
    assert page[0] == 200 and f'max="{recipe_schema.MAX_BEAM}"' in page[1]
    assert code == 0, err


REFUSED = [  # (request, the field its one-line error names)
    ({"coverage_penalty": 0.2}, "coverage_penalty 0.2: the exported model"),
    ({"alignment": True}, "alignment true: the exported model"),
    ({"constraints": ["one"]}, 'constraints [["one"]]: the exported model'),
    ({"replace_unk": True}, "replace_unk true: the exported model"),
]
NOT_ASKED = {"coverage_penalty": 0, "alignment": False, "constraints": [], "replace_unk": False}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("asked", "says"), REFUSED, ids=["coverage", "alignment", "constraints", "replace_unk"]
)
def test_what_the_runtime_lacks_is_refused_in_one_line(asked, says):
    _, out = exported(ARCHITECTURE)
    engine = load_engine([out], threads=1)
    with running(create_app([engine])) as address:
        status, data = post(address, "/api/translate", {"text": "one two", **asked})
        off = {k: NOT_ASKED[k] for k in asked}
        fine = post(address, "/api/translate", {"text": "one two", **off})
    assert status == 400 and set(data) == {"error"}
    assert data["error"].startswith(says) and "\n" not in data["error"]
    field = next(iter(asked))
    assert f"leave {field} out" in data["error"]
    assert fine[0] == 200  # not asked (0, false, []): served as usual


@pytest.mark.slow
def test_a_decode_field_the_runtime_lacks_is_refused_by_its_name():
    """A field added to the API later (say replace_unk) needs no code in the runtime's
    engine: asked, it is refused by name; left at None or false, it is not asked."""
    _, out = exported(ARCHITECTURE)
    engine = load_engine([out])
    with pytest.raises(UserError, match=r"^replace_unk true: the exported model .* replace_unk"):
        engine.plan(1, False, {"replace_unk": True, "beam_size": None})
    plan = engine.plan(2, True, {"replace_unk": False, "constraints": None, "beam_size": 3})
    assert (plan.settings.beam_size, plan.nbest, plan.attention) == (3, 2, True)
    assert engine.plan(1, False, {"constraints": [[], []]}) == engine.plan(1, False, {})  # none


@pytest.mark.slow
def test_a_model_directory_and_its_export_side_by_side_agree(runner):
    run, out = exported(ARCHITECTURE)
    engines = [TorchEngine.load(run, device="cpu"), load_engine([out], name="onnx")]
    lines = [line for line in sources() if line]
    with running(create_app(engines)) as address:
        names = [m["name"] for m in request(address, "GET", "/models")[1]]
        body = {"text": lines, "beam_size": 3, "nbest": 2, "attention": True}
        answers = [post(address, "/api/translate", {**body, "model": n})[1] for n in names]
    assert names == [run.name, "onnx"]
    torch_side, onnx_side = (a["translations"] for a in answers)
    for a, b in zip(torch_side, onnx_side, strict=True):
        assert [a["text"], *(x["text"] for x in a["alternatives"])] == [
            b["text"],
            *(x["text"] for x in b["alternatives"]),
        ]
        assert a["score"] == pytest.approx(b["score"], abs=1e-4)
        assert (a["source_pieces"], a["target_pieces"]) == (b["source_pieces"], b["target_pieces"])
        assert len(a["attention"]) == len(b["attention"])


FLAGS = [  # (nmt serve flags beside --model EXPORTED, what the error says)
    (["--precision", "int8"], "--precision int8: an exported directory"),
    (["--device", "cuda"], "--device cuda: an exported directory"),
    (["--ensemble", "--model", "MODEL"], "--ensemble: --model EXPORTED is an exported directory"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("flags", "says"), FLAGS, ids=["precision", "device", "ensemble"])
def test_serve_refuses_flags_an_exported_directory_cannot_take(runner, monkeypatch, flags, says):
    import uvicorn

    run, out = exported(ARCHITECTURE)
    started = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self: started.append(self))
    flags = [str(run) if f == "MODEL" else f for f in flags]
    result = runner.invoke(app, ["serve", "--model", str(out), *flags])
    assert (result.exit_code, started) == (1, []), result.output
    line = result.output.strip()
    assert line.startswith("error: " + says.replace("EXPORTED", str(out))) and "\n" not in line
