"""`caec serve`: the web front end on uvicorn (docs/web.md)."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Annotated

import typer

from cae_codec import __version__
from cae_codec.cli.kit import EXIT_USAGE, fail
from cae_codec.cli.options import NoPixelLimitOpt
from cae_codec.imageio import DEFAULT_MAX_PIXELS

LOCALHOST = "127.0.0.1"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    host: Annotated[
        str, typer.Option(help="Address to listen on; anything but a loopback address opens the server to the network.")
    ] = LOCALHOST,
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port (0: any free port).")] = 8000,
    dataset: Annotated[
        str | None,
        typer.Option(
            metavar="DIR", help="A folder of photos (e.g. the Kodak set) that the page offers beside uploads."
        ),
    ] = None,
    mnist: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR",
            help="LeCun's MNIST files (t10k-*, train-*): test digits to pick, training digits for the PCA beside "
            "the digit codecs.",
        ),
    ] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Encode/decode jobs run at once.")] = 2,
    queue: Annotated[int, typer.Option(min=0, max=1000, help="Jobs that may wait; beyond them: 503.")] = 8,
    max_upload_mb: Annotated[float, typer.Option(min=0.001, help="Largest upload, MiB.")] = 64.0,
    timeout: Annotated[
        float, typer.Option(min=1.0, help="Seconds a job may take from its acceptance (queue wait included).")
    ] = 300.0,
    no_pixel_limit: NoPixelLimitOpt = False,
    threads: Annotated[
        int,
        typer.Option(
            min=1,
            max=256,
            help="Threads of each job, in torch and ONNX Runtime. 1, the default, is much the fastest on a busy "
            "machine (docs/web.md); more help one job at a time on a quiet one.",
        ),
    ] = 1,
) -> None:
    """Serve the web front end: compare codecs on your images in a browser."""
    from cae_codec.errors import CaecError

    if not _is_loopback(host):
        typer.echo(f"caec: warning: listening on {host}: anyone who can reach it can use this server", err=True)
    if mnist is not None and not mnist.is_dir():
        raise fail(f"--mnist {mnist}: not a folder", EXIT_USAGE)
    import torch
    import uvicorn

    from cae_codec import runtime
    from cae_codec.web.app import Settings, create_app

    # in torch and ONNX Runtime alike: on a loaded 2-core machine a job ran 6.5 times slower
    # with 2 threads than with 1 (docs/web.md)
    torch.set_num_threads(threads)
    runtime.set_threads(threads)
    settings = Settings(
        max_upload_bytes=int(max_upload_mb * (1 << 20)),
        max_pixels=None if no_pixel_limit else DEFAULT_MAX_PIXELS,
        workers=workers,
        queue=queue,
        timeout_s=timeout,
        dataset=Path(dataset) if dataset else None,
        mnist=mnist,
    )
    try:
        app = create_app(settings)
    except CaecError as e:
        raise fail(str(e)) from None
    # the socket is bound here, so that its port (--port 0: any free one) can be printed
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        # listening already: a client told the URL below may connect before uvicorn has started
        sock.listen(2048)
    except OSError as e:
        sock.close()
        raise fail(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"caec {__version__}: serving on http://{shown}:{bound}/ (Ctrl-C stops)")
    # connections beyond this many at once get uvicorn's own 503 (the pool bounds the work; this
    # bounds idle or slow clients holding sockets open)
    connections = 64 + 4 * (workers + queue)
    config = uvicorn.Config(app, log_level="warning", timeout_keep_alive=5, limit_concurrency=connections)
    uvicorn.Server(config).run(sockets=[sock])
