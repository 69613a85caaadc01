"""`nmt serve --model DIR [--model DIR2 ...]`: the models behind HTTP (the server of
nmt_runtime.serve.app; a model directory through PyTorch, an exported one through
nmt_runtime: nmt.serve.engine.load_engine)."""

from __future__ import annotations

import os
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


def _announce(host: str, port: int, names: list[str], keyed: bool) -> None:
    from nmt_runtime.serve.run import open_warning

    warning = open_warning(host, keyed)
    if warning:
        typer.secho(warning, err=True, fg=typer.colors.YELLOW)
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
            help="Model directory from nmt train, or an exported one from nmt export (served "
            "with nmt_runtime); give it more than once to serve several side by side, named "
            "by their directory names.",
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
    Every number has a range (nmt_runtime.serve.limits.BOUNDS); a flag outside it is refused.
    """
    try:
        import uvicorn  # noqa: F401  (the extra's presence, before any model loads)

        from nmt.serve.engine import load_engine, runtime_errors
        from nmt_runtime.serve.app import create_app
        from nmt_runtime.serve.limits import Limits
        from nmt_runtime.serve.run import serve_forever
    except ImportError:
        raise UserError(MISSING) from None
    use_threads(threads)
    if not 0 < port < 65536:
        raise UserError(f"--port {port}: give a port in 1..65535")
    with runtime_errors():  # the server's UserError, as nmt's
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
        name = "ensemble" if ensemble else None
        engines = [
            load_engine(dirs, name, device.value, precision.value, threads) for dirs in groups
        ]
        app = create_app(engines, limits, api_key)
    _announce(host, port, [e.name for e in engines], api_key is not None)
    serve_forever(app, host, port)
