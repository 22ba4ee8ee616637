"""JPEG2000 (OpenJPEG through imagecodecs) coding of integer planes.

The quantized PCA components are small signed integers; they are laid side by side in one
2-D mosaic and coded losslessly (reversible path; with zero wavelet levels, which measured
best on the latents, that is EBCOT's context-modelled bitplane coding of the integers
themselves), so the decoder gets back
exactly the integers the encoder wrote: rate is set by the quantization step, not by
truncating bitplanes, and nothing float-valued crosses the file boundary. One codestream
for all components avoids ~100 bytes of codestream header per component.

Before decoding, the codestream's SIZ marker is read and checked against the shape the
container declares, so a hostile codestream cannot make OpenJPEG allocate a huge image.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from cae_codec.errors import FormatError


def _imagecodecs() -> ModuleType:
    # imported on first use: `caec train` never codes a plane, and GPU training hosts
    # often lack imagecodecs
    import imagecodecs

    return imagecodecs


# number of wavelet decomposition levels for the latent mosaic (resolutions = levels + 1);
# chosen by measurement on Kodak, see docs/design.md
LATENT_LEVELS = 0
# the alpha plane is an ordinary image: the usual five levels
ALPHA_LEVELS = 5
# OpenJPEG's default code-block width and height; imagecodecs does not expose it
CODE_BLOCK = 64


def mosaic_columns(components: int, plane_h: int, plane_w: int) -> int:
    """Columns of the mosaic grid: as many components side by side as fill one code-block width.

    EBCOT adapts its contexts per code-block, so a code-block that spans the edge between two
    components mixes their statistics. With ``CODE_BLOCK // plane_w`` columns the code-block
    columns fall on component edges whenever the plane width divides the code-block width; on
    Kodak that saved 0.8% of the rate at quality 1 and 0.14% at quality 10 against a grid as
    square as possible (docs/experiments.md). Planes wider than a code-block get one column.
    Decoders read the column count from the header, whatever it is.
    """
    if components == 0:
        return 0
    return max(1, min(components, CODE_BLOCK // plane_w))


def build_mosaic(
    components: int, cols: int, h: int, w: int, plane: Callable[[int], np.ndarray], dtype: np.dtype
) -> np.ndarray:
    """The (rows*h, cols*w) mosaic, component k (``plane(k)``, made one at a time so that no
    (K, h, w) copy is needed) at grid cell (k // cols, k % cols); empty cells are 0."""
    mosaic = np.zeros(latent_mosaic_shape(components, cols, h, w), dtype=dtype)
    for k in range(components):
        r, c = divmod(k, cols)
        mosaic[r * h : (r + 1) * h, c * w : (c + 1) * w] = plane(k)
    return mosaic


def to_mosaic(planes: np.ndarray, cols: int) -> np.ndarray:
    """(K, h, w) -> the mosaic of :func:`build_mosaic`."""
    k, h, w = planes.shape
    return build_mosaic(k, cols, h, w, planes.__getitem__, planes.dtype)


def from_mosaic(mosaic: np.ndarray, components: int, h: int, w: int) -> np.ndarray:
    rows, cols = mosaic.shape[0] // h, mosaic.shape[1] // w
    grid = mosaic.reshape(rows, h, cols, w).transpose(0, 2, 1, 3).reshape(rows * cols, h, w)
    return grid[:components]


def _levels_for(shape: tuple[int, ...], levels: int) -> int:
    # OpenJPEG refuses more levels than the smaller side can be halved
    return max(0, min(levels, int(math.log2(max(1, min(shape[:2]))))))


def encode_plane(plane: np.ndarray, levels: int) -> bytes:
    """Lossless JPEG2000 codestream of a 2-D int16/uint8 array."""
    return bytes(
        _imagecodecs().jpeg2k_encode(
            np.ascontiguousarray(plane),
            level=0,  # 0 = lossless in imagecodecs
            codecformat="J2K",
            reversible=True,
            resolutions=_levels_for(plane.shape, levels) + 1,
            numthreads=1,
        )
    )


# OpenJPEG allocates bookkeeping per tile before it reads any tile data; the encoder writes
# one tile, and this bound keeps a forged SIZ from asking for millions of them
MAX_TILES = 4096
# (precision in bits, signed) of the samples each plane dtype is coded with
SAMPLE_FORMATS = {np.dtype(np.uint8): (8, False), np.dtype(np.int16): (16, True)}
_SIZ = struct.Struct(">HHIIIIIIIIH")  # Lsiz, Rsiz, Xsiz, Ysiz, XOsiz, YOsiz, XTsiz, YTsiz, XTOsiz, YTOsiz, Csiz
_SIZ_COMPONENT = struct.Struct(">BBB")  # Ssiz, XRsiz, YRsiz


@dataclass(frozen=True)
class Siz:
    """The image described by a codestream's SIZ marker segment."""

    height: int
    width: int
    components: int
    precision: int  # bits per sample of the first component
    signed: bool
    subsampled: bool  # any component not at full resolution
    tiles: int


def read_siz(data: bytes, what: str = "JPEG2000") -> Siz:
    """Parse and sanity-check the SIZ marker segment, without decoding anything."""
    # SOC (FF4F) then SIZ (FF51) must open every codestream (ISO/IEC 15444-1 A.5.1)
    if len(data) < 4 + _SIZ.size or data[:4] != b"\xff\x4f\xff\x51":
        raise FormatError(f"{what} payload is not a raw JPEG2000 codestream")
    lsiz, _, xsiz, ysiz, xo, yo, xt, yt, xto, yto, csiz = _SIZ.unpack_from(data, 4)
    if csiz == 0 or lsiz != _SIZ.size + _SIZ_COMPONENT.size * csiz or len(data) < 4 + lsiz:
        raise FormatError(f"{what} codestream has a malformed SIZ marker")
    if not (xo < xsiz and yo < ysiz):
        raise FormatError(f"{what} codestream has a bad image offset")
    if xt == 0 or yt == 0 or xto > xo or yto > yo or xto + xt <= xo or yto + yt <= yo:
        raise FormatError(f"{what} codestream has a bad tile grid")
    tiles = math.ceil((xsiz - xto) / xt) * math.ceil((ysiz - yto) / yt)
    components = [_SIZ_COMPONENT.unpack_from(data, 4 + _SIZ.size + 3 * i) for i in range(csiz)]
    ssiz = components[0][0]
    return Siz(
        height=ysiz - yo,
        width=xsiz - xo,
        components=csiz,
        precision=(ssiz & 0x7F) + 1,
        signed=bool(ssiz & 0x80),
        subsampled=any(dx != 1 or dy != 1 for _, dx, dy in components),
        tiles=tiles,
    )


def _sample_format(bits: int, signed: bool) -> str:
    return f"{'signed' if signed else 'unsigned'} {bits}-bit"


def decode_plane(data: bytes, shape: tuple[int, int], dtype: np.dtype, what: str = "JPEG2000") -> np.ndarray:
    """Decode a codestream that must hold exactly one plane of ``shape`` and ``dtype``.

    Everything that sizes OpenJPEG's buffers is checked against what the container declares
    before decoding, so a hostile codestream costs no more memory than a genuine one.
    """
    check_plane(data, shape, dtype, what)
    try:
        out = _imagecodecs().jpeg2k_decode(data, numthreads=1)
    except (RuntimeError, ValueError, NotImplementedError) as e:
        # imagecodecs.Jpeg2kError is a RuntimeError; OpenJPEG's messages are one line
        raise FormatError(f"corrupt {what} codestream: {str(e).strip() or type(e).__name__}") from None
    if out.shape != shape or out.dtype != dtype:
        raise FormatError(f"{what} codestream decoded to {out.dtype} {out.shape}, expected {np.dtype(dtype)} {shape}")
    return out


def check_plane(data: bytes, shape: tuple[int, int], dtype: np.dtype, what: str = "JPEG2000") -> None:
    """Refuse a codestream whose SIZ marker does not describe exactly one plane of ``shape`` and ``dtype``."""
    siz = read_siz(data, what)
    if (siz.height, siz.width) != shape or siz.components != 1:
        raise FormatError(
            f"{what} codestream is {siz.width}x{siz.height}x{siz.components}, the header says {shape[1]}x{shape[0]}x1"
        )
    precision, signed = SAMPLE_FORMATS[np.dtype(dtype)]
    if (siz.precision, siz.signed) != (precision, signed):
        found, wanted = _sample_format(siz.precision, siz.signed), _sample_format(precision, signed)
        raise FormatError(f"{what} codestream holds {found} samples, expected {wanted}")
    if siz.subsampled:
        raise FormatError(f"{what} codestream is subsampled")
    if siz.tiles > MAX_TILES:
        raise FormatError(f"{what} codestream has {siz.tiles} tiles (at most {MAX_TILES} allowed)")


def latent_mosaic_shape(components: int, mosaic_cols: int, plane_h: int, plane_w: int) -> tuple[int, int]:
    """Shape of the mosaic holding ``components`` planes of plane_h x plane_w in ``mosaic_cols`` columns."""
    return math.ceil(components / mosaic_cols) * plane_h, mosaic_cols * plane_w
