"""IDX files, the format MNIST is distributed in (gzip or plain): a stack of images in one file.

Torch-free and codec-neutral: `caec encode` reads one as a stack of images for a codec that
takes several images per file.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from cae_codec.errors import CaecError

# IDX type code 0x08: unsigned bytes, the only type MNIST uses
IDX_UBYTE = 0x08
GZIP_MAGIC = b"\x1f\x8b"
# a gzip member inflates to at most this much (MNIST's training images are 47 MB)
MAX_BYTES = 1 << 28


def parse_idx(raw: bytes, what: str = "IDX data") -> np.ndarray:
    """An IDX file's bytes (gzip or not) as a uint8 array of its declared shape."""
    if raw[:2] == GZIP_MAGIC:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            raw = inflater.decompress(raw, MAX_BYTES + 1)
        except zlib.error as e:
            raise CaecError(f"{what}: not a readable gzip file ({e})") from None
        if len(raw) > MAX_BYTES:
            raise CaecError(f"{what}: inflates to more than {MAX_BYTES} bytes")
    if len(raw) < 4 or raw[0] or raw[1] or raw[2] != IDX_UBYTE or not 1 <= raw[3] <= 3:
        raise CaecError(f"{what}: not an IDX file of unsigned bytes with 1 to 3 dimensions")
    dims = raw[3]
    if len(raw) < 4 + 4 * dims:
        raise CaecError(f"{what}: IDX header cut short")
    shape = struct.unpack(f">{dims}I", raw[4 : 4 + 4 * dims])
    count = int(np.prod(shape, dtype=np.int64))
    if len(raw) != 4 + 4 * dims + count:
        raise CaecError(f"{what}: IDX data of {len(raw) - 4 - 4 * dims} bytes where the header declares {count}")
    return np.frombuffer(raw, np.uint8, count, 4 + 4 * dims).reshape(shape)


def read_idx(path: Path) -> np.ndarray:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise CaecError(f"cannot read {path}: {e.strerror}") from None
    return parse_idx(raw, str(path))


def idx_bytes(images: np.ndarray) -> bytes:
    """``images`` (N, H, W) uint8 as an uncompressed IDX file."""
    return bytes([0, 0, IDX_UBYTE, images.ndim]) + struct.pack(f">{images.ndim}I", *images.shape) + images.tobytes()


def is_idx_name(name: str) -> bool:
    return name.endswith(("-idx3-ubyte", "-idx3-ubyte.gz", ".idx", ".idx.gz"))
