"""Where the checkout's files are, for what a test module needs at import time
(parametrize lists, module constants); test bodies take the `root` and `quickstart`
fixtures of tests/conftest.py, which return these."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the folder holding nmt/, cli/ and tests/
RECIPES = ROOT / "recipes"
QUICKSTART = RECIPES / "quickstart.yaml"
