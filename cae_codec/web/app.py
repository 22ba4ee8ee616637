"""The web server of `caec serve`: a Starlette app serving the static page and a small JSON API.

API (every error is ``{"error": "one sentence"}`` with its HTTP status, or an ``error`` event
in a stream):

- ``GET /api/codecs``: the codecs on offer (registered ones with their capabilities, classic
  ones with their knob), the server's limits, whether Kodak photos and MNIST digits are there.
- ``POST /api/compress?codecs=ID,ID&mode=quality|bpp|size[&bpp=R,R][&settings=ID:V,ID:V]``,
  the image file as the body: newline-delimited JSON events (cae_codec.web.work.compress).
- ``POST /api/decode``, a .cae file as the body: events (cae_codec.web.work.decode_file).
- ``POST /api/digit?digit=N[&quality=Q]`` (a test digit) or with a drawing (PNG) as the body.
- ``GET /api/dataset``, ``GET /api/dataset/{name}``: the configured photos, by their listed name.
- ``GET /api/digits?start=S&count=C``: MNIST test digits to pick.

Uploads are read into memory, never written to disk, up to the size limit (checked from the
declared length and again as bytes arrive) within a time-out; their content is sniffed
(Pillow for images, the magic for .cae), their names are never used. Work runs in a bounded
pool (cae_codec.web.pool): an overloaded server answers 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from cae_codec import __version__
from cae_codec.errors import CaecError
from cae_codec.imageio import DEFAULT_MAX_PIXELS
from cae_codec.web import work
from cae_codec.web.pool import Pool, Work, ndjson

STATIC = resources.files("cae_codec.web") / "static"
NDJSON = "application/x-ndjson"
MAX_DIGITS_LISTED = 100


@dataclass(frozen=True)
class Settings:
    """What `caec serve` configures (docs/web.md, "Safety")."""

    max_upload_bytes: int = 64 << 20
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    workers: int = 2
    queue: int = 8
    timeout_s: float = 300.0  # a job, from its acceptance (queue wait included) to its last event
    upload_timeout_s: float = 60.0  # for the body of a request to arrive
    dataset: Path | None = None  # a folder of photos (Kodak) to offer
    mnist: Path | None = None  # LeCun's MNIST files: test digits to pick, training digits for PCA
    device: str = "cpu"


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def read_body(request: Request, settings: Settings) -> bytes:
    """The request body in memory, refused past the size limit (from the declared length
    before reading, and as bytes arrive) or when it does not arrive in time."""
    limit = settings.max_upload_bytes
    too_big = f"the upload is larger than this server's limit of {limit / (1 << 20):g} MiB"
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise Refused(400, "the request's Content-Length is not a number")
        if int(declared) > limit:
            raise Refused(413, too_big)

    async def take() -> bytes:
        parts: list[bytes] = []
        size = 0
        async for piece in request.stream():
            size += len(piece)
            if size > limit:
                raise Refused(413, too_big)
            parts.append(piece)
        return b"".join(parts)

    try:
        body = await asyncio.wait_for(take(), settings.upload_timeout_s)
    except asyncio.TimeoutError:
        raise Refused(408, f"the upload did not arrive within {settings.upload_timeout_s:g} s") from None
    if not body:
        raise Refused(400, "the request carries no file")
    return body


def _floats(text: str, what: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise Refused(400, f"{what} must be numbers separated by commas, got {text!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise Refused(400, f"{what} must be finite numbers, got {text!r}")
    return values


def compress_request(params: Any) -> work.CompressRequest:
    codecs = tuple(c for c in params.get("codecs", "").split(",") if c)
    settings: dict[str, float] = {}
    for item in params.get("settings", "").split(","):
        if not item:
            continue
        cid, sep, value = item.rpartition(":")
        if not sep or not cid:
            raise Refused(400, f"a setting is ID:VALUE, got {item!r}")
        settings[cid] = _floats(value, f"the setting of {cid}")[0] if value else math.nan
    return work.CompressRequest(
        codecs=codecs,
        mode=params.get("mode", "quality"),
        targets=_floats(params.get("bpp", ""), "target rates"),
        settings=settings,
    )


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    limits = work.Limits(settings.max_pixels, settings.device)
    pool = Pool(settings.workers, settings.queue, settings.timeout_s)
    classic = work.classic_available()
    offered = work.offers(classic)
    digits = work.DigitSet(settings.mnist)
    photos: dict[str, Path] = {}
    if settings.dataset is not None:
        from cae_codec.evaluate.datasets import resolve_dataset

        found = resolve_dataset(str(settings.dataset), download=False)
        photos = {p.name: p for p in found.images}

    def start(work_fn: Work) -> Response:
        job = pool.start(work_fn)
        return StreamingResponse(ndjson(job), media_type=NDJSON, headers={"Cache-Control": "no-store"})

    async def admitted(request: Request, body: bool, make: Any) -> Response:
        """The work ``make(raw)`` returns, run on the pool if a place is free (503 otherwise)."""
        if not pool.admit():
            return error(503, f"the server is busy ({pool.capacity} jobs running or waiting): try again shortly")
        try:
            raw = await read_body(request, settings) if body else b""
            work_fn = make(raw)
        except Refused as e:
            pool.release()
            return error(e.status, e.message)
        except CaecError as e:
            pool.release()
            return error(400, str(e))
        except BaseException:
            pool.release()
            raise
        return start(work_fn)

    async def page(request: Request) -> Response:
        name = "mnist.html" if request.url.path.rstrip("/") == "/mnist" else "index.html"
        return Response((STATIC / name).read_bytes(), media_type="text/html; charset=utf-8")

    async def codecs(request: Request) -> Response:
        return JSONResponse(
            {
                "caec": __version__,
                "default_codec": next(o["id"] for o in offered if o["default"]),
                "codecs": offered,
                "limits": {
                    "max_upload_bytes": settings.max_upload_bytes,
                    "max_pixels": settings.max_pixels,
                    "workers": settings.workers,
                    "queue": settings.queue,
                    "timeout_s": settings.timeout_s,
                    "max_targets": work.MAX_TARGETS,
                },
                "dataset": sorted(photos),
                "digits": digits.available,
                "digits_training": settings.mnist is not None
                and (settings.mnist / "train-images-idx3-ubyte.gz").is_file(),
            }
        )

    async def compress(request: Request) -> Response:
        def make(raw: bytes) -> Work:
            req = compress_request(request.query_params)
            req.check(offered)
            return lambda report, check: work.compress(raw, req, offered, limits, report, check)

        return await admitted(request, True, make)

    async def decode(request: Request) -> Response:
        return await admitted(
            request, True, lambda raw: lambda report, check: work.decode_file(raw, limits, report, check)
        )

    async def digit(request: Request) -> Response:
        params = request.query_params
        quality = params.get("quality")
        if quality is not None and not quality.isdigit():
            return error(400, f"quality must be a whole number, got {quality!r}")
        q = int(quality) if quality is not None else None
        index = params.get("digit")
        if index is not None:
            if not index.isdigit():
                return error(400, f"digit must be the index of a test digit, got {index!r}")

            def make_pick(raw: bytes) -> Work:
                images, _ = digits.test()
                if int(index) >= len(images):
                    raise CaecError(f"there are {len(images)} test digits, no digit {index}")
                chosen = images[int(index)]
                return lambda report, check: work.code_digit(chosen, None, q, digits, limits, report, check)

            return await admitted(request, False, make_pick)

        def make_drawn(raw: bytes) -> Work:
            return lambda report, check: work.code_digit(None, raw, q, digits, limits, report, check)

        return await admitted(request, True, make_drawn)

    async def digit_list(request: Request) -> Response:
        params = request.query_params
        start_at, count = params.get("start", "0"), params.get("count", "20")
        if not (start_at.isdigit() and count.isdigit()) or not 1 <= int(count) <= MAX_DIGITS_LISTED:
            return error(400, f"start must be a whole number and count 1..{MAX_DIGITS_LISTED}")
        try:
            images, labels = await run_in_threadpool(digits.test)
        except CaecError as e:
            return error(404, str(e))
        first = int(start_at)
        chosen = range(first, min(len(images), first + int(count)))
        return JSONResponse(
            {
                "total": len(images),
                "digits": [
                    {"index": i, "label": int(labels[i]), "png": work.b64(work.png_of(images[i][:, :, None]))}
                    for i in chosen
                ],
            }
        )

    async def dataset_list(request: Request) -> Response:
        return JSONResponse({"images": sorted(photos)})

    async def dataset_image(request: Request) -> Response:
        path = photos.get(request.path_params["name"])  # only names the server listed itself
        if path is None:
            return error(404, "no such image in the server's dataset")
        return FileResponse(path)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            pool.shutdown()

    routes = [
        Route("/", page),
        Route("/mnist", page),
        Route("/api/codecs", codecs),
        Route("/api/compress", compress, methods=["POST"]),
        Route("/api/decode", decode, methods=["POST"]),
        Route("/api/digit", digit, methods=["POST"]),
        Route("/api/digits", digit_list),
        Route("/api/dataset", dataset_list),
        Route("/api/dataset/{name}", dataset_image),
        Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.pool = pool
    app.state.settings = settings
    return app
