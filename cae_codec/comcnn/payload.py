"""The ``comcnn`` payload, without torch: its chunks, the checks a file passes before the model
loads, and what ``caec info`` shows.

A file holds one image (width x height, 1..4 channels in the header) and these chunks:

    JPEG, JPCS, WEBP or AVIF
           exactly one: the compact image as a standard codestream of the inner codec the model
           was trained with (cae_codec.comcnn.frames: a JPEG codestream, a raw JPEG 2000
           codestream, a lossy WebP file, an AVIF file), exactly as the codec's library wrote
           it: any reader of that format opens it (`caec info --extract-compact`). It is
           ceil(width / 2) x ceil(height / 2) pixels, grey for grey images (1 or 2 channels;
           WebP, which has no grey images, holds three equal planes), colour otherwise.
    ALPH   for grey + alpha and RGBA images only: the alpha plane, lossless JPEG 2000, as the
           CAE codec stores it.
    iccp   the source's colour profile, optional (ancillary).

Decoding: inner codestream -> compact image -> bicubic x2 -> RecCNN's residual added -> cropped
to the image's size. The codestream's frame (size, components, bit depth) is read from its
headers here and must match what the container declares before any decoder runs, so a
codestream that would decode to another size, or a small file declaring a huge frame (a
decompression bomb), is refused on one line.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cae_codec.comcnn.frames import BY_CHUNK, INNER_CODECS, MAX_SCANS, SOF_MARKERS, Frame, InnerInfo
from cae_codec.comcnn.frames import read_jpeg as read_frame
from cae_codec.container import ALPHA, ICC, Box
from cae_codec.errors import FormatError
from cae_codec.modelfiles import ModelInfo, precheck_weights
from cae_codec.stages import j2k

__all__ = ["MAX_SCANS", "SOF_MARKERS", "Frame", "read_frame"]

CODEC = "comcnn"
JPEG = b"JPEG"
INNER_CHUNKS = tuple(BY_CHUNK)
# compact pixels a side per network pass (memory stays bounded on any image size), and the
# margin ComCNN's tiles take around them (its receptive field is 3 compact pixels each way)
TILE = 384
COM_MARGIN = 4


def compact_size(width: int, height: int) -> tuple[int, int]:
    """The compact image of a width x height image: half each side, rounded up (odd sides are
    padded by repeating the last row or column)."""
    return (width + 1) // 2, (height + 1) // 2


def compact_channels(channels: int) -> int:
    return 1 if channels in (1, 2) else 3


def codestream_components(inner: InnerInfo, channels: int) -> int:
    """The components of the inner codestream of an image of ``channels``."""
    return compact_channels(channels) if inner.grey else 3


def inner_of(box: Box) -> InnerInfo:
    """The inner codec a file's compact image is coded with, by its chunk."""
    found = [BY_CHUNK[ctype] for ctype, _ in box.chunks if ctype in BY_CHUNK]
    if not found:
        raise FormatError(f"missing compact image chunk (one of {', '.join(c.decode() for c in INNER_CHUNKS)})")
    if len(found) > 1:
        names = ", ".join(i.chunk.decode() for i in found)
        raise FormatError(f"duplicate compact image chunks ({names}): a file holds one")
    return found[0]


def check_chunks(box: Box) -> InnerInfo:
    """Chunk types and multiplicity: one compact image chunk, ALPH exactly when the image has alpha."""
    for ctype, _ in box.chunks:
        if ctype[:1].isupper() and ctype not in (*INNER_CHUNKS, ALPHA):
            raise FormatError(f"unknown critical chunk {ctype.decode()} for comcnn (file needs a newer caec)")
    for ctype in (ALPHA, ICC):
        if len(box.all(ctype)) > 1:
            raise FormatError(f"duplicate chunk {ctype.decode()}")
    inner = inner_of(box)
    if box.channels in (2, 4):
        if box.first(ALPHA) is None:
            raise FormatError("missing alpha chunk")
    elif box.first(ALPHA) is not None:
        raise FormatError("an alpha chunk in a file without alpha")
    return inner


def check(box: Box) -> tuple[InnerInfo, Frame]:
    """Every check that needs no model: flags, chunks, the inner codestream's frame against the
    declared image, the alpha plane's codestream against its size."""
    if box.flags:  # neither progressive nor several images
        raise FormatError(f"flags {box.flags:#x} do not apply to comcnn files")
    inner = check_chunks(box)
    frame = inner.read_frame(box.first(inner.chunk) or b"")
    want_w, want_h = compact_size(box.width, box.height)
    want_c = codestream_components(inner, box.channels)
    if (frame.width, frame.height, frame.components) != (want_w, want_h, want_c) or frame.precision != 8:
        raise FormatError(
            f"the {inner.chunk.decode()} chunk holds a {frame.width}x{frame.height} image of {frame.components} "
            f"components at {frame.precision} bits; a {box.width}x{box.height} image's compact image is "
            f"{want_w}x{want_h} of {want_c} at 8 bits"
        )
    if box.channels in (2, 4):
        j2k.check_plane(box.first(ALPHA) or b"", (box.height, box.width), np.dtype(np.uint8), "alpha")
    return inner, frame


def model_inner(config: object) -> str:
    """The inner codec a comcnn model's config names (JPEG for models made before the choice)."""
    inner = config.get("inner", "jpeg") if isinstance(config, dict) else "jpeg"
    return str(inner)


def check_model(inner: InnerInfo, model_name: str, config: object) -> None:
    """A model's RecCNN learned one inner codec's errors: refuse a file of another."""
    trained = model_inner(config)
    if trained != inner.name:
        label = INNER_CODECS[trained].label if trained in INNER_CODECS else trained
        raise FormatError(
            f"the file's compact image is {inner.label}; model {model_name} was trained for {label} "
            f"(give -m a comcnn model trained with --inner {inner.name})"
        )


def precheck(box: Box, model: ModelInfo) -> None:
    """Refuse a wrong model or a malformed payload before torch is imported."""
    inner, _ = check(box)
    check_model(inner, model.path.name, model.config)
    precheck_weights(box.model, box.weights_hash, model)
    channels = model.config.get("channels") if isinstance(model.config, dict) else None
    if channels is not None and channels != 3:
        raise FormatError(f"model {model.path.name} is a {channels}-channel comcnn model; files take 3")


def standard_codestream(box: Box) -> bytes:
    """The compact image's codestream, checked (what `caec info --extract-compact` writes)."""
    inner, _ = check(box)
    return box.first(inner.chunk) or b""


def standard_suffixes(box: Box) -> tuple[str, ...]:
    """File suffixes that name the compact image's format, the usual one first (of a box that
    standard_codestream has checked: by its chunk alone)."""
    return inner_of(box).suffixes


def describe(box: Box) -> dict[str, Any]:
    """The payload's fields for ``caec info``."""
    inner, frame = check(box)
    return {
        "inner_codec": f"{inner.label} (standard codestream; caec info --extract-compact FILE{inner.suffixes[0]} "
        "writes it out)",
        "compact_size": f"{frame.width}x{frame.height}",
        "compact_components": frame.components,
        "codestream_process": frame.process,
        "codestream_bytes": len(box.first(inner.chunk) or b""),
        # decode's progress counts RecCNN's tiles
        "decode_steps": -(-frame.width // TILE) * -(-frame.height // TILE),
    }


def summary(fields: dict[str, Any]) -> str:
    codec = str(fields["inner_codec"]).split(" (")[0]
    return f"compact image {fields['compact_size']} as a {fields['codestream_bytes']}-byte {codec}"
