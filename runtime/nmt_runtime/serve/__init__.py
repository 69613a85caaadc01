"""The server: a web page, nmt's JSON API and LibreTranslate's, over any `Engine`.

One server for `nmt serve` (trained models through PyTorch, and exported directories) and
`nmt-runtime serve` (exported directories, without PyTorch): app (routes), server (models,
checks), engine (the interface a model answers, and the runtime's), batcher, limits, key,
libre, schema, run (uvicorn and SIGTERM), command (`nmt-runtime serve`'s flags), web/ (the
page). It needs FastAPI, uvicorn and pydantic: `pip install './runtime[serve]'`. Importing
this package, or `command`, loads none of them.
"""
