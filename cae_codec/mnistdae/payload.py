"""The ``mnist-dae`` payload, without torch: its one chunk, the checks a file passes before the
model loads, and what ``caec info`` shows.

A file holds one or more 28x28 grey digits (several: the header's flag bit 1 and image count)
and one critical chunk, ``CODE``. No ``PARM`` chunk: at a few dozen bytes a file, a second
chunk's 9 bytes of framing would be a fifth of it, so the parameters are the chunk's first byte:

    byte 0     low 4 bits: bits per code value B (1..8); high 4 bits: the coding, 0 or 1
    bytes 1..  the N x K level indices (N digits, K code units of the model, each 0..2**B - 1)
               coding 0: packed at B bits each, digit after digit, most significant bit first,
                         the last byte padded with zero bits
               coding 1: one byte each, unit-major (unit 0 of every digit, then unit 1...),
                         as a raw DEFLATE stream (RFC 1951, zlib with wbits -15)

Level ``i`` of unit ``k`` decodes to ``lo[k] + (i + 0.5) * (hi[k] - lo[k]) / 2**B``, ``lo``
and ``hi`` being the model's ``code_lo`` / ``code_hi`` tensors. The encoder writes whichever
coding is smaller: packing for a single digit (a DEFLATE stream of a few dozen symbols costs
more than it saves), DEFLATE for batches, whose units repeat their levels across digits.
"""

from __future__ import annotations

import math
import zlib
from typing import Any

import numpy as np

from cae_codec.container import Box
from cae_codec.errors import FormatError
from cae_codec.modelfiles import ModelInfo, precheck_weights

CODEC = "mnist-dae"
CODE = b"CODE"
SIDE = 28
PACKED, DEFLATED = 0, 1
CODINGS = {PACKED: "packed", DEFLATED: "deflate"}
MAX_BITS = 8


def params(payload: bytes) -> tuple[int, int]:
    """(bits, coding) of a CODE chunk."""
    if not payload:
        raise FormatError("empty CODE chunk")
    bits, coding = payload[0] & 0x0F, payload[0] >> 4
    if not 1 <= bits <= MAX_BITS:
        raise FormatError(f"{bits} bits per code value (mnist-dae takes 1..{MAX_BITS})")
    if coding not in CODINGS:
        raise FormatError(f"unknown coding {coding} of the code (file needs a newer caec)")
    return bits, coding


def chunk(box: Box) -> bytes:
    """The file's CODE chunk, after the checks that need neither model nor torch."""
    if box.flags & ~2:  # flag bit 1 (several images) is the only one this codec writes
        raise FormatError(f"flags {box.flags:#x} do not apply to mnist-dae files")
    if (box.width, box.height, box.channels) != (SIDE, SIDE, 1):
        raise FormatError(
            f"mnist-dae files hold {SIDE}x{SIDE} grey digits, this one declares "
            f"{box.width}x{box.height} with {box.channels} channels"
        )
    for ctype, _ in box.chunks:
        if ctype[:1].isupper() and ctype != CODE:
            raise FormatError(f"unknown critical chunk {ctype.decode()} for mnist-dae (file needs a newer caec)")
    codes = box.all(CODE)
    if len(codes) != 1:
        raise FormatError(f"{len(codes)} CODE chunks where mnist-dae files have one")
    params(codes[0])
    return codes[0]


def pack_levels(levels: np.ndarray, bits: int) -> bytes:
    """(N, K) level indices as the smaller of the two codings, with the leading byte."""
    levels = np.asarray(levels, dtype=np.uint8)
    raw = np.unpackbits(levels.reshape(-1, 1), axis=1)[:, 8 - bits :]
    packed = bytes([bits | PACKED << 4]) + np.packbits(raw.reshape(-1)).tobytes()
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    stream = deflater.compress(np.ascontiguousarray(levels.T).tobytes()) + deflater.flush()
    deflated = bytes([bits | DEFLATED << 4]) + stream
    return packed if len(packed) <= len(deflated) else deflated


def unpack_levels(payload: bytes, images: int, units: int) -> np.ndarray:
    """The (images, units) level indices of a CODE chunk; FormatError when its length does not
    fit the digits and the model's code."""
    bits, coding = params(payload)
    body = payload[1:]
    count = images * units
    if coding == PACKED:
        need = math.ceil(count * bits / 8)
        if len(body) != need:
            raise FormatError(
                f"CODE holds {len(body)} bytes where {images} codes of {units} values at {bits} bits take {need}"
            )
        raw = np.unpackbits(np.frombuffer(body, np.uint8))[: count * bits].reshape(count, bits)
        levels = (raw.astype(np.uint16) << np.arange(bits - 1, -1, -1, dtype=np.uint16)).sum(axis=1)
        return levels.astype(np.uint8).reshape(images, units)
    inflater = zlib.decompressobj(-15)
    try:
        # bounded: a forged stream cannot make the reader inflate more than the codes' bytes
        out = inflater.decompress(body, count + 1)
    except zlib.error as e:
        raise FormatError(f"CODE: corrupt DEFLATE stream ({e})") from None
    if len(out) != count or not inflater.eof or inflater.unused_data:
        raise FormatError(f"CODE inflates to other than the {count} values of {images} codes of {units}")
    levels = np.frombuffer(out, np.uint8).reshape(units, images).T
    if int(levels.max(initial=0)) >= 1 << bits:
        raise FormatError(f"CODE holds a level above {(1 << bits) - 1}, the most {bits} bits give")
    return np.ascontiguousarray(levels)


def code_units(model: ModelInfo) -> int | None:
    try:
        return int(model.config["sizes"][-1])
    except (KeyError, TypeError, ValueError, IndexError):
        return None


def precheck(box: Box, model: ModelInfo) -> None:
    """Refuse a wrong model or a malformed payload before torch is imported."""
    payload = chunk(box)
    precheck_weights(box.model, box.weights_hash, model)
    units = code_units(model)
    if units is not None:
        unpack_levels(payload, box.images, units)


def describe(box: Box) -> dict[str, Any]:
    """The payload's fields for ``caec info``."""
    payload = chunk(box)
    bits, coding = params(payload)
    return {
        "bits": bits,
        "coding": CODINGS[coding],
        "images": box.images,
        "code_bytes": len(payload),
    }


def summary(fields: dict[str, Any]) -> str:
    return f"{fields['bits']} bits a code value, {fields['coding']}, {fields['images']} digit(s)"
