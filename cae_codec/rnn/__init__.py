"""The progressive recurrent codec of Toderici et al. 2017, "Full Resolution Image Compression
with Recurrent Neural Networks" (codec id ``rnn``): conv-RNN encoder and decoder run pass after
pass on the residual, each pass adding 1/8 bit per pixel of binary codes (before entropy
coding); one file holds the passes as chunks and decodes at any prefix of them.

``load`` is what the registry calls; ``payload`` checks and describes files without torch.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from cae_codec.rnn import payload

__all__ = ["load", "payload", "train_command"]

if TYPE_CHECKING:
    import typer

    from cae_codec.rnn.codec import RnnCodec


def load(model: str | os.PathLike[str], device: str = "auto") -> RnnCodec:
    """The codec for a model name or a .safetensors path, on ``device``."""
    from cae_codec.api import pick_device
    from cae_codec.rnn.codec import RnnCodec
    from cae_codec.weights import load_model

    return RnnCodec(load_model(model), pick_device(device))


def train_command() -> typer.Typer:
    """`caec train rnn`'s arguments are parsed by this Typer app."""
    from cae_codec.rnn.cli import train_app

    return train_app
