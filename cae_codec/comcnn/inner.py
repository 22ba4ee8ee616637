"""The standard codec inside comcnn: the compact image's codestream, made and read by the
evaluation's own wrapper of that codec (cae_codec.evaluate.classic), so that the inner JPEG is
exactly the JPEG the codec is compared with (libjpeg-turbo, 4:2:0, optimized Huffman tables).
"""

from __future__ import annotations

import numpy as np

from cae_codec.errors import CaecError
from cae_codec.evaluate.classic import Jpeg

JPEG = Jpeg()


def encode(compact: np.ndarray, quality: int) -> bytes:
    """(h, w, 3) or (h, w, 1) uint8 -> a JPEG codestream (a grey one for one channel)."""
    img = compact[:, :, 0] if compact.shape[2] == 1 else compact
    return JPEG.encode(np.ascontiguousarray(img), quality)


def decode(data: bytes, channels: int) -> np.ndarray:
    """A JPEG codestream -> (h, w, channels) uint8."""
    rgb = JPEG.decode(data)  # RGB: a grey JPEG comes back replicated
    return rgb[:, :, :1] if channels == 1 else rgb


def roundtrip(batch: np.ndarray, qualities: np.ndarray) -> np.ndarray:
    """(N, h, w, 3) uint8 compact crops, each through JPEG at its own quality (training)."""
    out = np.empty_like(batch)
    for i, (img, q) in enumerate(zip(batch, qualities, strict=True)):
        decoded = decode(encode(img, int(q)), batch.shape[3])
        if decoded.shape != img.shape:
            raise CaecError(f"JPEG gave {decoded.shape} for a {img.shape} compact image")
        out[i] = decoded
    return out
