"""`nmt serve --model DIR [--model DIR2 ...]`: the models behind HTTP (nmt.serve.app)."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from nmt.cli.errors import user_errors
from nmt.cli.options import Device, DeviceOption, Precision, PrecisionOption, Threads, use_threads
from nmt.errors import UserError

MISSING = (
    "nmt serve needs FastAPI and uvicorn, which are an optional extra: "
    "pip install fastapi uvicorn python-multipart (in a checkout: pip install -e '.[serve]')"
)


# Seconds SIGTERM waits for the requests in flight before it cancels them: a client that
# never reads its answer must not keep the server up.
GRACE = 60


def _exit_cleanly_on_sigterm() -> None:
    """SIGTERM ends the server with status 0. uvicorn drains in-flight requests first,
    then raises the signal again with the handler it found: this one."""

    def leave(signum, frame):
        sys.exit(0)

    signal.signal(signal.SIGTERM, leave)


def _announce(host: str, port: int, names: list[str], keyed: bool) -> None:
    if host not in ("127.0.0.1", "localhost", "::1") and not keyed:
        typer.secho(
            f"warning: serving on {host} without --api-key: anyone who can reach it may use it",
            err=True,
            fg=typer.colors.YELLOW,
        )
    served = ", ".join(names)
    typer.echo(f"serving {served} on http://{host}:{port}/ (pid {os.getpid()})", err=True)


@user_errors
def serve(
    model: Annotated[
        list[Path],
        typer.Option(
            "--model",
            "-m",
            metavar="<dir>",
            help="Model directory from nmt train; give it more than once to serve several "
            "side by side, named by their directory names.",
        ),
    ],
    ensemble: Annotated[
        bool, typer.Option(help="Serve the --model directories as one ensemble.")
    ] = False,
    host: Annotated[
        str, typer.Option(help="Address to listen on; 0.0.0.0 opens it to the network.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="NMT_API_KEY",
            help="Require this key (X-API-Key header, Bearer token or api_key field).",
        ),
    ] = None,
    max_chars: Annotated[int, typer.Option(help="Characters per text.")] = 5000,
    max_tokens: Annotated[int, typer.Option(help="Source tokens per text.")] = 400,
    max_texts: Annotated[int, typer.Option(help="Texts per request.")] = 128,
    max_body_bytes: Annotated[int, typer.Option(help="Bytes per request body.")] = 1_000_000,
    batch_tokens: Annotated[
        int, typer.Option(help="Source tokens per search batch, across requests.")
    ] = 4000,
    max_wait_ms: Annotated[
        float, typer.Option(help="How long a request waits for others to share its batch.")
    ] = 5.0,
    request_timeout: Annotated[
        float,
        typer.Option(help="Seconds a request's body may take to arrive; slower ones get 408."),
    ] = 30.0,
    device: DeviceOption = Device.auto,
    threads: Threads = None,
    precision: PrecisionOption = Precision.fp32,
) -> None:
    """Serve translation over HTTP: a web page at /, nmt's JSON API, LibreTranslate's API.

    Bound to 127.0.0.1 unless --host says otherwise; give --api-key when it is not.
    Every number has a range (nmt.serve.limits.BOUNDS); a flag outside it is refused.
    """
    try:
        import uvicorn

        from nmt.serve.app import create_app
        from nmt.serve.limits import Limits
        from nmt.serve.server import Served
    except ImportError:
        raise UserError(MISSING) from None
    use_threads(threads)
    if not 0 < port < 65536:
        raise UserError(f"--port {port}: give a port in 1..65535")
    limits = Limits(  # checks each against its range before any model loads
        max_chars=max_chars,
        max_tokens=max_tokens,
        max_texts=max_texts,
        max_body_bytes=max_body_bytes,
        batch_tokens=batch_tokens,
        max_wait=max_wait_ms / 1000,
        request_timeout=request_timeout,
    )
    groups = [model] if ensemble else [[m] for m in model]
    served = [
        Served.load(dirs, "ensemble" if ensemble else None, device.value, precision.value)
        for dirs in groups
    ]
    app = create_app(served, limits, api_key)
    _announce(host, port, [s.name for s in served], api_key is not None)
    _exit_cleanly_on_sigterm()
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=GRACE,
    )
    uvicorn.Server(config).run()
