"""The default codec, after Cheng et al. 2018 (codec id ``cae-pca-j2k``): a convolutional
autoencoder on 128x128 YCbCr tiles, a PCA rotation of its latent, uniform quantization and
lossless JPEG 2000 of the integer planes.

``load`` is what the registry calls; ``payload`` checks and describes files without torch.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from cae_codec.cae import payload

__all__ = ["evaluation_codec", "load", "payload", "train_command"]

if TYPE_CHECKING:
    import typer

    from cae_codec.cae.codec import Codec
    from cae_codec.cae.evaluation import CaecCodec


def load(model: str | os.PathLike[str], device: str = "auto", refine: int = 0) -> Codec:
    """The codec for a model name, a .safetensors path, or a model family's name or file, on
    ``device``; ``refine`` > 0 refines each file's latent by that many gradient steps."""
    from cae_codec import runtime, zoo
    from cae_codec.cae.codec import CaePcaJ2kCodec, FamilyCodec
    from cae_codec.cae.family import read_family

    dev = runtime.device_name(device)
    found = zoo.resolve(model)
    if found.kind == "model":
        return CaePcaJ2kCodec(found.path, dev, refine=refine)
    # members load when a quality, a rate or a file first needs them
    return FamilyCodec(read_family(found.path), dev, refine=refine)


def evaluation_codec(model: str, device: str = "cpu", refine: int = 0) -> CaecCodec:
    """The codec behind the evaluation's interface (compare, bdrate): a family's members'
    analyses are shared work there, charged to every rate whose search used them."""
    from cae_codec.cae.evaluation import CaecCodec

    return CaecCodec(load(model, device), refine)


def train_command() -> typer.Typer:
    """`caec train`'s arguments for this codec are parsed by this Typer app."""
    from cae_codec.cae.cli import train_app

    return train_app
