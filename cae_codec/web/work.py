"""What the web page asks of caec, as plain functions the worker pool runs: the codecs on
offer, an image coded by several codecs, a .cae file decoded, a digit coded by the fixed-size
codecs beside PCA.

Nothing here is new codec or measuring code: the registered codecs go through the contract
(cae_codec.contract.encode: a quality, or the shared rate control for a byte budget), the
classic ones through the evaluation's adapters (cae_codec.evaluate.classic), target rates
through the evaluation's own runner (cae_codec.evaluate.runner.evaluate: the same search,
metrics and timing rules as `caec compare`), images are read by cae_codec.imageio with the
CLI's pixel limit. What a codec is offered for comes from its declared Capabilities, never
from its name.

Each job reports events (``report(dict)``) as it goes and calls ``check()`` between steps,
which raises :class:`Stopped` once the request timed out or its client went away.
"""

from __future__ import annotations

import base64
import dataclasses
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cae_codec import container, registry
from cae_codec.contract import Capabilities, CodecInfo
from cae_codec.errors import CaecError, FormatError

Report = Callable[[dict[str, Any]], None]
Check = Callable[[], None]

# A sensible starting setting of each classic codec's knob on the page (the user changes it):
# the command-line tools' own defaults where they have one (cjpeg -quality 75, cwebp -q 75,
# avifenc -q 60, cjxl -d 1.0); opj_compress is lossless by default, so OpenJPEG starts at 40 dB.
CLASSIC_DEFAULTS = {"jpeg": 75.0, "webp": 75.0, "avif": 60.0, "jpeg2000": 40.0, "jpegxl": 1.0}
MAX_TARGETS = 6  # target rates a request may ask for (each is a rate search per codec)
MAX_PASSES = 64  # progressive prefixes decoded and shown for one file
MAX_GRID = 64  # images of a several-images file shown in the decoded picture
# the MNIST digit box of LeCun's preprocessing: the digit fits a 20x20 box inside 28x28
DIGIT_BOX = 20 / 28


class Stopped(Exception):
    """The job's request timed out or its client went away: stop between two steps."""


@dataclass(frozen=True)
class Limits:
    max_pixels: int | None  # the CLI's pixel limit unless the server was told otherwise
    device: str = "cpu"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def png_of(pixels: np.ndarray, icc_profile: bytes | None = None) -> bytes:
    from cae_codec.imageio import image_to_bytes

    return image_to_bytes(pixels, "PNG", icc_profile=icc_profile, warn=lambda m: None)


def finite(value: float) -> float | None:
    """JSON has no NaN or infinity: a missing or infinite value is null (the page says why)."""
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None


# ---------------------------------------------------------------- the codecs on offer
def photo_capable(caps: Capabilities) -> bool:
    """A codec the photo page offers: any size, and RGB among its layouts (the page codes the
    RGB image, as the evaluation does)."""
    return caps.fixed_size is None and 3 in caps.channels


def fixed_size_capable(caps: Capabilities) -> bool:
    """A codec the digit page offers: one fixed size, grey."""
    return caps.fixed_size is not None and 1 in caps.channels


def classic_available() -> dict[str, str | None]:
    """Each classic codec and why it cannot run here (None: it can)."""
    from cae_codec.evaluate.classic import CLASSIC_CODECS

    return {name: cls.unavailable_reason() for name, cls in CLASSIC_CODECS.items()}


def model_missing(info: CodecInfo) -> str | None:
    """Why a registered codec cannot load its default model here (None: it can), found by name
    as the library finds it, without loading anything: a codec whose weights have not shipped
    yet is shown disabled with the reason instead of failing after an upload."""
    from cae_codec import zoo
    from cae_codec.api import DEFAULT_MODEL

    if not info.capabilities.learned:
        return None
    model = DEFAULT_MODEL if info.id == registry.DEFAULT_CODEC else info.default_model
    if model is None:
        return f"{info.label}: no default model is declared for it"
    try:
        zoo.resolve(model)
    except CaecError as e:
        return f"{info.label}: {e}"
    return None


def offers(classic: dict[str, str | None]) -> list[dict[str, Any]]:
    """What the page lists: every registered codec (its capabilities, its quality scale) and
    every classic codec (its knob), with the pages that offer it."""
    from cae_codec.evaluate.classic import CLASSIC_CODECS

    out: list[dict[str, Any]] = []
    for info in registry.CODECS.values():
        caps = info.capabilities
        q = info.quality
        out.append(
            {
                "id": info.id,
                "label": info.label,
                "kind": "registered",
                "default": info.id == registry.DEFAULT_CODEC,
                "paper": info.paper,
                "summary": info.summary,
                "capabilities": dataclasses.asdict(caps),
                "setting": {"name": "quality", "lo": q.lo, "hi": q.hi, "step": 1, "default": q.default},
                "photo": photo_capable(caps),
                "fixed_size": fixed_size_capable(caps),
                "unavailable": model_missing(info),
                "suffix": ".cae",
            }
        )
    for name, cls in CLASSIC_CODECS.items():
        knob = cls.knob
        out.append(
            {
                "id": name,
                "label": cls.label,
                "kind": "classic",
                "default": False,
                "paper": cls.library,
                "summary": f"{cls.library} through imagecodecs, rate knob: {knob.name}",
                "capabilities": dataclasses.asdict(Capabilities(learned=False)),
                "setting": {
                    "name": knob.name,
                    "lo": knob.lo,
                    "hi": knob.hi,
                    "step": 1 if knob.integer else 0.01,
                    "default": CLASSIC_DEFAULTS.get(name, knob.value(0.5 if not knob.integer else 0)),
                    "rate_increases": knob.rate_increases,
                },
                "photo": True,
                "fixed_size": False,
                "unavailable": classic.get(name),
                "suffix": cls.suffix,
            }
        )
    return out


# ---------------------------------------------------------------- loaded codecs, once each
_LOCK = threading.Lock()
_LOADED: dict[str, Any] = {}
_EVALUATED: set[str] = set()
_FIRST: dict[str, threading.Lock] = {}  # one lock per codec for its first evaluation


def loaded(codec_id: str, device: str = "cpu") -> Any:
    """The registered codec with its default model (for the default codec, $CAEC_MODEL's),
    loaded once and warmed up (the first call of a library pays one-off costs that would
    otherwise land in the first request's times)."""
    key = f"{codec_id}@{device}"
    with _LOCK:
        codec = _LOADED.get(key)
        if codec is None:
            from cae_codec import contract
            from cae_codec.api import get_codec

            codec = get_codec(None, device, codec_id)
            info: CodecInfo = registry.get(codec_id)
            size = info.capabilities.fixed_size or (64, 64)
            warm = np.full((size[1], size[0], info.capabilities.channels[0]), 128, dtype=np.uint8)
            codec.decode(container.parse(contract.encode(codec, warm)))
            _LOADED[key] = codec
        return codec


def _evaluate(task: Any) -> list[Any]:
    """The evaluation runner on one task; a codec's first task runs alone (the runner loads and
    warms each codec once, in a cache of its own that two first calls at once would both fill)."""
    from cae_codec.evaluate.runner import evaluate

    key = f"{task.codec}@{task.device}"
    if key in _EVALUATED:
        return evaluate(task)
    with _LOCK:
        first = _FIRST.setdefault(key, threading.Lock())
    with first:  # other codecs' jobs go on meanwhile
        points = evaluate(task)
        _EVALUATED.add(key)
        return points


# ---------------------------------------------------------------- compressing an image
@dataclass(frozen=True)
class CompressRequest:
    codecs: tuple[str, ...]
    mode: str  # "quality": each codec at its setting; "bpp": at each target rate; "size": at caec's file size
    targets: tuple[float, ...] = ()  # bits per pixel, for "bpp"
    settings: dict[str, float] = dataclasses.field(default_factory=dict)  # per codec, for "quality" and "size"

    def check(self, offered: Sequence[dict[str, Any]]) -> None:
        """One CaecError line for a request the page would never send."""
        by_id = {o["id"]: o for o in offered}
        if not self.codecs:
            raise CaecError("choose at least one codec")
        for cid in self.codecs:
            entry = by_id.get(cid)
            if entry is None:
                raise CaecError(f"unknown codec {cid!r} (this server offers {', '.join(by_id)})")
            if not entry["photo"]:
                raise CaecError(f"{entry['label']} does not code photos of any size (its page is another one)")
            if entry["unavailable"]:
                raise CaecError(entry["unavailable"])
        if self.mode not in ("quality", "bpp", "size"):
            raise CaecError(f"unknown rate mode {self.mode!r} (quality, bpp or size)")
        if self.mode == "bpp":
            if not 1 <= len(self.targets) <= MAX_TARGETS:
                raise CaecError(f"give 1 to {MAX_TARGETS} target rates in bits per pixel")
            for t in self.targets:
                if not (math.isfinite(t) and 0 < t < 64):
                    raise CaecError(f"a target rate must be a number of bits per pixel in (0, 64), got {t:g}")
        for cid, value in self.settings.items():
            entry = by_id.get(cid)
            if entry is None:
                raise CaecError(f"a setting for unknown codec {cid!r}")
            s = entry["setting"]
            if not (math.isfinite(value) and s["lo"] <= value <= s["hi"]):
                raise CaecError(f"{entry['label']}'s {s['name']} must be {s['lo']:g}..{s['hi']:g}, got {value:g}")
            if s["step"] == 1 and value != int(value):
                raise CaecError(f"{entry['label']}'s {s['name']} must be a whole number, got {value:g}")

    def setting(self, cid: str, offered: Sequence[dict[str, Any]]) -> float:
        value = self.settings.get(cid)
        if value is not None:
            return value
        return float(next(o for o in offered if o["id"] == cid)["setting"]["default"])


def read_upload(raw: bytes, limits: Limits) -> tuple[np.ndarray, list[str]]:
    """An uploaded image as the CLI reads one (content sniffed by Pillow, never its name;
    the pixel limit refused before decoding), and the warnings reading it gave."""
    from cae_codec.imageio import LIFT_LIMIT, open_image_meta

    if container.sniff(raw[: len(container.MAGIC)]):
        raise CaecError("this is a .cae file, not an image: drop it on the decode area to decode it")
    notes: list[str] = []
    try:
        pixels, _ = open_image_meta(raw, name="the upload", warn=notes.append, max_pixels=limits.max_pixels)
    except CaecError as e:
        # the CLI's advice names its own flag; here the limit is the server's
        raise CaecError(str(e).replace(LIFT_LIMIT, "caec serve --no-pixel-limit lifts the server's limit")) from None
    return pixels, [n.removeprefix("the upload: ") for n in notes]


def _point_json(point: Any, label: str, suffix: str, kind: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    out = point.summary()
    out.update(
        {
            "event": "result",
            "label": label,
            "kind": kind,
            "suffix": suffix,
            "file": b64(point.data) if point.data is not None else None,
            "png": b64(png_of(point.recon)) if point.recon is not None else None,
        }
    )
    out.update(extra or {})
    return out


def _at_quality(cid: str, kind: str, value: float, rgb: np.ndarray, limits: Limits) -> Any:
    """One file of ``cid`` at its page setting, as a runner Point (decoded, measured)."""
    from cae_codec import contract
    from cae_codec.evaluate.classic import CLASSIC_CODECS
    from cae_codec.evaluate.metrics import as_rgb8, bits_per_pixel, ms_ssim_rgb, psnr_rgb
    from cae_codec.evaluate.runner import Point

    h, w = rgb.shape[:2]
    point = Point("upload", cid, math.nan, knob=value)
    try:
        if kind == "registered":
            codec = loaded(cid, limits.device)
            t0 = time.perf_counter()
            data = contract.encode(codec, rgb, quality=int(value))
            point.encoding_time = time.perf_counter() - t0
            t0 = time.perf_counter()
            rec = as_rgb8(codec.decode(container.parse(data)))
            point.decoding_time = time.perf_counter() - t0
        else:
            classic = CLASSIC_CODECS[cid]()
            t0 = time.perf_counter()
            data = classic.encode(rgb, value)
            point.encoding_time = time.perf_counter() - t0
            t0 = time.perf_counter()
            rec = classic.decode(data)
            point.decoding_time = time.perf_counter() - t0
    except CaecError as e:
        point.note = str(e)
        return point
    point.nbytes = len(data)
    point.bpp = bits_per_pixel(len(data), h, w)
    point.psnr = psnr_rgb(rgb, rec)
    point.ms_ssim = ms_ssim_rgb(rgb, rec)
    point.data, point.recon = data, rec
    return point


def passes(data: bytes, reference: np.ndarray | None, report: Report, check: Check, codec_label: str) -> None:
    """Each prefix of a progressive file decoded (container v2's truncate: the same file cut to
    its first k chunks), reported as it arrives; prefixes that do not decode yet (a parameters
    chunk alone) are left out."""
    from cae_codec.api import decode
    from cae_codec.container import v2
    from cae_codec.evaluate.metrics import as_rgb8, bits_per_pixel, ms_ssim_rgb, psnr_rgb

    box = container.parse(data)
    if not box.progressive:
        return
    n = len(box.chunks)
    for keep in range(max(1, n - MAX_PASSES + 1), n + 1):
        check()
        part = data if keep == n else v2.truncate(data, keep)
        try:
            pixels = decode(part, device="cpu")
        except CaecError:
            continue
        if pixels.ndim == 4:
            pixels = pixels[0]
        event: dict[str, Any] = {
            "event": "pass",
            "codec": box.codec,
            "label": codec_label,
            "chunks": keep,
            "of": n,
            "bytes": len(part),
            "bpp": bits_per_pixel(len(part), box.height, box.width),
            "file": b64(part),
            "png": b64(png_of(pixels)),
        }
        if reference is not None and reference.shape[:2] == pixels.shape[:2]:
            rec = as_rgb8(pixels)
            event["psnr"] = finite(psnr_rgb(reference, rec))
            event["ms_ssim"] = finite(ms_ssim_rgb(reference, rec))
        report(event)


def compress(
    raw: bytes, req: CompressRequest, offered: Sequence[dict[str, Any]], limits: Limits, report: Report, check: Check
) -> None:
    """``raw`` (an image file) coded by every codec of ``req``; events: image, progress,
    result (one per codec and rate), pass (progressive codecs), plot (several rates), done."""
    from cae_codec.api import DEFAULT_MODEL
    from cae_codec.evaluate.metrics import as_rgb8
    from cae_codec.evaluate.runner import Task, suffix_of

    req.check(offered)
    by_id = {o["id"]: o for o in offered}
    check()
    pixels, notes = read_upload(raw, limits)
    rgb = as_rgb8(pixels)
    h, w = rgb.shape[:2]
    report(
        {
            "event": "image",
            "width": w,
            "height": h,
            "channels": int(pixels.shape[2]),
            "warnings": notes,
            "png": b64(png_of(rgb)),
        }
    )
    codecs = list(req.codecs)
    reference_id = registry.DEFAULT_CODEC
    targets: tuple[float, ...] = req.targets
    total = len(codecs) + (1 if req.mode == "size" and reference_id not in codecs else 0)
    done = 0

    def step(text: str) -> None:
        check()
        report({"event": "progress", "done": done, "total": total, "step": text})

    if req.mode == "size":
        # caec's file at its quality first: its size is every other codec's budget
        step(f"{by_id[reference_id]['label']}: encoding at quality {req.setting(reference_id, offered):g}")
        ref = _at_quality(reference_id, "registered", req.setting(reference_id, offered), rgb, limits)
        if not ref.ok:
            raise CaecError(f"{by_id[reference_id]['label']}: {ref.note}")
        ref_extra = {"reference": True}
        report(_point_json(ref, by_id[reference_id]["label"], ".cae", "registered", ref_extra))
        done += 1
        # the budget is exactly the reference's bytes: the runner floors target * pixels / 8,
        # so the target is put half a bit above it, clear of rounding either way
        targets = ((8 * ref.nbytes + 0.5) / (h * w),)
        if reference_id in codecs:
            codecs.remove(reference_id)
            total -= 1  # its file is the reference already shown
    curves: dict[str, list[Any]] = {}
    for cid in codecs:
        entry = by_id[cid]
        step(f"{entry['label']}: encoding")
        if req.mode == "quality":
            found = [_at_quality(cid, entry["kind"], req.setting(cid, offered), rgb, limits)]
        else:
            task = Task("upload", rgb, cid, tuple(targets), DEFAULT_MODEL, limits.device, keep=True)
            found = _evaluate(task)
        for point in found:
            extra = {"target_bytes": math.floor(point.target_bpp * h * w / 8)} if req.mode == "size" else {}
            report(_point_json(point, entry["label"], suffix_of(cid), entry["kind"], extra))
            if point.ok:
                curves.setdefault(entry["label"], []).append(point)
            if point.ok and entry["kind"] == "registered" and point.data is not None:
                caps: Capabilities = registry.get(cid).capabilities
                if caps.progressive:
                    passes(point.data, rgb, report, check, entry["label"])
        done += 1
    if req.mode == "bpp" and len(targets) > 1 and curves:
        step("drawing the RD plot")
        report({"event": "plot", "png": b64(rd_plot(curves, w, h))})
    report({"event": "progress", "done": total, "total": total, "step": "done"})


def rd_plot(curves: dict[str, list[Any]], width: int, height: int) -> bytes:
    """The evaluation's RD plot (PSNR and MS-SSIM against bpp) of this one image."""
    from cae_codec.evaluate.curves import RDCurve
    from cae_codec.evaluate.plot import rd_plot_png

    measured = [
        RDCurve(label, "", [p.bpp for p in pts], [p.psnr for p in pts], [p.ms_ssim for p in pts])
        for label, pts in curves.items()
    ]
    return rd_plot_png(measured, [], f"this image ({width}x{height})")


# ---------------------------------------------------------------- decoding a .cae file
def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, float):
        return finite(value)
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def grid(stack: np.ndarray, limit: int = MAX_GRID) -> np.ndarray:
    """The first ``limit`` images of an (N, H, W, C) stack side by side, in rows of up to 10."""
    shown = stack[:limit]
    n, h, w, c = shown.shape
    cols = min(10, n)
    rows = -(-n // cols)
    out = np.zeros((rows * h, cols * w, c), dtype=np.uint8)
    for i, im in enumerate(shown):
        r, q = divmod(i, cols)
        out[r * h : (r + 1) * h, q * w : (q + 1) * w] = im
    return out


def decode_file(raw: bytes, limits: Limits, report: Report, check: Check) -> None:
    """A dropped .cae file decoded; events: info, progress, decoded, pass (progressive)."""
    from cae_codec.api import decode_with_meta, info

    if not container.sniff(raw[: len(container.MAGIC)]):
        raise FormatError("this is not a .cae file (its first bytes are not caec's): drop an image to compress it")
    fields = info(raw)
    report({"event": "info", "info": _json_safe(fields)})
    total = int(fields.get("decode_steps") or 0)
    done = 0

    def progress(n: int) -> None:
        nonlocal done
        done += n
        check()
        report({"event": "progress", "done": done, "total": total, "step": "decoding"})

    check()
    t0 = time.perf_counter()
    pixels, meta = decode_with_meta(raw, device=limits.device, max_pixels=limits.max_pixels, progress=progress)
    seconds = time.perf_counter() - t0
    images = 1
    shown = pixels
    if pixels.ndim == 4:
        images = len(pixels)
        shown = grid(pixels)
    report(
        {
            "event": "decoded",
            "width": int(fields["width"]),
            "height": int(fields["height"]),
            "images": images,
            "decode_s": seconds,
            "bytes": len(raw),
            "bpp": fields["bpp"],
            # the PNG `caec decode` writes: the pixels and the file's ICC profile
            "png": b64(png_of(shown, meta.icc_profile if images == 1 else None)),
        }
    )
    if container.parse(raw).progressive:
        passes(raw, None, report, check, str(fields["codec"]))


# ---------------------------------------------------------------- digits (fixed-size codecs)
def normalize_digit(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A drawing (light strokes on dark) as an MNIST digit of ``size``: its bounding box scaled
    into the central 20/28 of the side, keeping its aspect, then centred by its centre of mass
    (LeCun's preprocessing of MNIST)."""
    from PIL import Image

    grey = pixels[..., 0] if pixels.shape[2] in (1, 2) else np.asarray(Image.fromarray(pixels[..., :3]).convert("L"))
    ys, xs = np.nonzero(grey > 16)
    if len(ys) == 0:
        raise CaecError("the drawing is empty: draw a digit first")
    crop = grey[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    width, height = size
    box = max(1, round(DIGIT_BOX * min(width, height)))
    scale = box / max(crop.shape)
    new = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    small = np.asarray(Image.fromarray(crop).resize(new, Image.Resampling.LANCZOS), dtype=np.float64)
    total = small.sum()
    cy, cx = ((np.indices(small.shape) * small).reshape(2, -1).sum(1) / total) if total else (0.0, 0.0)
    top = round(float(height / 2 - cy))
    left = round(float(width / 2 - cx))
    top = min(max(top, 0), height - small.shape[0])
    left = min(max(left, 0), width - small.shape[1])
    out = np.zeros((height, width), dtype=np.uint8)
    out[top : top + small.shape[0], left : left + small.shape[1]] = np.clip(np.rint(small), 0, 255).astype(np.uint8)
    return out[:, :, None]


class DigitSet:
    """The MNIST files of a configured folder: test digits to pick, training digits for PCA."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self._test: tuple[np.ndarray, np.ndarray] | None = None
        self._pca: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        return self.folder is not None and (self.folder / "t10k-images-idx3-ubyte.gz").is_file()

    def test(self) -> tuple[np.ndarray, np.ndarray]:
        from cae_codec.idx import read_idx

        if self.folder is None or not self.available:
            raise CaecError("no MNIST folder was given to the server (caec serve --mnist DIR)")
        with self._lock:
            if self._test is None:
                images = read_idx(self.folder / "t10k-images-idx3-ubyte.gz")
                labels = read_idx(self.folder / "t10k-labels-idx1-ubyte.gz")
                self._test = images, labels
            return self._test

    def pca(self, k: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Mean and the first ``k`` principal directions of the first 20,000 training digits (the
        design's protocol, cae_codec.mnistdae.data), fitted by the shared PCA stage; None without
        the training files."""
        import torch

        from cae_codec.idx import read_idx
        from cae_codec.mnistdae.data import PROTOCOLS
        from cae_codec.stages import pca

        path = None if self.folder is None else self.folder / "train-images-idx3-ubyte.gz"
        if path is None or not path.is_file():
            return None
        with self._lock:
            if k not in self._pca:
                train = read_idx(path)[: PROTOCOLS["design"].train]
                x = torch.from_numpy(train.reshape(len(train), -1).astype(np.float64) / 255.0)
                mean, basis = pca.fit(x)
                self._pca[k] = mean.double().numpy(), basis[:, :k].double().numpy()
            return self._pca[k]


def digit_codecs() -> list[CodecInfo]:
    return [info for info in registry.CODECS.values() if fixed_size_capable(info.capabilities)]


def code_digit(
    digit: np.ndarray | None,
    drawing: bytes | None,
    quality: int | None,
    digits: DigitSet,
    limits: Limits,
    report: Report,
    check: Check,
) -> None:
    """One digit (a test digit, or a drawing normalized as MNIST's) coded by every fixed-size
    codec; beside each, PCA with as many components as its code has values."""
    from cae_codec import contract
    from cae_codec.mnistdae.data import squared_error_per_image

    candidates = digit_codecs()
    if not candidates:
        raise CaecError("no registered codec takes fixed-size digits")
    infos = [info for info in candidates if model_missing(info) is None]
    if not infos:
        raise CaecError(str(model_missing(candidates[0])))
    sketch = None
    if drawing is not None:
        sketch, _ = read_upload(drawing, limits)
    for n, info in enumerate(infos):
        check()
        report({"event": "progress", "done": n, "total": len(infos), "step": f"{info.label}: encoding"})
        size = info.capabilities.fixed_size
        assert size is not None
        if sketch is not None:
            image = normalize_digit(sketch, size)
        elif digit is not None and digit.shape[:2] == (size[1], size[0]):
            image = digit.reshape(size[1], size[0], 1)
        else:
            raise CaecError(f"{info.label} codes {size[0]}x{size[1]} digits; this digit is not that size")
        codec = loaded(info.id, limits.device)
        q = info.quality.default if quality is None else info.quality.check(quality, info.id)
        code = np.asarray(codec.analyse(image), dtype=np.float64).ravel()
        t0 = time.perf_counter()
        data = contract.encode(codec, image, quality=q)
        encode_s = time.perf_counter() - t0
        rec = codec.decode(container.parse(data))
        if rec.ndim == 4:
            rec = rec[0]
        event: dict[str, Any] = {
            "event": "digit",
            "codec": info.id,
            "label": info.label,
            "quality": q,
            "quality_range": [info.quality.lo, info.quality.hi],
            "code": [round(float(v), 4) for v in code[:1024]],
            "code_values": int(code.size),
            "bytes": len(data),
            "file": b64(data),
            "file_hex": data.hex(),
            "encode_s": encode_s,
            "original": b64(png_of(image)),
            "decoded": b64(png_of(rec)),
            "error": squared_error_per_image(image[None], rec[None]),
        }
        fitted = digits.pca(int(code.size)) if code.size else None
        if fitted is not None:
            mean, basis = fitted
            x = image.reshape(1, -1).astype(np.float64) / 255.0
            back = np.clip((x - mean) @ basis @ basis.T + mean, 0, 1)
            pca_pixels = np.rint(back * 255).astype(np.uint8).reshape(image.shape)
            event["pca"] = b64(png_of(pca_pixels))
            event["pca_components"] = int(code.size)
            event["pca_error"] = squared_error_per_image(image[None], pca_pixels[None])
        else:
            event["pca_note"] = "PCA needs the MNIST training digits: start the server with --mnist DIR"
        report(event)
    report({"event": "progress", "done": len(infos), "total": len(infos), "step": "done"})
