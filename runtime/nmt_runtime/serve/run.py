"""Running the server: uvicorn, bound where asked, and a SIGTERM that ends it cleanly.

Both `nmt serve` and `nmt-runtime serve` end here once their models are loaded:

    serve_forever(create_app(engines, limits, key), "127.0.0.1", 8000)

SIGTERM: uvicorn stops accepting, answers the requests in flight (for at most `GRACE`
seconds), the app's lifespan closes the batcher, and the process exits with status 0.
"""

from __future__ import annotations

import signal
import sys
from typing import Any

# Seconds SIGTERM waits for the requests in flight before it cancels them: a client that
# never reads its answer must not keep the server up.
GRACE = 60
LOCAL = ("127.0.0.1", "localhost", "::1")


def open_warning(host: str, keyed: bool) -> str | None:
    """What to tell whoever serves beyond this machine without a key."""
    if host in LOCAL or keyed:
        return None
    return f"warning: serving on {host} without --api-key: anyone who can reach it may use it"


def _exit_cleanly_on_sigterm() -> None:
    """SIGTERM ends the server with status 0. uvicorn drains in-flight requests first,
    then raises the signal again with the handler it found: this one."""

    def leave(signum: int, frame: Any) -> None:
        sys.exit(0)

    signal.signal(signal.SIGTERM, leave)


def serve_forever(app: Any, host: str, port: int) -> None:
    """Serve `app` on host:port until SIGTERM (or Ctrl-C)."""
    import uvicorn

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
