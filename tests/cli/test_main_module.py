"""nmt/__main__.py: `python -m nmt ...` is `nmt ...` (torchrun launches `-m nmt train`)."""

from __future__ import annotations

import runpy
import sys

import pytest


def test_python_dash_m_nmt_runs_the_cli(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["nmt", "--help"])
    with pytest.raises(SystemExit) as done:
        runpy.run_module("nmt", run_name="__main__")
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert all(command in out for command in ("train", "translate", "evaluate", "serve"))
