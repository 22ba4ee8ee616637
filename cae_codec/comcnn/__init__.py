"""ComCNN -> standard codec -> RecCNN, after Jiang et al. 2017, "An End-to-End Compression
Framework Based on Convolutional Neural Networks" (codec id ``comcnn``): a network makes a
half-resolution compact image, JPEG codes it (the file carries the standard codestream), and
the decoder upscales the decoded compact image and lets a second network restore the detail.

``load`` is what the registry calls; ``payload`` checks and describes files without torch.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from cae_codec.comcnn import payload

__all__ = ["load", "payload", "train_command"]

if TYPE_CHECKING:
    import typer

    from cae_codec.comcnn.codec import ComCnnCodec


def load(model: str | os.PathLike[str], device: str = "auto") -> ComCnnCodec:
    """The codec for a model name or a .safetensors path, on ``device``."""
    from cae_codec.api import pick_device
    from cae_codec.comcnn.codec import ComCnnCodec
    from cae_codec.weights import load_model

    return ComCnnCodec(load_model(model), pick_device(device))


def train_command() -> typer.Typer:
    """`caec train comcnn`'s arguments are parsed by this Typer app."""
    from cae_codec.comcnn.cli import train_app

    return train_app
