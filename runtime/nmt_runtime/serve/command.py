"""`nmt-runtime serve -m DIR [-m DIR2 ...] [--host] [--port] [--api-key] [limits] [--threads]`.

The server of `nmt serve` (nmt_runtime.serve.app) for exported directories, without
PyTorch: the same page, APIs, limits, key, batching and SIGTERM, and the same flags where
they apply (no --device, --precision or --ensemble: an export runs on the CPU at the
precision it was exported with, and an ensemble is exported as one directory). Nothing of
FastAPI is imported until the command runs, so `nmt-runtime translate` works without the
serve extra.
"""

from __future__ import annotations

import argparse
import os
import sys

from nmt_runtime.errors import UserError

MISSING = (
    "nmt-runtime serve needs FastAPI and uvicorn, which are an optional extra: "
    "pip install 'recurrent-nmt-runtime[serve]' (in a checkout: pip install './runtime[serve]')"
)

# flag: (its Limits field, type, default, help); the units are the flags' (ms for the wait)
LIMIT_FLAGS = {
    "--max-chars": ("max_chars", int, 5000, "Characters per text."),
    "--max-tokens": ("max_tokens", int, 400, "Source tokens per text."),
    "--max-texts": ("max_texts", int, 128, "Texts per request."),
    "--max-body-bytes": ("max_body_bytes", int, 1_000_000, "Bytes per request body."),
    "--batch-tokens": ("batch_tokens", int, 4000, "Source tokens per search batch, "
                       "across requests."),
    "--max-wait-ms": ("max_wait", float, 5.0, "How long a request waits for others to "
                      "share its batch."),
    "--request-timeout": ("request_timeout", float, 30.0, "Seconds a request's body may "
                          "take to arrive; slower ones get 408."),
}  # fmt: skip


def add_parser(verbs: argparse._SubParsersAction) -> None:
    """`serve` among `nmt-runtime`'s verbs."""
    s = verbs.add_parser(
        "serve",
        help="Serve exported models over HTTP: a page, nmt's JSON API, LibreTranslate's.",
        description="Bound to 127.0.0.1 unless --host says otherwise; give --api-key when "
        "it is not. Needs the serve extra: pip install './runtime[serve]'.",
    )
    s.add_argument("-m", "--model", action="append", required=True, metavar="DIR",
                   help="An exported directory; give it more than once to serve several "
                   "side by side, named by their directory names.")  # fmt: skip
    s.add_argument("--host", default="127.0.0.1", help="Address to listen on.")
    s.add_argument("--port", type=int, default=8000, help="TCP port.")
    s.add_argument("--api-key", default=os.environ.get("NMT_API_KEY"),
                   help="Require this key (X-API-Key header, Bearer token or api_key "
                   "field); default: $NMT_API_KEY.")  # fmt: skip
    for flag, (_, kind, default, text) in LIMIT_FLAGS.items():
        s.add_argument(flag, type=kind, default=default, help=text)
    s.add_argument("--threads", type=int, help="CPU threads per operator (default: the cores).")


def serve(args: argparse.Namespace) -> None:
    """Check the flags, load the models, announce, serve until SIGTERM."""
    try:
        import uvicorn  # noqa: F401  (the extra's presence, before any model loads)

        from nmt_runtime.serve.app import create_app
        from nmt_runtime.serve.engine import RuntimeEngine
        from nmt_runtime.serve.limits import Limits
        from nmt_runtime.serve.run import open_warning, serve_forever
    except ImportError:
        raise UserError(MISSING) from None
    if not 0 < args.port < 65536:
        raise UserError(f"--port {args.port}: give a port in 1..65535")
    values = {field: getattr(args, flag[2:].replace("-", "_"))
              for flag, (field, *_) in LIMIT_FLAGS.items()}  # fmt: skip
    values["max_wait"] /= 1000
    limits = Limits(**values, command="nmt-runtime serve")  # each checked against its range
    engines = [RuntimeEngine.load(d, threads=args.threads) for d in args.model]
    app = create_app(engines, limits, args.api_key)
    warning = open_warning(args.host, args.api_key is not None)
    if warning:
        print(warning, file=sys.stderr)
    names = ", ".join(e.name for e in engines)
    print(
        f"serving {names} on http://{args.host}:{args.port}/ (pid {os.getpid()})", file=sys.stderr
    )
    serve_forever(app, args.host, args.port)
