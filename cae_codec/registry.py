"""The one registry of caec's codecs.

Everything that offers codecs (the library API, every CLI command, the evaluation, the web
page) reads this and nothing else: a codec is one package plus one entry here. Entries are
plain data, so listing codecs and checking files never imports torch; a codec's package is
imported when it first encodes or decodes (:func:`load`).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

from cae_codec.contract import Capabilities, CodecInfo, QualityScale
from cae_codec.errors import CaecError, FormatError

if TYPE_CHECKING:
    from cae_codec.contract import Codec

CODECS: dict[str, CodecInfo] = {
    info.id: info
    for info in (
        CodecInfo(
            id="cae-pca-j2k",
            label="caec",
            paper="Cheng et al. 2018, Deep Convolutional AutoEncoder-based Lossy Image Compression",
            summary="YCbCr 128x128 tiles -> convolutional autoencoder -> PCA rotation -> uniform "
            "quantization -> JPEG 2000 of the integer planes",
            module="cae_codec.cae",
            quality=QualityScale(1, 10, 4),
            capabilities=Capabilities(),
            default_model="cae-gdn-v3",
        ),
        CodecInfo(
            id="mnist-dae",
            label="MNIST deep AE",
            paper="Hinton & Salakhutdinov 2006, Reducing the Dimensionality of Data with Neural Networks",
            summary="28x28 grey digits -> deep autoencoder pre-trained as a stack of RBMs -> each code unit "
            "quantized over its trained range -> packed bits or DEFLATE; several digits per file",
            module="cae_codec.mnistdae",
            # --quality is the bits per code value: 6 costs the 30-value code 2% over its real-valued
            # error, 5 costs 7% (docs/mnist.md)
            quality=QualityScale(1, 8, 6),
            capabilities=Capabilities(fixed_size=(28, 28), several_images=True, channels=(1,), learned=True),
            default_model="mnist-dae-30",
        ),
        CodecInfo(
            id="comcnn",
            label="ComCNN+JPEG+RecCNN",
            paper="Jiang et al. 2017, An End-to-End Compression Framework Based on Convolutional Neural Networks",
            summary="ComCNN -> half-resolution compact image -> JPEG (a standard codestream in the file) -> "
            "bicubic x2 -> RecCNN restores the residual",
            module="cae_codec.comcnn",
            # --quality is the inner JPEG's quality (1..100) of the compact image
            quality=QualityScale(1, 100, 50),
            capabilities=Capabilities(),
            default_model="comcnn-jpeg",
        ),
        CodecInfo(
            id="rnn",
            label="Toderici RNN",
            paper="Toderici et al. 2017, Full Resolution Image Compression with Recurrent Neural Networks",
            summary="conv-GRU encoder -> binarizer (1/8 bpp a pass) -> conv-GRU decoder, pass after pass on "
            "the residual; the bits range-coded with a context model; one file decodes at any prefix of passes",
            module="cae_codec.rnn",
            # --quality is the number of passes (each 1/8 bpp before entropy coding)
            quality=QualityScale(1, 16, 4),
            capabilities=Capabilities(progressive=True),
            default_model="rnn-gru-w8-ft64",
        ),
    )
}
DEFAULT_CODEC = "cae-pca-j2k"
# what `compare`/`bdrate --codecs` have always called the default codec
ALIASES = {"caec": DEFAULT_CODEC}


def codec_ids() -> list[str]:
    return list(CODECS)


def get(codec_id: str) -> CodecInfo:
    """The entry of ``codec_id`` (or an alias), or one CaecError line naming the known ones."""
    info = CODECS.get(ALIASES.get(codec_id, codec_id))
    if info is None:
        raise CaecError(f"unknown codec {codec_id!r} (this caec knows {', '.join(CODECS)})")
    return info


def for_file(codec_id: str) -> CodecInfo:
    """The entry of the codec a file names: its id exactly (aliases are for people, not files)."""
    info = CODECS.get(codec_id)
    if info is None:
        raise FormatError(
            f"file made by codec {codec_id!r}, which this caec cannot decode (it knows "
            f"{', '.join(CODECS)}; a newer caec may)"
        )
    return info


def package(codec_id: str) -> ModuleType:
    """The package implementing ``codec_id``: its ``load(model, device)`` gives a
    :class:`~cae_codec.contract.Codec`, its torch-free ``payload`` module checks and describes
    files before anything heavy is imported, its optional ``train_command()`` is the Typer
    app `caec train CODEC ...` runs."""
    return importlib.import_module(get(codec_id).module)


def payload(codec_id: str) -> ModuleType:
    """The codec's torch-free payload module: ``precheck(box, model_info)`` (everything a file
    can be refused for before the model loads), ``describe(box) -> dict`` (what `caec info`
    shows; ``decode_steps``, if there, is the total that decode's progress(n) counts to) and
    ``summary(fields) -> str`` (a few words of it for `caec encode -v`)."""
    module: ModuleType = package(codec_id).payload
    return module


def load(codec_id: str, model: str | None = None, device: str = "auto") -> Codec:
    """``codec_id`` with ``model`` (its default model when None) on ``device``."""
    info = get(codec_id)
    codec: Codec = package(codec_id).load(model or info.default_model, device)
    return codec
