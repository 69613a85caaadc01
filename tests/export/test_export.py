"""`nmt export`: every architecture exports, checked by onnx.checker, with a manifest whose
hashes hold; int8 quantizes the matrix products; what cannot be exported says why in one
line and leaves nothing behind."""

from __future__ import annotations

import json
import shutil
import sys

import pytest
import yaml

pytestmark = pytest.mark.slow  # exports models: seconds each

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from helpers.exporting import ARCHITECTURES, exported, random_model_dir, sources  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from nmt.cli.main import app  # noqa: E402
from nmt.errors import UserError  # noqa: E402
from nmt.export import write  # noqa: E402
from nmt.export.write import export_model  # noqa: E402
from nmt_runtime import Translator as RuntimeTranslator  # noqa: E402
from nmt_runtime.manifest import sha256  # noqa: E402


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_every_architecture_exports_checked_graphs_and_a_manifest(name):
    _, out = exported(name)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "nmt-onnx-export" and manifest["precision"] == "fp32"
    listed = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert set(manifest["files"]) == listed - {"manifest.json"}
    assert all(sha256(out / f) == digest for f, digest in manifest["files"].items())
    assert {"encoder.onnx", "decoder_step.onnx", "decode.json"} <= listed
    (model,) = manifest["models"]
    for graph in ("encoder.onnx", "decoder_step.onnx"):
        onnx.checker.check_model(str(out / graph), full_check=True)
        opsets = {o.domain: o.version for o in onnx.load(str(out / graph)).opset_import}
        assert opsets[""] == manifest["opset"]
    step_inputs = [i["name"] for i in model["decoder_step"]["inputs"]]
    assert step_inputs[:2] == ["prev_tokens", "hidden"]
    overrides = " ".join(ARCHITECTURES[name])
    lstm = "cell=gru" not in overrides and "cell=rnn" not in overrides
    assert ("cell" in step_inputs) == lstm
    attends = "attention=none" not in overrides
    assert ("mask" in step_inputs) == attends
    log_probs = model["decoder_step"]["outputs"][0]
    assert (
        log_probs["name"] == "log_probs"
        and log_probs["shape"][1] == (manifest["vocabulary"]["target"])
    )
    outputs = [o["name"] for o in model["decoder_step"]["outputs"]]
    assert outputs[-3:] == ["top_log_probs", "top_ids", "eos_log_probs"]


def test_the_step_graph_ranks_its_log_probs_and_top_k_may_be_left_out():
    """top_log_probs, top_ids: each row's best top_k log_probs, best first; eos_log_probs:
    the </s> column. A runtime that feeds no top_k (older ones) gets the default."""
    import numpy as np
    import onnxruntime as ort

    from nmt.export.onnx_files import TOP_K

    _, out = exported("gru_bahdanau")
    session = ort.InferenceSession(str(out / "decoder_step.onnx"))
    translator = RuntimeTranslator.load(out)
    stepper_feeds = translator.models[0].encode(
        np.array([[4, 5, 6], [7, 8, 0]], dtype=np.int64), np.array([3, 2], dtype=np.int64)
    )
    feeds = dict(stepper_feeds, prev_tokens=np.array([2, 2], dtype=np.int64))
    names = [o.name for o in session.get_outputs()]
    found = dict(zip(names, session.run(None, feeds), strict=True))
    log_probs = found["log_probs"]
    assert found["top_ids"].shape == (2, TOP_K)
    best = np.argsort(-log_probs, axis=1, kind="stable")[:, :TOP_K]
    assert np.array_equal(np.take_along_axis(log_probs, best, axis=1), found["top_log_probs"])
    assert np.array_equal(
        np.take_along_axis(log_probs, found["top_ids"], axis=1), found["top_log_probs"]
    )
    assert np.array_equal(found["eos_log_probs"][:, 0], log_probs[:, 3])
    three = session.run(["top_ids"], dict(feeds, top_k=np.array([3], dtype=np.int64)))[0]
    assert three.shape == (2, 3)


def test_an_ensemble_exports_as_its_members(tmp_path):
    runs = [random_model_dir(tmp_path / f"m{seed}", seed=seed) for seed in (0, 1)]
    manifest = export_model(runs, tmp_path / "out")
    assert [m["encoder"]["file"] for m in manifest["models"]] == [
        "member1/encoder.onnx",
        "member2/encoder.onnx",
    ]
    assert (tmp_path / "out" / "member2" / "decoder_step.onnx").is_file()
    assert RuntimeTranslator.load(tmp_path / "out").size == 2


def test_int8_quantizes_the_matrix_products_and_translates(tmp_path):
    run, fp32 = exported("lstm_luong_general")
    manifest = export_model([run], tmp_path / "q", "int8")
    assert manifest["precision"] == "int8"
    for graph in ("encoder.onnx", "decoder_step.onnx"):
        onnx.checker.check_model(str(tmp_path / "q" / graph), full_check=True)
    ops = {node.op_type for node in onnx.load(str(tmp_path / "q" / "decoder_step.onnx")).graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= ops
    size = (tmp_path / "q" / "decoder_step.onnx").stat().st_size
    assert size < (fp32 / "decoder_step.onnx").stat().st_size
    lines = sources()
    quantized = RuntimeTranslator.load(tmp_path / "q")
    full = RuntimeTranslator.load(fp32)
    src = quantized.encode(lines)
    for beam in (1, 5):
        got = quantized.search(lines, beam_size=beam)
        want = full.search(lines, beam_size=beam)
        for ids, q, f in zip(src, got, want, strict=True):
            assert bool(q) == bool(f) == bool(ids)  # an empty line stays empty, no other
            if q:  # within the same maximum length: ⌈ratio · source⌉ + offset
                assert 0 <= len(q[0].target_pieces) <= -(-len(ids) * 12 // 10) + 5


def _refusal(tmp_path, monkeypatch, case):
    run, out = exported("gru_bahdanau")
    target = tmp_path / "new"
    if case == "output holds files":
        target.mkdir()
        (target / "keep.txt").write_text("mine")
        return [run], target, {}, r"--output-dir .*new: exists and is not empty"
    if case == "output is the model":
        return [run], run, {}, r"exists and is not empty|is the model directory"
    if case == "an exported directory":
        return [out], target, {}, r"is already an exported directory; export the model directory"
    if case == "opset":
        return [run], target, {"opset": 9}, r"--opset 9: the exporter writes opsets 14 to 20"
    if case == "precision":
        return [run], target, {"precision": "fp16"}, r"--precision fp16: give fp32 or int8"
    if case == "not a model directory":
        (tmp_path / "empty").mkdir()
        return [tmp_path / "empty"], target, {}, r"not a model directory \(no recipe.yaml\)"
    if case == "too big":
        monkeypatch.setattr(write, "MAX_GRAPH_BYTES", 1000)
        return [run], target, {}, r"GB of weights, and an ONNX file holds at most 2 GB"
    if case == "a coverage penalty":
        covered = tmp_path / "covered"
        shutil.copytree(run, covered)
        recipe = yaml.safe_load((covered / "recipe.yaml").read_text(encoding="utf-8"))
        recipe.setdefault("decode", {})["coverage_penalty"] = 0.2
        (covered / "recipe.yaml").write_text(yaml.safe_dump(recipe), encoding="utf-8")
        return [covered], target, {}, r"covered: its recipe sets decode.coverage_penalty"
    if case == "unk replacement":
        replacing = tmp_path / "replacing"
        shutil.copytree(run, replacing)
        recipe = yaml.safe_load((replacing / "recipe.yaml").read_text(encoding="utf-8"))
        recipe.setdefault("decode", {})["replace_unk"] = True
        (replacing / "recipe.yaml").write_text(yaml.safe_dump(recipe), encoding="utf-8")
        return [replacing], target, {}, r"replacing: its recipe sets decode.replace_unk"
    assert case == "onnx missing"
    monkeypatch.setitem(sys.modules, "onnx", None)
    return [run], target, {}, r"needs the package onnx, which is not installed: pip install"


@pytest.mark.parametrize(
    "case",
    [
        "output holds files",
        "output is the model",
        "an exported directory",
        "opset",
        "precision",
        "not a model directory",
        "too big",
        "onnx missing",
        "a coverage penalty",
        "unk replacement",
    ],
)
def test_what_cannot_be_exported_says_why_in_one_line(tmp_path, monkeypatch, case):
    runs, target, options, message = _refusal(tmp_path, monkeypatch, case)
    before = sorted(p.name for p in target.parent.iterdir())
    with pytest.raises(UserError, match=message) as refused:
        export_model(runs, target, **options)
    assert "\n" not in str(refused.value)
    assert sorted(p.name for p in target.parent.iterdir()) == before  # nothing half-written
    if case == "output holds files":
        assert (target / "keep.txt").read_text() == "mine"


def test_nmt_export_command(tmp_path):
    run, _ = exported("rnn_luong_dot")
    runner = CliRunner()
    done = runner.invoke(app, ["export", str(run), "--output-dir", str(tmp_path / "x"),
                               "--precision", "int8", "--opset", "17"])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "exported" in done.output and "(int8, opset 17)" in done.output
    assert json.loads((tmp_path / "x" / "manifest.json").read_text())["precision"] == "int8"
    again = runner.invoke(app, ["export", str(run), "--output-dir", str(tmp_path / "x")])
    assert again.exit_code == 1
    assert "error: --output-dir" in again.output and "exists and is not empty" in again.output
