"""The standard codecs inside comcnn: the compact image's codestream, made and read by the
evaluation's own wrappers (cae_codec.evaluate.classic), so that each inner codec is exactly the
codec that comcnn with it is compared with (JPEG: libjpeg-turbo, 4:2:0, optimized Huffman
tables; JPEG 2000: OpenJPEG, 9/7; WebP: libwebp lossy, method 4; AVIF: libavif + aom, speed 6,
4:4:4). Their names, chunk types and frame readers, which need no codec library, are in
cae_codec.comcnn.frames.
"""

from __future__ import annotations

import numpy as np

from cae_codec.comcnn.frames import INNER_CODECS, InnerInfo
from cae_codec.errors import CaecError
from cae_codec.evaluate.classic import CLASSIC_CODECS, ClassicCodec


def codec(name: str) -> ClassicCodec:
    """The evaluation's wrapper of inner codec ``name``."""
    return CLASSIC_CODECS[info(name).classic]()


def info(name: str) -> InnerInfo:
    try:
        return INNER_CODECS[name]
    except KeyError:
        raise CaecError(f"unknown inner codec {name!r} (one of {', '.join(INNER_CODECS)})") from None


def encode(compact: np.ndarray, knob: float, name: str = "jpeg") -> bytes:
    """(h, w, 3) or (h, w, 1) uint8 -> the inner codec's codestream: a one-component one for
    one channel where the codec has grey images, else RGB with three equal planes (WebP)."""
    img = compact
    if compact.shape[2] == 1:
        img = compact[:, :, 0] if info(name).grey else compact.repeat(3, axis=2)
    return codec(name).encode(np.ascontiguousarray(img), knob)


def decode(data: bytes, channels: int, name: str = "jpeg") -> np.ndarray:
    """An inner codestream -> (h, w, channels) uint8 (for one channel, the first plane: a grey
    codestream comes back replicated, WebP's three equal planes as they decode)."""
    rgb = codec(name).decode(data)
    return rgb[:, :, :1] if channels == 1 else rgb


def roundtrip(batch: np.ndarray, knobs: np.ndarray, name: str = "jpeg") -> np.ndarray:
    """(N, h, w, 3) uint8 compact crops, each through the inner codec at its own knob value (training)."""
    out = np.empty_like(batch)
    for i, (img, q) in enumerate(zip(batch, knobs, strict=True)):
        decoded = decode(encode(img, float(q), name), batch.shape[3], name)
        if decoded.shape != img.shape:
            raise CaecError(f"{info(name).label} gave {decoded.shape} for a {img.shape} compact image")
        out[i] = decoded
    return out
