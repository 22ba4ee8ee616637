"""The ``rnn`` payload, without torch: its chunks, the checks a file passes before the model
loads, and what ``caec info`` shows.

A file is progressive (header flag bit 0): any prefix of whole chunks decodes. Chunks, in order:

    PARM   4 bytes: coding (u8: 0 raw bits, 1 range-coded with the model's context tables),
           bits per 16x16 block and pass B (u8, the model's), quality (u8, 0: chosen otherwise),
           reserved (u8, 0)
    iCCP   optional, the colour profile (container)
    ALPH   the alpha plane (lossless JPEG 2000), present exactly for grey + alpha and RGBA
    PASS   one per pass, coarse to fine; at least one

The image is coded at its size rounded up to multiples of 16 (edge pixels repeated), so a pass
holds B x ceil(H/16) x ceil(W/16) bits, ordered channel by channel, then rows, then columns
(bit +1 is 1). Coding 0: those bits packed most significant first, the last byte padded with
zero bits. Coding 1: the constriction range coder's compressed words (u32, little-endian) of the
same bits in the same order, each with the probability the context model gives it
(cae_codec/rnn/entropy.py), which depends only on bits decoded before it.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any

from cae_codec.container import ALPHA, ICC, Box
from cae_codec.container.v2 import FLAG_PROGRESSIVE, PARAMS
from cae_codec.errors import FormatError
from cae_codec.modelfiles import ModelInfo, precheck_weights

CODEC = "rnn"
PASS = b"PASS"
BLOCK = 16
RAW, RANGE = 0, 1
CODINGS = {RAW: "raw bits", RANGE: "range-coded"}
PARAMS_STRUCT = struct.Struct(">BBBB")
MAX_BITS = 256
MAX_PASSES = 64
KNOWN = (PARAMS, ICC, ALPHA, PASS)


@dataclass(frozen=True)
class RnnParams:
    coding: int
    bits: int
    quality: int

    def pack(self) -> bytes:
        return PARAMS_STRUCT.pack(self.coding, self.bits, self.quality, 0)


def blocks(height: int, width: int) -> tuple[int, int]:
    """Rows and columns of 16x16 blocks (the padded image over 16)."""
    return math.ceil(height / BLOCK), math.ceil(width / BLOCK)


def raw_pass_bytes(bits: int, height: int, width: int) -> int:
    rows, cols = blocks(height, width)
    return math.ceil(bits * rows * cols / 8)


def params(box: Box) -> RnnParams:
    """The file's parameters, after checking its framing: chunk types and order, the alpha
    chunk, and at least one whole pass."""
    if box.flags != FLAG_PROGRESSIVE:
        raise FormatError(f"flags {box.flags:#x}: rnn files are progressive single images (flags 0x1)")
    if not box.chunks or box.chunks[0][0] != PARAMS:
        raise FormatError("rnn file without its PARM chunk")
    raw = box.chunks[0][1]
    if len(raw) != PARAMS_STRUCT.size:
        raise FormatError(f"PARM of {len(raw)} bytes where rnn files have {PARAMS_STRUCT.size}")
    coding, bits, quality, reserved = PARAMS_STRUCT.unpack(raw)
    if coding not in CODINGS:
        raise FormatError(f"unknown coding {coding} of the passes (file needs a newer caec)")
    if not 0 < bits <= MAX_BITS or reserved:
        raise FormatError(f"malformed parameters: {bits} bits a block, reserved byte {reserved}")
    seen_pass = False
    for ctype, _ in box.chunks[1:]:
        if ctype[:1].isupper() and ctype not in KNOWN:
            raise FormatError(f"unknown critical chunk {ctype.decode()} for rnn (file needs a newer caec)")
        if ctype == PASS:
            seen_pass = True
        elif ctype in (ALPHA, ICC) and seen_pass:
            raise FormatError(f"{ctype.decode()} after a PASS chunk: it must come before the passes")
    if not seen_pass:
        raise FormatError("no pass of the image arrived whole (the file is cut before its first pass)")
    alphas = len(box.all(ALPHA))
    if alphas != (box.channels in (2, 4)):
        wanted = "one ALPH chunk" if box.channels in (2, 4) else "no ALPH chunk"
        raise FormatError(f"{alphas} ALPH chunks where a {box.channels}-channel image has {wanted}")
    if len(box.all(PASS)) > MAX_PASSES:
        raise FormatError(f"{len(box.all(PASS))} passes; rnn files hold at most {MAX_PASSES}")
    if coding == RAW:
        need = raw_pass_bytes(bits, box.height, box.width)
        for i, chunk in enumerate(box.all(PASS)):
            if len(chunk) != need:
                raise FormatError(f"pass {i + 1} holds {len(chunk)} bytes where {bits} raw bits a block take {need}")
    else:
        for i, chunk in enumerate(box.all(PASS)):
            if len(chunk) % 4:
                raise FormatError(f"pass {i + 1}: {len(chunk)} bytes are not whole 32-bit words of the range coder")
    return RnnParams(coding, bits, quality)


def _pass_indices(box: Box) -> list[int]:
    return [i for i, (ctype, _) in enumerate(box.chunks) if ctype == PASS]


def passes(box: Box) -> tuple[int, int]:
    """(passes that arrived whole, passes the header announced): the chunks a file announces
    from its first pass on are its passes (caec writes nothing after them)."""
    params(box)
    where = _pass_indices(box)
    return len(where), max(len(where), box.declared - where[0])


def chunks_for_passes(box: Box, keep: int) -> int:
    """How many leading chunks hold the first ``keep`` passes (1..the passes there;
    cae_codec.progressive)."""
    return _pass_indices(box)[keep - 1] + 1


def model_limits(model: ModelInfo) -> tuple[int, int] | None:
    """(bits a block, passes) of the model's network, from its config."""
    try:
        return int(model.config["bits"]), int(model.config["passes"])
    except (KeyError, TypeError, ValueError):
        return None


def check_against(p: RnnParams, passes: int, model_bits: int, model_passes: int) -> None:
    if p.bits != model_bits:
        raise FormatError(f"file codes {p.bits} bits a block; this model codes {model_bits}")
    if passes > model_passes:
        raise FormatError(f"file holds {passes} passes; this model decodes at most {model_passes}")


def precheck(box: Box, model: ModelInfo) -> None:
    """Refuse a wrong model or a malformed payload before torch is imported."""
    p = params(box)
    precheck_weights(box.model, box.weights_hash, model)
    limits = model_limits(model)
    if limits is not None:
        check_against(p, len(box.all(PASS)), *limits)


def describe(box: Box) -> dict[str, Any]:
    """The payload's fields for ``caec info``."""
    p = params(box)
    sizes = [len(c) for c in box.all(PASS)]
    pixels = box.width * box.height
    return {
        "coding": CODINGS[p.coding],
        "bits_per_block": p.bits,
        "quality": p.quality,
        "passes": len(sizes),
        "passes_declared": passes(box)[1],
        "pass_bytes": sizes,
        "bpp_after_pass": [round(8 * sum(sizes[: i + 1]) / pixels, 4) for i in range(len(sizes))],
        "decode_steps": len(sizes),
    }


def summary(fields: dict[str, Any]) -> str:
    return f"{fields['passes']} passes, {fields['coding']}"
