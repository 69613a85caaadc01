"""The bundled recipes, installed as the package data of `nmt.recipes` (see nmt/bundled.py)."""
