"""The MNIST deep autoencoder with RBM pre-training, after Hinton & Salakhutdinov 2006 (codec id
``mnist-dae``): a 28x28 grey digit -> the code of a deep autoencoder -> uniform quantization
of each code unit over its trained range -> a few dozen bytes; several digits per file.

``load`` is what the registry calls; ``payload`` checks and describes files without torch;
``encode_batch`` / ``decode_batch`` put many digits in one file and take them out.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from cae_codec.mnistdae import payload

__all__ = ["decode_batch", "encode_batch", "load", "payload", "train_command"]

if TYPE_CHECKING:
    import typer

    from cae_codec.mnistdae.codec import MnistDaeCodec


def load(model: str | os.PathLike[str], device: str = "auto") -> MnistDaeCodec:
    """The codec for a model name or a .safetensors path, on ``device``."""
    from cae_codec.api import pick_device
    from cae_codec.mnistdae.codec import MnistDaeCodec
    from cae_codec.weights import load_model

    return MnistDaeCodec(load_model(model), pick_device(device))


def encode_batch(
    images: np.ndarray, quality: int | None = None, model: str | os.PathLike[str] | None = None, device: str = "cpu"
) -> bytes:
    """(N, 28, 28) or (N, 28, 28, 1) uint8 digits as one file (a stack when N > 1), at
    ``quality`` (bits per code value; the codec's default when None)."""
    from cae_codec import registry

    codec = load(model or registry.get(payload.CODEC).default_model or "", device)
    return codec.encode_batch(images, quality)


def decode_batch(data: bytes, model: str | os.PathLike[str] | None = None, device: str = "cpu") -> np.ndarray:
    """A file of this codec as (N, 28, 28, 1) uint8, a single digit as N = 1."""
    from cae_codec import api

    out = api.decode(data, model=model, device=device)
    return out if out.ndim == 4 else out[None]


def train_command() -> typer.Typer:
    """`caec train mnist-dae`'s arguments are parsed by this Typer app."""
    from cae_codec.mnistdae.cli import train_app

    return train_app
