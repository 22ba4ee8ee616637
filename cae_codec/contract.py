"""The codec contract: what every caec codec declares and does, and the one encode path
(quality, or a rate through the shared rate control) that every codec goes through.

A codec is declared by a :class:`CodecInfo` in cae_codec.registry (torch-free: listing
codecs or checking a file never imports a network library) and implemented by a package
that the registry imports only to encode or decode. Loaded, a codec is a :class:`Codec`:
its encoder runs once per image (``analyse``), then ``pack`` writes the file at any value of
the codec's rate knob (a quantization step, a number of passes, a JPEG quality...), which is
what the rate control searches over for ``--bpp`` and ``--size`` and what the evaluation
sweeps. Decoding takes the parsed container.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from cae_codec.errors import CaecError
from cae_codec.ratecontrol import Knob, MemoEncoder, search_rate

if TYPE_CHECKING:
    from cae_codec.container import Box

Progress = Callable[[int], None]


@dataclass(frozen=True)
class QualityScale:
    """A codec's --quality: integers lo..hi, higher is better, ``default`` when none is asked."""

    lo: int
    hi: int
    default: int

    def check(self, quality: int, codec: str) -> int:
        if not self.lo <= quality <= self.hi:
            raise CaecError(f"quality for {codec} must be {self.lo}..{self.hi}, got {quality}")
        return quality


@dataclass(frozen=True)
class Capabilities:
    """What a front end may ask of a codec without knowing it."""

    # one file decodes at any prefix of its chunks, coarse to fine
    progressive: bool = False
    # the only (width, height) the codec takes, e.g. (28, 28) digits; None: any size
    fixed_size: tuple[int, int] | None = None
    # a file may hold several images of one size (decode gives a stack)
    several_images: bool = False
    # the channel layouts it takes (1 grey, 2 grey + alpha, 3 RGB, 4 RGBA)
    channels: tuple[int, ...] = (1, 2, 3, 4)
    # its encoder or decoder is a trained network (weights from the model zoo)
    learned: bool = True


@dataclass(frozen=True)
class CodecInfo:
    """A codec as the registry declares it."""

    id: str  # on the command line and in files
    label: str  # in tables, plots and the web page
    paper: str
    summary: str
    module: str  # the package implementing it: imported only to encode or decode
    quality: QualityScale
    capabilities: Capabilities = field(default_factory=Capabilities)
    default_model: str | None = None  # a model or family name the zoo resolves


class Codec(Protocol):
    """A codec loaded with its model, ready to encode and decode."""

    info: ClassVar[CodecInfo]
    knob: ClassVar[Knob]  # the rate control's search axis

    @property
    def name(self) -> str:
        """The model (or model family) it runs."""
        ...

    def analyse(self, image: np.ndarray, icc_profile: bytes | None = None) -> Any:
        """The per-image work every rate shares (the encoder's forward pass)."""
        ...

    def pack(self, analysis: Any, knob: float, quality: int = 0) -> bytes:
        """The whole file at knob value ``knob`` (``quality``: the --quality it came from, 0 if none)."""
        ...

    def knob_for_quality(self, quality: int) -> float: ...

    def finish(self, image: np.ndarray, analysis: Any, data: bytes, budget: int | None) -> bytes:
        """A last pass over the chosen file within ``budget`` bytes (None: no budget); most
        codecs return ``data``."""
        ...

    def decode(self, box: Box, progress: Progress | None = None) -> np.ndarray:
        """(H, W, C) uint8, or (N, H, W, C) for a file of several images."""
        ...


# A codec whose capabilities allow several images a file may offer, besides the above,
# ``encode_batch(images: (N, H, W[, C]) uint8, quality: int | None) -> bytes``: `caec encode`
# gives it the stack of an IDX file (cae_codec.idx) and writes one file.


def check_photo(image: np.ndarray, icc_profile: bytes | None) -> bytes | None:
    """The input checks of a codec of photos of any size (``analyse``): a uint8 (H, W, 1..4)
    image with pixels, and an ICC profile that suits its channels; the profile as bytes (None
    without one)."""
    from cae_codec import container

    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (1, 2, 3, 4):
        raise CaecError(f"expected a uint8 (H, W, 1..4) image, got {image.dtype} {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise CaecError("image has no pixels")
    icc = bytes(icc_profile) if icc_profile else None
    if icc is not None and (problem := container.icc_profile_problem(icc, image.shape[2])):
        raise CaecError(problem)
    return icc


def budget_bytes(height: int, width: int, bpp: float | None, size: int | None) -> int | None:
    """The byte budget of --bpp (over the image's pixels, header included) or --size."""
    if size is not None:
        return size
    return None if bpp is None else math.floor(bpp * height * width / 8)


def encode(
    codec: Codec,
    image: np.ndarray,
    quality: int | None = None,
    bpp: float | None = None,
    size: int | None = None,
    icc_profile: bytes | None = None,
) -> bytes:
    """``image`` as a file of ``codec``: at ``quality`` (the codec's default when nothing is
    asked), or the largest file within ``bpp`` bits per pixel or ``size`` bytes."""
    if sum(v is not None for v in (quality, bpp, size)) > 1:
        raise CaecError("give one of quality, bpp and size")
    analysis = codec.analyse(image, icc_profile=icc_profile)
    height, width = image.shape[:2]
    budget = budget_bytes(height, width, bpp, size)
    if budget is None:
        q = codec.info.quality.default if quality is None else codec.info.quality.check(quality, codec.info.id)
        data = codec.pack(analysis, codec.knob_for_quality(q), q)
    else:
        data = within_budget(lambda k: codec.pack(analysis, k), codec.knob, budget, height, width, bpp)
    return codec.finish(image, analysis, data, budget)


def within_budget(
    pack: Callable[[float], bytes], knob: Knob, budget: int, height: int, width: int, asked_bpp: float | None = None
) -> bytes:
    """The largest file ``pack`` makes within ``budget`` bytes: the rate control of every
    codec, the same search the evaluation runs (cae_codec.ratecontrol)."""
    found = search_rate(MemoEncoder(pack), knob, budget)
    if found.best is None:
        asked = f"{asked_bpp:g} bpp" if asked_bpp is not None else f"{budget} bytes"
        raise CaecError(
            f"cannot reach {asked}: the smallest file for this image is {found.smallest_bytes} bytes "
            f"({8 * found.smallest_bytes / (height * width):.4f} bpp)"
        )
    return found.best.data
