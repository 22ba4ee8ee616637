"""The ``comcnn`` payload, without torch: its chunks, the checks a file passes before the model
loads, and what ``caec info`` shows.

A file holds one image (width x height, 1..4 channels in the header) and these chunks:

    JPEG   the compact image as a standard JPEG codestream (SOI .. EOI), exactly as
           libjpeg-turbo wrote it: any JPEG reader opens it (`caec info --extract-compact`).
           It is ceil(width / 2) x ceil(height / 2) pixels, grey for grey images (1 or 2
           channels), colour (YCbCr 4:2:0, as JPEG stores RGB) otherwise.
    ALPH   for grey + alpha and RGBA images only: the alpha plane, lossless JPEG 2000, as the
           CAE codec stores it.
    iccp   the source's colour profile, optional (ancillary).

Decoding: JPEG -> compact image -> bicubic x2 -> RecCNN's residual added -> cropped to the
image's size. The JPEG's frame header (its SOF: size and components) is read here and must match
what the container declares before any decoder runs, so a codestream that would decode to
another size, or a small file declaring a huge frame (a decompression bomb), is refused on one
line; so is a codestream of more scans than a JPEG of this codec can have.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from cae_codec.container import ALPHA, ICC, Box
from cae_codec.errors import FormatError
from cae_codec.modelfiles import ModelInfo, precheck_weights
from cae_codec.stages import j2k

CODEC = "comcnn"
JPEG = b"JPEG"
# SOF markers of the DCT processes libjpeg-turbo decodes with Huffman coding (baseline,
# extended, progressive); lossless and arithmetic-coded frames are not what this codec writes
SOF_MARKERS = {0xC0: "baseline", 0xC1: "extended", 0xC2: "progressive"}
# compact pixels a side per network pass (memory stays bounded on any image size), and the
# margin ComCNN's tiles take around them (its receptive field is 3 compact pixels each way)
TILE = 384
COM_MARGIN = 4
# what libjpeg-turbo writes is one scan (baseline) or ~10 (progressive): a codestream of many
# more can cost a decoder a pass over the image per scan
MAX_SCANS = 64


@dataclass(frozen=True)
class Frame:
    """What a JPEG's frame header says."""

    process: str
    precision: int
    width: int
    height: int
    components: int
    scans: int


def compact_size(width: int, height: int) -> tuple[int, int]:
    """The compact image of a width x height image: half each side, rounded up (odd sides are
    padded by repeating the last row or column)."""
    return (width + 1) // 2, (height + 1) // 2


def compact_channels(channels: int) -> int:
    return 1 if channels in (1, 2) else 3


def read_frame(data: bytes) -> Frame:
    """The frame header of a JPEG codestream, read from its markers without decoding it."""
    if data[:2] != b"\xff\xd8":
        raise FormatError("not a JPEG codestream (no SOI marker)")
    pos, frame, scans = 2, None, 0
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            if frame is None:
                raise FormatError(f"corrupt JPEG codestream: no marker at byte {pos}")
            # entropy-coded data: skip to the next marker (0xFF00 is a stuffed byte, 0xFFD0..D7 restarts)
            nxt = data.find(b"\xff", pos)
            pos = len(data) if nxt < 0 else nxt
            continue
        marker = data[pos + 1]
        if marker == 0xFF or marker == 0x00 or 0xD0 <= marker <= 0xD7:
            pos += 2 if marker != 0xFF else 1
            continue
        if marker == 0xD9:  # EOI
            break
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if length < 2 or pos + 2 + length > len(data):
            raise FormatError("corrupt JPEG codestream: a marker segment runs past its end")
        seg = data[pos + 4 : pos + 2 + length]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if marker not in SOF_MARKERS:
                raise FormatError(f"JPEG frame type 0x{marker:02X} is not one this codec writes")
            if frame is not None:
                raise FormatError("a JPEG codestream of more than one frame")
            if len(seg) < 6:
                raise FormatError("corrupt JPEG codestream: short frame header")
            precision, height, width, ncomp = struct.unpack(">BHHB", seg[:6])
            frame = (SOF_MARKERS[marker], precision, width, height, ncomp)
        elif marker == 0xDA:
            if frame is None:
                raise FormatError("corrupt JPEG codestream: a scan before the frame header")
            scans += 1
            if scans > MAX_SCANS:
                raise FormatError(f"a JPEG codestream of more than {MAX_SCANS} scans")
        pos += 2 + length
    if frame is None:
        raise FormatError("the JPEG codestream has no frame header")
    if not scans:
        raise FormatError("the JPEG codestream has no scan")
    return Frame(*frame, scans)


def check_chunks(box: Box) -> None:
    """Chunk types and multiplicity: one JPEG, ALPH exactly when the image has alpha."""
    for ctype, _ in box.chunks:
        if ctype[:1].isupper() and ctype not in (JPEG, ALPHA):
            raise FormatError(f"unknown critical chunk {ctype.decode()} for comcnn (file needs a newer caec)")
    for ctype in (JPEG, ALPHA, ICC):
        if len(box.all(ctype)) > 1:
            raise FormatError(f"duplicate chunk {ctype.decode()}")
    if box.first(JPEG) is None:
        raise FormatError("missing JPEG chunk (the compact image)")
    if box.channels in (2, 4):
        if box.first(ALPHA) is None:
            raise FormatError("missing alpha chunk")
    elif box.first(ALPHA) is not None:
        raise FormatError("an alpha chunk in a file without alpha")


def check(box: Box) -> Frame:
    """Every check that needs no model: flags, chunks, the JPEG's frame against the declared
    image, the alpha plane's codestream against its size."""
    if box.flags:  # neither progressive nor several images
        raise FormatError(f"flags {box.flags:#x} do not apply to comcnn files")
    check_chunks(box)
    frame = read_frame(box.first(JPEG) or b"")
    want_w, want_h = compact_size(box.width, box.height)
    want_c = compact_channels(box.channels)
    if (frame.width, frame.height, frame.components) != (want_w, want_h, want_c) or frame.precision != 8:
        raise FormatError(
            f"the JPEG chunk holds a {frame.width}x{frame.height} image of {frame.components} components "
            f"at {frame.precision} bits; a {box.width}x{box.height} image's compact image is "
            f"{want_w}x{want_h} of {want_c} at 8 bits"
        )
    if box.channels in (2, 4):
        j2k.check_plane(box.first(ALPHA) or b"", (box.height, box.width), np.dtype(np.uint8), "alpha")
    return frame


def precheck(box: Box, model: ModelInfo) -> None:
    """Refuse a wrong model or a malformed payload before torch is imported."""
    check(box)
    precheck_weights(box.model, box.weights_hash, model)
    channels = model.config.get("channels") if isinstance(model.config, dict) else None
    if channels is not None and channels != 3:
        raise FormatError(f"model {model.path.name} is a {channels}-channel comcnn model; files take 3")


def standard_codestream(box: Box) -> bytes:
    """The compact image's JPEG codestream, checked (what `caec info --extract-compact` writes)."""
    check(box)
    return box.first(JPEG) or b""


def describe(box: Box) -> dict[str, Any]:
    """The payload's fields for ``caec info``."""
    frame = check(box)
    return {
        "inner_codec": "JPEG (standard codestream; caec info --extract-compact FILE.jpg writes it out)",
        "compact_size": f"{frame.width}x{frame.height}",
        "compact_components": frame.components,
        "jpeg_process": frame.process,
        "jpeg_bytes": len(box.first(JPEG) or b""),
        # decode's progress counts RecCNN's tiles
        "decode_steps": -(-frame.width // TILE) * -(-frame.height // TILE),
    }


def summary(fields: dict[str, Any]) -> str:
    return f"compact image {fields['compact_size']} as a {fields['jpeg_bytes']}-byte JPEG"
