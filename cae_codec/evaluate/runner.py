"""Run codecs over images and target rates, in a process pool over images.

One task is one (image, codec) pair with all its target rates, so caec analyses each
image once and the rate searches share their encodes. Workers are spawned (not forked:
torch's thread pools do not survive a fork) and run torch on one thread, like the classic
codecs, so that two workers use two cores and times compare like with like.
"""

from __future__ import annotations

import math
import multiprocessing
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from cae_codec import registry
from cae_codec.errors import CaecError
from cae_codec.evaluate.classic import CLASSIC_CODECS, ImageCodec
from cae_codec.evaluate.metrics import bits_per_pixel, ms_ssim_rgb, psnr_rgb
from cae_codec.ratecontrol import MemoEncoder, encode_seconds, search_rate


def _learned_names() -> list[str]:
    """The registry's codecs by their evaluation names: the default codec is ``caec``. The
    evaluation codes photos of any size, so a codec of one fixed size (MNIST digits) is not
    one of them."""
    others = (
        c for c, info in registry.CODECS.items() if c != registry.DEFAULT_CODEC and not info.capabilities.fixed_size
    )
    return ["caec", *others]


CODEC_NAMES = [*_learned_names(), *CLASSIC_CODECS]


def split_model(name: str) -> tuple[str, str | None]:
    """'comcnn@comcnn-webp' -> ('comcnn', 'comcnn-webp'): a learned codec run with a model of
    its own other than its default (a model name, looked up as --model's are); 'jpeg' -> ('jpeg', None)."""
    base, sep, model = name.partition("@")
    return base, (model if sep else None)


def learned_id(name: str) -> str | None:
    """The registry id behind an evaluation name (``CODEC`` or ``CODEC@MODEL``), None for a classic codec."""
    base, _ = split_model(name)
    if base in registry.ALIASES or base in registry.CODECS:
        return registry.get(base).id
    return None


def unavailable_reason(name: str) -> str | None:
    cls = CLASSIC_CODECS.get(name)
    return cls.unavailable_reason() if cls is not None else None


def suffix_of(name: str) -> str:
    """The file suffix of a codec's files (``compare --out``)."""
    if learned_id(name) is not None:
        return ".cae"
    try:
        return CLASSIC_CODECS[name].suffix
    except KeyError:
        raise CaecError(f"unknown codec {name!r} (known: {', '.join(CODEC_NAMES)})") from None


def make_codec(name: str, model: str, device: str, refine: int = 0) -> ImageCodec:
    """A codec behind the evaluation's interface; ``model`` and ``refine`` are the default
    codec's (the other learned codecs run their default model, or the one ``CODEC@MODEL`` names)."""
    codec_id = learned_id(name)
    if codec_id is None:
        suffix_of(name)  # one error line for an unknown name
        return CLASSIC_CODECS[name]()
    _, own_model = split_model(name)
    package = registry.package(codec_id)
    if codec_id == registry.DEFAULT_CODEC:
        return package.evaluation_codec(own_model or model, device, refine)  # type: ignore[no-any-return]
    from cae_codec.api import get_codec
    from cae_codec.evaluate.learned import ContractCodec

    return ContractCodec(get_codec(own_model, device, codec_id), own_model)


@dataclass(frozen=True)
class Task:
    image_name: str
    image: np.ndarray  # (H, W, 3) uint8
    codec: str
    targets: tuple[float, ...]
    model: str
    device: str
    keep: bool = False  # send back the file and the reconstruction (compare --out)
    refine: int = 0  # caec's encode --refine


@dataclass
class Point:
    """One codec on one image at one target rate; ``note`` says why a value is missing."""

    image: str
    codec: str
    target_bpp: float
    bpp: float = math.nan
    psnr: float = math.nan
    ms_ssim: float = math.nan
    encoding_time: float = math.nan
    decoding_time: float = math.nan
    knob: float = math.nan
    nbytes: int = 0
    note: str = ""
    data: bytes | None = field(default=None, repr=False)
    recon: np.ndarray | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return not self.note

    def summary(self) -> dict[str, Any]:
        """JSON-ready fields (no pixels, no bytes; NaN as None)."""
        out: dict[str, Any] = {}
        for key in ("image", "codec", "target_bpp", "bpp", "psnr", "ms_ssim", "encoding_time", "decoding_time"):
            v = getattr(self, key)
            out[key] = None if isinstance(v, float) and not math.isfinite(v) else v
        out["knob"] = None if not math.isfinite(self.knob) else self.knob
        out["bytes"] = self.nbytes
        if self.note:
            out["note"] = self.note
        return out


_codecs: dict[tuple[str, str, str, int], ImageCodec] = {}


def _codec_for(task: Task) -> ImageCodec:
    key = (task.codec, task.model, task.device, task.refine)
    if key not in _codecs:
        codec = make_codec(*key)
        # the first call of a library (or of torch, or of a model a family loads on first use)
        # pays one-off set-up costs: keep them out of the timings. Both ends of the knob: every
        # search tries both, and they reach a family's first and last members
        warm = np.full((64, 64, 3), 128, dtype=np.uint8)
        for end in (0.0, codec.knob.hi - codec.knob.lo if codec.knob.integer else 1.0):
            codec.decode(codec.encode(warm, codec.knob.value(end)))
        _codecs[key] = codec
    return _codecs[key]


def evaluate(task: Task) -> list[Point]:
    """Every target rate of ``task``: rate search, decode, metrics."""
    img = task.image
    h, w = img.shape[:2]
    codec = _codec_for(task)
    points = [Point(task.image_name, task.codec, t) for t in task.targets]
    try:
        t0 = time.perf_counter()
        encoder = MemoEncoder(codec.prepare(img))
        setup_s = time.perf_counter() - t0
    except CaecError as e:
        for p in points:
            p.note = str(e)
        return points
    prefixes: list[tuple[np.ndarray, float]] | None = None
    for p in points:
        try:
            budget = math.floor(p.target_bpp * h * w / 8)
            found = search_rate(encoder, codec.knob, budget)
            if found.best is None:
                smallest = bits_per_pixel(found.smallest_bytes, h, w)
                p.note = f"cannot reach {p.target_bpp:g} bpp (smallest file {smallest:.4f} bpp)"
                continue
            t0 = time.perf_counter()
            data = codec.finish(img, found.best.data, budget)
            finish_s = time.perf_counter() - t0
            # a progressive codec: every rate is a prefix of the file of all passes, decoded once
            # pass after pass (the k-th image is what the k-pass file decodes to; its time the
            # decoding up to pass k), so one encode and one decode serve the whole curve
            decode_prefixes = getattr(codec, "prefix_decodes", None)
            if prefixes is None and decode_prefixes is not None and codec.knob.integer:
                prefixes = decode_prefixes(encoder(codec.knob.hi).data) or []
            k = int(found.best.knob - codec.knob.lo)
            if prefixes and data == found.best.data and k < len(prefixes):
                rec, p.decoding_time = prefixes[k]
            else:
                t0 = time.perf_counter()
                rec = codec.decode(data)
                p.decoding_time = time.perf_counter() - t0
        except CaecError as e:
            p.note = str(e)
            continue
        if rec.shape != img.shape:
            p.note = f"decoder returned {rec.shape}, expected {img.shape}"
            continue
        p.knob = found.best.knob
        p.nbytes = len(data)
        p.bpp = bits_per_pixel(p.nbytes, h, w)
        # the per-image set-up, the encode(s) charged (docs/evaluation.md, "Times") with all the
        # shared work they needed, whichever target ran it first, and any last pass
        charged = found.tried if codec.knob.charge_whole_search else (found.best,)
        p.encoding_time = setup_s + encode_seconds(charged, encoder.shared.seconds) + finish_s
        p.psnr = psnr_rgb(img, rec)
        p.ms_ssim = ms_ssim_rgb(img, rec)
        if task.keep:
            p.data, p.recon = data, rec
    return points


def _init_worker() -> None:
    torch.set_num_threads(1)
    # Ctrl-C is the parent's to handle: it stops the workers itself, without a traceback from each
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextmanager
def _single_thread_torch() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_tasks(tasks: list[Task], jobs: int, on_done: Callable[[Task], None] | None = None) -> list[list[Point]]:
    """Results in task order; ``jobs`` > 1 runs a pool of that many processes."""
    results: list[list[Point]] = [[] for _ in tasks]
    if jobs <= 1 or len(tasks) <= 1:
        with _single_thread_torch():
            for i, task in enumerate(tasks):
                results[i] = evaluate(task)
                if on_done:
                    on_done(task)
        return results
    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=ctx, initializer=_init_worker)
    try:
        pending: dict[Future[list[Point]], int] = {pool.submit(evaluate, t): i for i, t in enumerate(tasks)}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                i = pending.pop(fut)
                results[i] = fut.result()
                if on_done:
                    on_done(tasks[i])
    except BaseException:
        # an error or Ctrl-C: stop our workers now rather than after their current task
        workers = getattr(pool, "_processes", None) or {}
        for proc in list(workers.values()):
            proc.terminate()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return results
