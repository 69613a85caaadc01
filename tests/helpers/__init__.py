"""Functions with arguments that several test modules share, importable as `helpers.*`
(pyproject.toml puts tests/ on the path; test modules never import each other).

Shared values and state (the checkout root, the quickstart recipe, the tiny overrides, the
session's trained model, a CliRunner) are fixtures in tests/conftest.py instead. What lives
here is called with arguments, several times in one test, or at import time (parametrize
lists), where a fixture returning a function would read worse:

- helpers.cli: `--set` arguments, time stamps off CLI output, one-line error checks, the
  toy sentence pairs the CLI tests translate and score.
- helpers.search: a small random Seq2Seq and a padded source batch (search, ensembles).
- helpers.updates: a small model and random id pairs for one training update.
- helpers.serving: a real uvicorn server in a thread, plain HTTP calls with timeouts.
"""
