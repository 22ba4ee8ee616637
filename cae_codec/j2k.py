"""JPEG2000 (OpenJPEG through imagecodecs) coding of integer planes.

The quantized PCA components are small signed integers; they are laid side by side in one
2-D mosaic and coded losslessly (reversible 5/3 wavelet + EBCOT), so the decoder gets back
exactly the integers the encoder wrote: rate is set by the quantization step, not by
truncating bitplanes, and nothing float-valued crosses the file boundary. One codestream
for all components avoids ~100 bytes of codestream header per component.

Before decoding, the codestream's SIZ marker is read and checked against the shape the
container declares, so a hostile codestream cannot make OpenJPEG allocate a huge image.
"""

from __future__ import annotations

import math
import struct

import imagecodecs
import numpy as np

from cae_codec.errors import FormatError

# number of wavelet decomposition levels for the latent mosaic (resolutions = levels + 1);
# chosen by measurement on Kodak, see docs/design.md
LATENT_LEVELS = 3


def mosaic_columns(components: int, plane_h: int, plane_w: int) -> int:
    """Columns of the mosaic grid: as square as possible in pixels."""
    if components == 0:
        return 0
    best = min(range(1, components + 1), key=lambda c: abs(math.log(c * plane_w / (math.ceil(components / c) * plane_h))))
    return best


def to_mosaic(planes: np.ndarray, cols: int) -> np.ndarray:
    """(K, h, w) -> (rows*h, cols*w), component k at grid cell (k // cols, k % cols); empty cells are 0."""
    k, h, w = planes.shape
    rows = math.ceil(k / cols)
    grid = np.zeros((rows * cols, h, w), dtype=planes.dtype)
    grid[:k] = planes
    return grid.reshape(rows, cols, h, w).transpose(0, 2, 1, 3).reshape(rows * h, cols * w)


def from_mosaic(mosaic: np.ndarray, components: int, h: int, w: int) -> np.ndarray:
    rows, cols = mosaic.shape[0] // h, mosaic.shape[1] // w
    grid = mosaic.reshape(rows, h, cols, w).transpose(0, 2, 1, 3).reshape(rows * cols, h, w)
    return grid[:components]


def _levels_for(shape: tuple[int, ...], levels: int) -> int:
    # OpenJPEG refuses more levels than the smaller side can be halved
    return max(0, min(levels, int(math.log2(max(1, min(shape[:2]))))))


def encode_plane(plane: np.ndarray, levels: int = LATENT_LEVELS) -> bytes:
    """Lossless JPEG2000 codestream of a 2-D int16/uint8 array."""
    return bytes(
        imagecodecs.jpeg2k_encode(
            np.ascontiguousarray(plane),
            level=0,  # 0 = lossless in imagecodecs
            codecformat="J2K",
            reversible=True,
            resolutions=_levels_for(plane.shape, levels) + 1,
            numthreads=1,
        )
    )


def codestream_size(data: bytes) -> tuple[int, int, int]:
    """(height, width, components) from the SIZ marker segment, without decoding."""
    # SOC (FF4F), then SIZ (FF51): Lsiz u16, Rsiz u16, Xsiz, Ysiz, XOsiz, YOsiz, ... Csiz u16
    if len(data) < 42 or data[:4] != b"\xff\x4f\xff\x51":
        raise FormatError("latent payload is not a JPEG2000 codestream")
    xsiz, ysiz, xo, yo = struct.unpack_from(">IIII", data, 8)
    (csiz,) = struct.unpack_from(">H", data, 40)
    if xo > xsiz or yo > ysiz:
        raise FormatError("JPEG2000 codestream has a bad image offset")
    return ysiz - yo, xsiz - xo, csiz


def decode_plane(data: bytes, shape: tuple[int, int], dtype: np.dtype) -> np.ndarray:
    """Decode a codestream that must hold exactly one plane of ``shape``."""
    h, w, c = codestream_size(data)
    if (h, w) != shape or c != 1:
        raise FormatError(f"JPEG2000 codestream is {w}x{h}x{c}, the header says {shape[1]}x{shape[0]}x1")
    try:
        out = imagecodecs.jpeg2k_decode(data, numthreads=1)
    except imagecodecs.Jpeg2kError as e:
        raise FormatError(f"corrupt JPEG2000 codestream: {e}") from None
    if out.shape != shape:
        raise FormatError(f"JPEG2000 codestream decoded to {out.shape}, expected {shape}")
    if out.dtype != dtype:
        raise FormatError(f"JPEG2000 codestream holds {out.dtype} samples, expected {np.dtype(dtype)}")
    return out
