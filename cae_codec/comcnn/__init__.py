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


def load(model: str | os.PathLike[str], device: str = "auto", inner: str | None = None) -> ComCnnCodec:
    """The codec for a model name or a .safetensors path, on ``device``, with the inner codec
    the model was trained for. ``inner`` (encode's --inner) names the inner codec wanted: the
    model must be one of it; with the codec's default model, ``inner`` picks the shipped
    ``comcnn-INNER`` instead."""
    from cae_codec.api import pick_device
    from cae_codec.comcnn.codec import for_model
    from cae_codec.comcnn.frames import INNER_CODECS
    from cae_codec.errors import CaecError
    from cae_codec.registry import get
    from cae_codec.weights import load_model

    if inner is not None:
        if inner not in INNER_CODECS:
            raise CaecError(f"unknown inner codec {inner!r} (one of {', '.join(INNER_CODECS)})")
        if str(model) == get(payload.CODEC).default_model and inner != "jpeg":
            try:
                loaded = load_model(f"comcnn-{inner}")
            except CaecError:
                raise CaecError(
                    f"no comcnn model for inner codec {inner} is shipped or in $CAEC_MODELS: train one "
                    f"(caec train comcnn DATA --inner {inner}) and give it with -m"
                ) from None
            return for_model(loaded, pick_device(device))
    loaded = load_model(model)
    trained = payload.model_inner(loaded.config)
    if inner is not None and trained != inner:
        raise CaecError(f"model {loaded.name} was trained for inner codec {trained}, not {inner}")
    return for_model(loaded, pick_device(device))


def train_command() -> typer.Typer:
    """`caec train comcnn`'s arguments are parsed by this Typer app."""
    from cae_codec.comcnn.cli import train_app

    return train_app
