"""Classic codecs from imagecodecs, in-process, one small class each, behind one interface.

Every codec is run single-threaded (``numthreads=1`` where the library has threads) so
that timings compare like with like, and with its settings written down in ``settings``.
The knob each one is bisected on is the library's own rate control (see docs/evaluation.md).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import imagecodecs
import numpy as np

from cae_codec.errors import CaecError
from cae_codec.evaluate.metrics import as_rgb8
from cae_codec.ratecontrol import Knob, MemoEncoder, search_rate


class ImageCodec(ABC):
    """A codec as the evaluation sees it: RGB uint8 in, bytes, RGB uint8 out, one rate knob."""

    name: ClassVar[str]  # the name on the command line
    label: ClassVar[str]  # the name in tables and plots
    suffix: ClassVar[str]  # of the files ``compare --out`` writes
    knob: ClassVar[Knob]

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """None when the codec can run here, else one line saying why not."""
        return None

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Library, version and fixed settings, recorded with the results."""

    def prepare(self, img: np.ndarray) -> Callable[[float], bytes]:
        """``knob -> file bytes`` for this image; codecs with per-image analysis do it once here."""
        return lambda knob: self.encode(img, knob)

    @abstractmethod
    def encode(self, img: np.ndarray, knob: float) -> bytes: ...

    def finish(self, img: np.ndarray, data: bytes, budget_bytes: int) -> bytes:
        """A last pass on the file the rate search chose for ``img``, kept within the budget;
        most codecs have none (caec's ``--refine`` is one)."""
        return data

    @abstractmethod
    def decode(self, data: bytes) -> np.ndarray: ...


class ClassicCodec(ImageCodec):
    """An imagecodecs codec: ``module`` is its imagecodecs name (``JPEG8``, ``AVIF``...)."""

    module: ClassVar[str]
    library: ClassVar[str]
    settings: ClassVar[dict[str, Any]]

    @classmethod
    def unavailable_reason(cls) -> str | None:
        info = getattr(imagecodecs, cls.module, None)
        if info is None or not getattr(info, "available", False):
            return f"{cls.name}: {cls.library} is not available in this imagecodecs build ({imagecodecs.__version__})"
        try:  # a build can have the library without what our settings ask for (say, AVIF without aom)
            cls().encode(np.full((16, 16, 3), 128, dtype=np.uint8), cls.knob.value(0))
        except CaecError as e:
            return f"{cls.name}: {cls.library} cannot encode with our settings here ({e})"
        return None

    def describe(self) -> dict[str, Any]:
        version_fn = getattr(imagecodecs, f"{self.module.lower()}_version", None)
        return {
            "codec": self.label,
            "library": self.library,
            "version": version_fn() if version_fn else "unknown",
            "imagecodecs": imagecodecs.__version__,
            "knob": self.knob.name,
            "settings": dict(self.settings),
        }

    def encode(self, img: np.ndarray, knob: float) -> bytes:
        try:
            return bytes(self._encode(np.ascontiguousarray(img), knob))
        except (RuntimeError, ValueError) as e:  # imagecodecs' *Error classes derive from RuntimeError
            raise CaecError(f"{self.name} encoder failed at {self.knob.name} {knob:g}: {e}") from None

    def decode(self, data: bytes) -> np.ndarray:
        try:
            out = self._decode(data)
        except (RuntimeError, ValueError) as e:
            raise CaecError(f"{self.name} decoder failed: {e}") from None
        return as_rgb8(np.asarray(out))

    @abstractmethod
    def _encode(self, img: np.ndarray, knob: float) -> bytes | bytearray: ...

    @abstractmethod
    def _decode(self, data: bytes) -> np.ndarray: ...


class Jpeg(ClassicCodec):
    name, label, suffix = "jpeg", "JPEG", ".jpg"
    module, library = "JPEG8", "libjpeg-turbo"
    knob = Knob("quality", 1, 100, integer=True)
    # what most JPEG files are: 4:2:0 chroma, plus optimized Huffman tables, which only saves bytes
    settings: ClassVar[dict[str, Any]] = {"subsampling": "4:2:0", "optimize": True}

    def _encode(self, img: np.ndarray, knob: float) -> bytes | bytearray:
        return imagecodecs.jpeg8_encode(img, level=int(knob), subsampling="420", optimize=True)

    def _decode(self, data: bytes) -> np.ndarray:
        return imagecodecs.jpeg8_decode(data)


def largest_within(codec: ImageCodec, encoder: MemoEncoder, budget_bytes: int) -> tuple[bytes, np.ndarray] | None:
    """``codec``'s largest file not above ``budget_bytes`` (``encoder`` holds the image) and
    its decoding; None when even the smallest file is larger. Compares codecs at equal size."""
    found = search_rate(encoder, codec.knob, budget_bytes)
    if found.best is None:
        return None
    return found.best.data, codec.decode(found.best.data)


class Jpeg2000(ClassicCodec):
    name, label, suffix = "jpeg2000", "JPEG2000", ".j2k"
    module, library = "JPEG2K", "OpenJPEG"
    # imagecodecs' jpeg2k level is OpenJPEG's target PSNR of the single quality layer (0 = lossless)
    knob = Knob("target PSNR (dB)", 10.0, 80.0, steps=12)
    settings: ClassVar[dict[str, Any]] = {
        "codecformat": "J2K (raw codestream, no JP2 boxes)",
        "transform": "irreversible 9/7 + ICT",
        "resolutions": "6 (fewer on images under 32 px)",
        "layers": 1,
    }

    def _encode(self, img: np.ndarray, knob: float) -> bytes | bytearray:
        # OpenJPEG refuses a resolution count the smaller side cannot be halved into
        resolutions = max(1, min(6, int(math.log2(max(1, min(img.shape[:2])))) + 1))
        target_psnr: Any = float(knob)  # imagecodecs' stub says int; OpenJPEG takes fractional dB
        return imagecodecs.jpeg2k_encode(
            img, level=target_psnr, codecformat="J2K", reversible=False, resolutions=resolutions, numthreads=1
        )

    def _decode(self, data: bytes) -> np.ndarray:
        return imagecodecs.jpeg2k_decode(data, numthreads=1)


class WebP(ClassicCodec):
    name, label, suffix = "webp", "WebP", ".webp"
    module, library = "WEBP", "libwebp"
    # libwebp's quality is a float: fractional values fill the size gaps between integer qualities
    knob = Knob("quality", 0.0, 100.0, steps=12)
    settings: ClassVar[dict[str, Any]] = {"lossless": False, "method": 4}

    def _encode(self, img: np.ndarray, knob: float) -> bytes | bytearray:
        # lossless=False must be explicit: without it imagecodecs writes lossless WebP whatever the level
        quality: Any = float(knob)  # imagecodecs' stub says int; libwebp takes a float
        return imagecodecs.webp_encode(img, level=quality, lossless=False, method=4, numthreads=1)

    def _decode(self, data: bytes) -> np.ndarray:
        return imagecodecs.webp_decode(data)


class Avif(ClassicCodec):
    name, label, suffix = "avif", "AVIF", ".avif"
    module, library = "AVIF", "libavif"
    knob = Knob("quality", 0, 100, integer=True)
    # speed 6 is avifenc's default; the library default here (slowest) takes ~40x longer per encode
    settings: ClassVar[dict[str, Any]] = {"encoder": "aom", "speed": 6, "pixelformat": "4:4:4", "bitspersample": 8}

    def _encode(self, img: np.ndarray, knob: float) -> bytes | bytearray:
        return imagecodecs.avif_encode(img, level=int(knob), speed=6, pixelformat="444", codec="aom", numthreads=1)

    def _decode(self, data: bytes) -> np.ndarray:
        return imagecodecs.avif_decode(data, numthreads=1)


class JpegXl(ClassicCodec):
    name, label, suffix = "jpegxl", "JPEG XL", ".jxl"
    module, library = "JPEGXL", "libjxl"
    # Butteraugli distance: 0 would be lossless, 25 is libjxl's coarsest; rate falls as it grows
    knob = Knob("distance", 0.05, 25.0, rate_increases=False, log=True, steps=12)
    settings: ClassVar[dict[str, Any]] = {"effort": 7, "container": False}

    def _encode(self, img: np.ndarray, knob: float) -> bytes | bytearray:
        return imagecodecs.jpegxl_encode(img, distance=float(knob), effort=7, usecontainer=False, numthreads=1)

    def _decode(self, data: bytes) -> np.ndarray:
        return imagecodecs.jpegxl_decode(data, numthreads=1)


CLASSIC_CODECS: dict[str, type[ClassicCodec]] = {c.name: c for c in (Jpeg, Jpeg2000, WebP, Avif, JpegXl)}
