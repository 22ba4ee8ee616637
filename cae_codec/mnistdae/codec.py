"""The ``mnist-dae`` codec: a 28x28 grey digit -> the deep autoencoder's code -> each code unit
quantized uniformly over its trained range at B bits -> the CODE chunk (cae_codec.mnistdae.payload)
of a version-2 file; decoding runs the decoder half on the levels' midpoints.

The rate knob is B, the bits per code value (--quality, 1..8). Many digits go into one file
through :meth:`MnistDaeCodec.encode_batch` (the header's image count; decode gives the stack).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from cae_codec import registry
from cae_codec.container import Box, v2
from cae_codec.contract import CodecInfo, Progress
from cae_codec.errors import CaecError, ModelError
from cae_codec.mnistdae import payload
from cae_codec.mnistdae.network import ARCHITECTURE, DeepAutoencoder
from cae_codec.modelfiles import check_weights_hash
from cae_codec.ratecontrol import Knob
from cae_codec.weights import Model

SIDE = payload.SIDE
BATCH = 4096  # digits per forward pass


def model_number(model: Model) -> int:
    """The zoo's number of these very weights for the header, 0 when the zoo does not ship them."""
    from cae_codec import zoo

    shipped = zoo.catalogue().models.get(model.name)
    return shipped.number if shipped is not None and shipped.weights_hash == model.weights_hash else 0


def check_digits(images: np.ndarray) -> np.ndarray:
    """``images`` as (N, 28, 28) uint8, or one CaecError line saying why not."""
    arr = np.asarray(images)
    if arr.ndim == 4 and arr.shape[3] == 1:
        arr = arr[..., 0]
    if arr.ndim == 3 and arr.shape[1:] == (SIDE, SIDE) and arr.dtype == np.uint8 and len(arr):
        return arr
    raise CaecError(
        f"mnist-dae codes {SIDE}x{SIDE} grey digits (uint8), got an array of shape {arr.shape} ({arr.dtype})"
    )


def quantize(codes: np.ndarray, lo: np.ndarray, hi: np.ndarray, bits: int) -> np.ndarray:
    """(N, K) codes -> level indices 0..2**bits - 1 over each unit's [lo, hi]."""
    levels = 1 << bits
    idx = np.floor((codes - lo) / (hi - lo) * levels)
    return np.clip(idx, 0, levels - 1).astype(np.uint8)


def dequantize(idx: np.ndarray, lo: np.ndarray, hi: np.ndarray, bits: int) -> np.ndarray:
    """Level indices -> each level's midpoint."""
    return (lo + (idx.astype(np.float32) + 0.5) * (hi - lo) / (1 << bits)).astype(np.float32)


class MnistDaeCodec:
    info: ClassVar[CodecInfo] = registry.get(payload.CODEC)
    knob: ClassVar[Knob] = Knob("bits per code value", 1, payload.MAX_BITS, integer=True)

    def __init__(self, model: Model, device: torch.device) -> None:
        if model.architecture != ARCHITECTURE:
            raise ModelError(f"weights {model.name!r} are a {model.architecture} network, not an mnist-dae model")
        self.model = model
        self.net: DeepAutoencoder = model.network  # type: ignore[assignment]
        self.device = device
        self.net.to(device)
        self.number = model_number(model)
        self.lo = self.net.code_lo.detach().cpu().numpy().astype(np.float32)  # type: ignore[operator]
        self.hi = self.net.code_hi.detach().cpu().numpy().astype(np.float32)  # type: ignore[operator]

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def units(self) -> int:
        return len(self.lo)

    @torch.no_grad()
    def codes(self, digits: np.ndarray) -> np.ndarray:
        """(N, 28, 28) uint8 -> (N, K) real-valued codes."""
        x = torch.from_numpy(digits.reshape(len(digits), -1).astype(np.float32) / 255.0)
        out = [self.net.encode(x[i : i + BATCH].to(self.device)).cpu() for i in range(0, len(x), BATCH)]
        return torch.cat(out).numpy()

    @torch.no_grad()
    def reconstruct(self, codes: np.ndarray) -> np.ndarray:
        """(N, K) codes -> (N, 28, 28, 1) uint8 digits."""
        z = torch.from_numpy(np.ascontiguousarray(codes, dtype=np.float32))
        out = torch.cat([self.net.decode(z[i : i + BATCH].to(self.device)).cpu() for i in range(0, len(z), BATCH)])
        return (out * 255).round().clamp(0, 255).to(torch.uint8).numpy().reshape(len(z), SIDE, SIDE, 1)

    def analyse(self, image: np.ndarray, icc_profile: bytes | None = None) -> np.ndarray:
        if image.ndim != 3 or image.shape[:2] != (SIDE, SIDE) or image.shape[2] != 1:
            h, w = image.shape[:2]
            kind = "grey" if image.ndim == 2 or image.shape[2] == 1 else f"{image.shape[2]}-channel"
            raise CaecError(f"mnist-dae codes {SIDE}x{SIDE} grey digits only, not a {w}x{h} {kind} image")
        return self.codes(image[None, :, :, 0])

    def levels(self, codes: np.ndarray, bits: int) -> np.ndarray:
        return quantize(codes, self.lo, self.hi, bits)

    def file(self, levels: np.ndarray, bits: int) -> bytes:
        n = len(levels)
        header = v2.HeaderV2(
            payload.CODEC,
            SIDE,
            SIDE,
            1,
            weights_hash=self.model.weights_hash[: v2.HASH_BYTES],
            model_number=self.number,
            flags=v2.FLAG_STACK if n > 1 else 0,
            images=n,
        )
        return v2.pack(header, [(payload.CODE, payload.pack_levels(levels, bits))])

    def pack(self, analysis: np.ndarray, knob: float, quality: int = 0) -> bytes:
        bits = int(knob)
        return self.file(self.levels(analysis, bits), bits)

    def knob_for_quality(self, quality: int) -> float:
        return float(quality)

    def finish(self, image: np.ndarray, analysis: Any, data: bytes, budget: int | None) -> bytes:
        return data

    def encode_batch(self, images: np.ndarray, quality: int | None = None) -> bytes:
        """Many digits (N, 28, 28[, 1]) in one file at ``quality`` bits per code value."""
        digits = check_digits(images)
        if len(digits) > v2.MAX_STACK:
            raise CaecError(f"{len(digits)} digits, more than the {v2.MAX_STACK} one file holds")
        bits = self.info.quality.default if quality is None else self.info.quality.check(quality, payload.CODEC)
        return self.file(self.levels(self.codes(digits), bits), bits)

    def decode_levels(self, box: Box) -> tuple[np.ndarray, int]:
        code = payload.chunk(box)
        check_weights_hash(box.model, box.weights_hash, self.name, self.model.weights_hash[: len(box.weights_hash)])
        bits, _ = payload.params(code)
        return payload.unpack_levels(code, box.images, self.units), bits

    def decode(self, box: Box, progress: Progress | None = None) -> np.ndarray:
        idx, bits = self.decode_levels(box)
        digits = self.reconstruct(dequantize(idx, self.lo, self.hi, bits))
        if progress is not None:
            progress(len(digits))
        return digits if box.stack else digits[0]
