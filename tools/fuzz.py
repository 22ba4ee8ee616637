"""Fuzz the .cae reader: malformed files must fail with a CaecError, quickly, never otherwise.

    python tools/fuzz.py --cases 10000          (what `make fuzz` runs)

caec writes container version 2 and still reads version 1 (caec 0.1's files, which must keep
decoding), so the families run on both: the version-2 seeds are files as the codec writes
them, the version-1 seeds the same images rewritten in the old layout (:func:`as_v1`).
Every case is fed to ``api.decode`` and ``api.info`` (both go through ``container.parse``),
and to ``container.read_file`` as a stream, which must give back exactly the bytes of a file
that parse accepts and refuse only files that parse refuses too.
An outcome is "ok" (the file decoded; its shape must match its header) or the class of the
CaecError raised plus the message with its numbers blanked, so that the report groups
errors by kind. Any other exception is a bug: the driver records it, saves the input under
``--crashes`` and exits 1. So is a failing case slower than ``--slow`` seconds, and a file
without a latent (K = 0, a constant image of any size) that takes as long to decode.

Plain random bit flips almost always stop at a CRC check, so most families recompute the
CRCs after mutating, which takes the cases through the header validation, the chunk
parser, the codec's parameters, the JPEG2000 decoder and the network behind them.
tests/test_fuzz.py runs the same families with a few examples each.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import sys
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import imagecodecs
import numpy as np
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from cae_codec import api, container, contract, registry
from cae_codec.cae import payload
from cae_codec.cae.payload import PARAMS_STRUCT
from cae_codec.container import ALPHA, CHUNK_HEAD, CRC, END, HEADER_FIELDS, HEADER_STRUCT, ICC, LATENT, MAGIC, v2
from cae_codec.container.v2 import PARAMS
from cae_codec.errors import CaecError, FormatError
from cae_codec.modelfiles import read_model_info
from cae_codec.stages import j2k, quant
from cae_codec.stages.tiling import TILE

# version 1: a fixed header after the magic
HEADER_START = len(MAGIC)  # the version byte; the header CRC covers version + fields
HEADER_END = HEADER_START + 1 + HEADER_STRUCT.size
FIELDS = list(HEADER_FIELDS)
# struct letter per field, to draw values that fit it
FIELD_FORMATS = dict(zip(FIELDS, re.findall(r"\d*[a-zA-Z]", HEADER_STRUCT.format.lstrip(">")), strict=True))
INT_BITS = {"B": 8, "H": 16, "I": 32}
# version 2: the header fields in file order (u8s, uvarints, the 8-byte hash prefix), as
# header_values_v2 gives and raw_header_v2 takes them; "codec" is the codec's number
V2_FIELDS = ("flags", "codec", "model", "weights_hash", "width", "height", "channels", "count")
V2_VARINTS = ("model", "width", "height", "count")
# the CAE parameters in a PARM payload, in PARAMS_STRUCT order
PARAM_FIELDS = ("tile", "step", "quality", "latent_channels", "components", "mosaic_cols")


# ------------------------------------------------------------------ seed files


def smooth_image(rng: np.random.Generator, h: int, w: int, c: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    chans = [128 + 90 * np.sin(xx / (5.0 + 3 * k) + k) * np.cos(yy / (7.0 + 2 * k)) for k in range(c)]
    noisy = np.stack(chans, axis=2) + rng.normal(0, 4, (h, w, c))
    return np.clip(noisy, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Seeds:
    """The valid files the mutations start from: ``v2`` as the codec writes them, ``v1`` the
    same files in version 1's layout (as_v1), so that both readers are fuzzed."""

    v1: list[bytes]
    v2: list[bytes]


def make_seeds(encode: Callable[[np.ndarray, int], bytes]) -> Seeds:
    """Small valid files of every channel layout; ``encode(image, quality)`` makes them."""
    rng = np.random.default_rng(5)
    shapes = [(40, 56, 3), (33, 20, 4), (17, 23, 1), (24, 24, 2), (130, 9, 3)]
    files = [encode(smooth_image(rng, h, w, c), 7) for h, w, c in shapes]
    # the last one also carries an ICC profile, so that mutations reach the iccp chunk's checks
    box = v2.unpack(files[-1])
    params, *rest = box.chunks
    files[-1] = v2.pack(box.header, [params, (ICC, icc_header(b"RGB ")), *rest])
    return Seeds(v1=[as_v1(f) for f in files], v2=files)


def icc_header(colour_space: bytes) -> bytes:
    """The smallest profile the iccp chunk accepts: an ICC header and an empty tag table.
    Built by hand because a profile from lcms carries its creation time, and the seeds must be
    the same on every run."""
    profile = bytearray(132)
    profile[0:4] = len(profile).to_bytes(4, "big")
    profile[12:24] = b"mntr" + colour_space + b"XYZ "
    profile[36:40] = b"acsp"
    return bytes(profile)


def as_v1(data: bytes) -> bytes:
    """A version-2 ``cae-pca-j2k`` file in version 1's layout, as caec 0.1 wrote it: the same
    image, parameters and chunks (PARM's fields move into the header), so it decodes to the
    same pixels. Version 1 names the model and holds the whole 16-byte weights hash where
    version 2 has a number and an 8-byte prefix, so the model is looked up (api.file_model:
    the zoo, $CAEC_MODELS) and its hash read from the weights' metadata."""
    box = container.parse(data)
    if box.version != v2.VERSION:
        raise ValueError(f"not a version-2 file (version {box.version})")
    found = api.file_model(box)
    weights_hash = read_model_info(found.path).weights_hash
    if weights_hash is None or not weights_hash.startswith(box.weights_hash):
        raise ValueError(f"model {found.name!r} records no weights hash that begins with {box.weights_hash.hex()}")
    p = payload.params(box)
    header = container.Header(
        channels=box.channels,
        width=box.width,
        height=box.height,
        tile=p.tile,
        padded_width=p.padded_width,
        padded_height=p.padded_height,
        codec=box.codec,
        model=found.name,
        weights_hash=weights_hash,
        step=p.step,
        quality=p.quality,
        latent_channels=p.latent_channels,
        components=p.components,
        mosaic_cols=p.mosaic_cols,
    )
    return container.pack(header, [(t, c) for t, c in box.chunks if t != PARAMS])


# ------------------------------------------------------------------ byte-level helpers


def version_of(data: bytes) -> int:
    """The version byte (0 when the file is too short to have one)."""
    return data[len(MAGIC)] if len(data) > len(MAGIC) else 0


def fix_crcs(data: bytes) -> bytes:
    """Recompute the header CRC and the CRC of every chunk whose extent still lies in the file,
    in the layout its version byte names (version 2's for any version but 1)."""
    return _fix_crcs_v1(data) if version_of(data) == container.FORMAT_VERSION else _fix_crcs_v2(data)


def _fix_crcs_v1(data: bytes) -> bytes:
    out = bytearray(data)
    if len(out) >= HEADER_END + CRC.size:
        CRC.pack_into(out, HEADER_END, zlib.crc32(out[HEADER_START:HEADER_END]))
    pos = HEADER_END + CRC.size
    while pos + CHUNK_HEAD.size <= len(out):
        _, length = CHUNK_HEAD.unpack_from(out, pos)
        body = pos + CHUNK_HEAD.size
        if body + length + CRC.size > len(out):
            break
        CRC.pack_into(out, body + length, zlib.crc32(out[pos : pos + 4] + out[body : body + length]))
        pos = body + length + CRC.size
    return bytes(out)


def _any_varint(data: bytes | bytearray, pos: int) -> tuple[int, int] | None:
    """The varint at ``pos`` however long or large (the forms a reader refuses too) and the
    position after it; None when the data ends inside it."""
    value = shift = 0
    while pos < len(data):
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        shift += 7
        pos += 1
        if not byte & 0x80:
            return value, pos
    return None


def _v2_header_end(data: bytes | bytearray) -> int | None:
    """Where a version-2 header's CRC starts, read as leniently as fix_crcs needs."""
    pos = len(MAGIC) + 3  # version, flags, codec number
    for after in (v2.HASH_BYTES, 0, 1, 0):  # model number, hash; width; height, channels; count
        got = _any_varint(data, pos)
        if got is None:
            return None
        pos = got[1] + after
    return pos


def _fix_crcs_v2(data: bytes) -> bytes:
    out = bytearray(data)
    end = _v2_header_end(out)
    if end is None or end + CRC.size > len(out):
        return data
    CRC.pack_into(out, end, zlib.crc32(out[len(MAGIC) : end]))
    pos = end + CRC.size
    while pos + 4 < len(out):
        got = _any_varint(out, pos + 4)
        if got is None:
            break
        length, body = got
        if body + length + CRC.size > len(out):
            break
        CRC.pack_into(out, body + length, zlib.crc32(out[pos : pos + 4] + out[body : body + length]))
        pos = body + length + CRC.size
    return bytes(out)


def first_chunk(data: bytes) -> int:
    """The offset of a valid file's first chunk (the end of its header CRC), either version."""
    if version_of(data) == container.FORMAT_VERSION:
        return HEADER_END + CRC.size
    return v2.read_header(data)[2]


def header_values(data: bytes) -> dict[str, object]:
    """A version-1 file's header fields, raw (text fields as their NUL-padded bytes)."""
    return dict(zip(FIELDS, HEADER_STRUCT.unpack_from(data, HEADER_START + 1), strict=True))


def raw_header(values: dict[str, object], version: int = container.FORMAT_VERSION) -> bytes:
    """Magic, version 1 fields and CRC without any validation (the writer would refuse most)."""
    fixed = bytes([version]) + HEADER_STRUCT.pack(*(values[f] for f in FIELDS))
    return MAGIC + fixed + CRC.pack(zlib.crc32(fixed))


def raw_chunk(ctype: bytes, payload: bytes, declared: int | None = None, crc_ok: bool = True) -> bytes:
    """A version-1 chunk; ``declared`` in place of the payload's length, a wrong CRC unless ``crc_ok``."""
    crc = zlib.crc32(ctype + payload) ^ (0 if crc_ok else 1)
    length = len(payload) if declared is None else declared
    return CHUNK_HEAD.pack(ctype, length) + payload + CRC.pack(crc)


def assemble(header: bytes, chunks: list[tuple[bytes, bytes]]) -> bytes:
    """A version-1 file: ``header`` (raw bytes), the chunks, END_."""
    return header + b"".join(raw_chunk(t, p) for t, p in chunks) + raw_chunk(END, b"")


def leb128(value: int, size: int = 1) -> bytes:
    """``value`` as a LEB128 varint of at least ``size`` bytes, without v2.uvarint's limits: also
    the forms a reader must refuse (longer than needed, over 5 bytes, above 2**32 - 1)."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value or len(out) + 1 < size:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def header_values_v2(data: bytes) -> dict[str, object]:
    """A valid version-2 file's header fields as raw_header_v2 takes them (V2_FIELDS)."""
    h, count, _ = v2.read_header(data)
    return {
        "flags": h.flags,
        "codec": v2.CODEC_NUMBERS[h.codec],
        "model": h.model_number,
        "weights_hash": h.weights_hash,
        "width": h.width,
        "height": h.height,
        "channels": h.channels,
        "count": count,
    }


def _varint_field(value: object) -> bytes:
    """A varint field: an int in its shortest form (any size), or bytes as they are (an odd form)."""
    return value if isinstance(value, bytes) else leb128(int(value))  # type: ignore[call-overload]


def raw_header_v2(values: dict[str, object], version: int = v2.VERSION) -> bytes:
    """Magic, a version-2 header and its CRC without any validation: any u8, any varint (an int,
    or the raw bytes of an odd form), a hash prefix of any length."""
    u8 = [int(values[f]) for f in ("flags", "codec", "channels")]  # type: ignore[call-overload]
    fixed = b"".join(
        [
            bytes([version, u8[0], u8[1]]),
            _varint_field(values["model"]),
            bytes(values["weights_hash"]),  # type: ignore[call-overload]
            _varint_field(values["width"]),
            _varint_field(values["height"]),
            bytes([u8[2]]),
            # the image count is there only with the several-images flag (or when asked for)
            _varint_field(values.get("images", 2)) if "images" in values or u8[0] & v2.FLAG_STACK else b"",
            _varint_field(values["count"]),
        ]
    )
    return MAGIC + fixed + CRC.pack(zlib.crc32(fixed))


def raw_chunk_v2(ctype: bytes, payload: bytes, declared: int | bytes | None = None, crc_ok: bool = True) -> bytes:
    """A version-2 chunk; ``declared`` (an int, or the varint's raw bytes) in place of the
    payload's length, a wrong CRC unless ``crc_ok``."""
    crc = zlib.crc32(ctype + payload) ^ (0 if crc_ok else 1)
    length = leb128(len(payload)) if declared is None else _varint_field(declared)
    return ctype + length + payload + CRC.pack(crc)


def assemble_v2(values: dict[str, object], chunks: list[tuple[bytes, bytes]], count: object = None) -> bytes:
    """A version-2 file of header ``values`` and ``chunks`` (CRCs valid); the header's chunk
    count is ``count`` (an int or raw varint bytes), by default the number of chunks."""
    header = raw_header_v2({**values, "count": len(chunks) if count is None else count})
    return header + b"".join(raw_chunk_v2(t, p) for t, p in chunks)


def chunks_of(data: bytes) -> list[tuple[bytes, bytes]]:
    """A valid file's chunks in order, either version (version 1's without END_)."""
    if version_of(data) == container.FORMAT_VERSION:
        return list(container.unpack(data).chunks.items())
    return list(v2.unpack(data).chunks)


def with_chunks(data: bytes, chunks: list[tuple[bytes, bytes]]) -> bytes:
    """A valid file's header (either version) with ``chunks`` in place of its own, CRCs valid."""
    if version_of(data) == container.FORMAT_VERSION:
        return assemble(data[: HEADER_END + CRC.size], chunks)
    return assemble_v2(header_values_v2(data), chunks)


def params_values(data: bytes) -> dict[str, object]:
    """A valid version-2 file's PARM fields (PARAM_FIELDS)."""
    return dict(zip(PARAM_FIELDS, PARAMS_STRUCT.unpack(chunks_of(data)[0][1]), strict=True))


def raw_params(values: dict[str, object]) -> bytes:
    """A PARM payload of ``values`` without validation."""
    return PARAMS_STRUCT.pack(*(values[f] for f in PARAM_FIELDS))


# ------------------------------------------------------------------ strategies

INTERESTING_INTS = [0, 1, 2, 3, 7, 8, 15, 16, 17, 31, 127, 128, 129, 255, 256, 4095, 4096, 65535, 65536]
INTERESTING_INTS += [60000, 100000, 100096, 1 << 20, (1 << 20) + 1, 2**31 - 1, 2**31, 2**32 - 1]
# varints may also hold what no field allows: above 2**32 - 1, up to what 5 bytes and more hold
INTERESTING_VARINTS = [*INTERESTING_INTS, 4097, 16383, 16384, 2**32, 2**35 - 1, 2**35, 2**64]
INTERESTING_FLOATS = [0.0, -0.0, -1.0, 1e-45, 1e-38, 0.5, 1.0, 3.0, 1e5, 1e6, 3e38, float("inf"), float("nan")]
INTERESTING_NAMES = [
    b"",
    b"../../../../etc/passwd",
    b"/dev/zero",
    b"/dev/stdin",
    b"model.pt",
    b"no-such-model",
    b"bad\nname",
    b"\x1b[31mred",
    b"\xff\xfe",
    b"a\0b",
]


def _field_value(name: str, original: object) -> st.SearchStrategy[object]:
    fmt = FIELD_FORMATS[name]
    if fmt == "f":
        return st.one_of(st.sampled_from(INTERESTING_FLOATS), st.floats(width=32))
    if fmt.endswith("s"):
        size = int(fmt[:-1])
        texts = st.sampled_from([n[:size] for n in INTERESTING_NAMES])
        return st.one_of(texts, st.binary(max_size=size)).map(lambda b: b.ljust(size, b"\0")[:size])
    return _int_value(INT_BITS[fmt], original)


def _int_value(bits: int, original: object) -> st.SearchStrategy[object]:
    """A value of an unsigned ``bits``-bit field: a boundary, a neighbour of ``original``, any."""
    top = 2**bits - 1
    assert isinstance(original, int)
    near = [v for v in (original - 1, original + 1, original * 2, original // 2) if 0 <= v <= top]
    fits = [v for v in INTERESTING_INTS if v <= top]
    return st.one_of(st.sampled_from(fits + near), st.integers(0, top))


@st.composite
def forged_headers(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """Version 1: 1-4 header fields set to boundary or random values, with a valid header CRC."""
    data = draw(st.sampled_from(seeds))
    values = header_values(data)
    for name in draw(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=4, unique=True)):
        values[name] = draw(_field_value(name, values[name]))
    # keep the padded size consistent with a changed size half the time, so that cases get
    # past the consistency checks to the limits and the chunk shapes behind them
    if draw(st.booleans()):
        tile = int(values["tile"]) or 1  # type: ignore[call-overload]
        for side in ("width", "height"):
            padded = -(-int(values[side]) // tile) * tile  # type: ignore[call-overload]
            if padded < 2**32:
                values[f"padded_{side}"] = padded
    # now and then another version byte: version 2's reader then meets version 1's header
    others = [0, v2.VERSION, max(container.VERSIONS) + 1, 255]
    version = draw(st.sampled_from([container.FORMAT_VERSION] * 6 + others))
    return raw_header(values, version) + data[HEADER_END + CRC.size :]


def varint_forms(values: st.SearchStrategy[int]) -> st.SearchStrategy[object]:
    """A varint field's drawn value: mostly an int (written in its shortest form, however large),
    sometimes raw bytes: a longer form than needed, more than 5 bytes, or random bytes."""
    overlong = st.tuples(values, st.integers(2, 7)).map(lambda v: leb128(*v))
    return st.one_of(values, values, values, overlong, st.binary(min_size=1, max_size=6))


def _v2_field_value(name: str, original: object) -> st.SearchStrategy[object]:
    if name == "weights_hash":
        # a wrong length shifts every field after it
        return st.one_of(st.binary(min_size=8, max_size=8), st.just(bytes(8)), st.binary(max_size=12))
    if name not in V2_VARINTS:
        return _int_value(8, original)
    assert isinstance(original, int)
    near = [v for v in (original - 1, original + 1, original * 2, original // 2) if v >= 0]
    return varint_forms(st.one_of(st.sampled_from(INTERESTING_VARINTS + near), st.integers(0, 2**36)))


@st.composite
def forged_headers_v2(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """Version 2: 1-4 header fields (flags, codec number, model number, hash prefix, sides,
    channels, chunk count) set to boundary or random values, varints also in odd forms, with a
    valid header CRC; now and then another version byte."""
    data = draw(st.sampled_from(seeds))
    values = header_values_v2(data)
    for name in draw(st.lists(st.sampled_from(V2_FIELDS), min_size=1, max_size=4, unique=True)):
        values[name] = draw(_v2_field_value(name, values[name]))
    version = draw(st.sampled_from([v2.VERSION] * 6 + [0, container.FORMAT_VERSION, max(container.VERSIONS) + 1]))
    return raw_header_v2(values, version) + data[first_chunk(data) :]


@st.composite
def bit_flips(draw: st.DrawFn, seeds: list[bytes], recompute_crcs: bool) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for bit in draw(st.lists(st.integers(0, 8 * len(data) - 1), min_size=1, max_size=8)):
        data[bit // 8] ^= 1 << (bit % 8)
    return fix_crcs(bytes(data)) if recompute_crcs else bytes(data)


@st.composite
def byte_edits(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """Overwrite, insert or delete byte runs anywhere, then recompute the CRCs."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["set", "insert", "delete"]))
        blob = draw(st.one_of(st.binary(min_size=1, max_size=8), st.sampled_from([b"\x00", b"\xff", b"\x80", b"\x7f"])))
        if kind == "set":
            data[pos : pos + len(blob)] = blob
        elif kind == "insert":
            data[pos:pos] = blob
        else:
            del data[pos : pos + draw(st.integers(1, 16))]
    return fix_crcs(bytes(data))


@st.composite
def chunk_layouts(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """Version 1: valid header, then a drawn chunk sequence: wrong lengths, types, order, CRCs,
    endings."""
    data = draw(st.sampled_from(seeds))
    header = data[: HEADER_END + CRC.size]
    real = chunks_of(data)
    payloads = st.one_of(st.sampled_from([p for _, p in real] or [b""]), st.binary(max_size=64))
    known = [LATENT, ALPHA, ICC, END, b"note", b"NEWX", b"L\x00TN"]
    ctypes = st.one_of(st.sampled_from(known), st.binary(min_size=4, max_size=4))
    lengths = st.one_of(
        st.none(),
        st.none(),
        st.sampled_from([0, 1, 2**31 - 1, 2**31, 2**32 - 1]),
        st.integers(0, 2**32 - 1),
    )
    body = b""
    for _ in range(draw(st.integers(0, 5))):
        body += raw_chunk(draw(ctypes), draw(payloads), draw(lengths), draw(st.booleans() | st.just(True)))
    ending = draw(st.sampled_from(["end", "end", "none", "end+garbage", "end-with-payload", "truncated-end"]))
    if ending == "end":
        body += raw_chunk(END, b"")
    elif ending == "end+garbage":
        body += raw_chunk(END, b"") + draw(st.binary(min_size=1, max_size=16))
    elif ending == "end-with-payload":
        body += raw_chunk(END, b"x")
    elif ending == "truncated-end":
        body += raw_chunk(END, b"")[: draw(st.integers(0, 11))]
    return header + body


@st.composite
def chunk_layouts_v2(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """Version 2: valid header fields, then the file's chunks dropped, repeated, reordered, or
    joined by drawn ones (wrong types, lengths in odd varint forms, CRCs), under a chunk count
    that matches them or not, ending exactly, with trailing bytes, or cut inside the last."""
    data = draw(st.sampled_from(seeds))
    values = header_values_v2(data)
    real = chunks_of(data)
    payloads = st.one_of(st.sampled_from([p for _, p in real]), st.binary(max_size=64))
    known = [PARAMS, LATENT, ALPHA, ICC, END, b"note", b"NEWX", b"L\x00TN"]
    ctypes = st.one_of(st.sampled_from(known), st.binary(min_size=4, max_size=4))
    lengths = st.one_of(
        st.none(),
        st.none(),
        varint_forms(st.sampled_from([0, 1, 2**31 - 1, 2**32 - 1, 2**32, 2**35 - 1]) | st.integers(0, 2**33)),
    )
    chunks = [raw_chunk_v2(t, p) for t, p in real]
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["drop", "repeat", "swap", "insert", "insert"]))
        i = draw(st.integers(0, max(0, len(chunks) - 1)))
        j = draw(st.integers(0, len(chunks)))
        if kind == "drop" and chunks:
            del chunks[i]
        elif kind == "repeat" and chunks:
            chunks.insert(j, chunks[i])
        elif kind == "swap" and len(chunks) > 1:
            chunks[i], chunks[j - 1] = chunks[j - 1], chunks[i]
        else:
            declared = draw(lengths)
            assert declared is None or isinstance(declared, int | bytes)
            crc_ok = draw(st.booleans() | st.just(True))
            chunks.insert(j, raw_chunk_v2(draw(ctypes), draw(payloads), declared, crc_ok))
    count = draw(st.sampled_from([len(chunks)] * 4 + [len(chunks) + 1, max(0, len(chunks) - 1), 0, v2.MAX_CHUNKS]))
    body = b"".join(chunks)
    ending = draw(st.sampled_from(["exact", "exact", "garbage", "cut"]))
    if ending == "garbage":
        body += draw(st.binary(min_size=1, max_size=16))
    elif ending == "cut" and chunks:
        body = body[: len(body) - draw(st.integers(1, len(chunks[-1])))]
    return raw_header_v2({**values, "count": count}) + body


@st.composite
def parameter_mutations(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """Version 2's PARM chunk (the CAE parameters) with 1-3 fields set to boundary or random
    values, or cut short, or longer, in an otherwise valid file (CRCs valid)."""
    data = draw(st.sampled_from(seeds))
    fields = params_values(data)
    for name in draw(st.lists(st.sampled_from(PARAM_FIELDS), min_size=1, max_size=3, unique=True)):
        if name == "step":
            fields[name] = draw(st.one_of(st.sampled_from(INTERESTING_FLOATS), st.floats(width=32)))
        else:
            fields[name] = draw(_int_value(8 if name == "quality" else 16, fields[name]))
    raw = raw_params(fields)
    size = draw(st.sampled_from(["as is"] * 4 + ["short", "long"]))
    if size == "short":
        raw = raw[: draw(st.integers(0, len(raw) - 1))]
    elif size == "long":
        raw += draw(st.binary(min_size=1, max_size=8))
    chunks = chunks_of(data)
    chunks[0] = (PARAMS, raw)
    return with_chunks(data, chunks)


@st.composite
def codestream_mutations(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A valid container (either version) around a damaged chunk: a JPEG2000 codestream (latent
    or alpha), the ICC profile where the seed has one, version 2's PARM."""
    data = draw(st.sampled_from(seeds))
    chunks = chunks_of(data)
    which = draw(st.integers(0, len(chunks) - 1))
    ctype, stream = chunks[which]
    raw = bytearray(stream)
    kind = draw(st.sampled_from(["flip", "flip", "set", "truncate", "insert", "delete", "marker"]))
    pos = draw(st.integers(0, len(raw) - 1))
    if kind == "flip":
        for bit in draw(st.lists(st.integers(0, 8 * len(raw) - 1), min_size=1, max_size=6)):
            raw[bit // 8] ^= 1 << (bit % 8)
    elif kind == "set":
        value = draw(st.sampled_from([b"\x00", b"\xff", b"\x80", b"\x7f", b"\xff\xff", b"\x00\x00\x00\x00"]))
        raw[pos : pos + len(value)] = value
    elif kind == "truncate":
        del raw[pos:]
    elif kind == "insert":
        raw[pos:pos] = draw(st.binary(min_size=1, max_size=32))
    elif kind == "delete":
        del raw[pos : pos + draw(st.integers(1, 64))]
    else:
        # the main-header fields OpenJPEG sizes its buffers from: SIZ (image, tiles,
        # components, precision) and COD (layers, levels, code-block size)
        offset = draw(st.integers(4, min(len(raw), 80) - 2))
        raw[offset : offset + 2] = draw(st.integers(0, 0xFFFF)).to_bytes(2, "big")
    chunks[which] = (ctype, bytes(raw))
    return with_chunks(data, chunks)


@st.composite
def foreign_codestreams(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """Valid JPEG2000 of the wrong shape, sample type or component count in a valid container."""
    data = draw(st.sampled_from(seeds))
    chunks = chunks_of(data)
    which = draw(st.sampled_from([i for i, (ctype, _) in enumerate(chunks) if ctype in (LATENT, ALPHA)]))
    genuine = j2k.read_siz(chunks[which][1])
    # the right size half the time, so that the sample type and component checks are reached
    right_size = st.just((genuine.height, genuine.width))
    h, w = draw(st.one_of(right_size, st.tuples(st.integers(1, 80), st.integers(1, 80))))
    dtype = draw(st.sampled_from([np.uint8, np.int8, np.uint16, np.int16, np.int32]))
    channels = draw(st.sampled_from([1, 1, 3]))
    shape = (h, w) if channels == 1 else (h, w, channels)
    plane = np.zeros(shape, dtype=dtype)
    stream = bytes(imagecodecs.jpeg2k_encode(plane, level=0, codecformat="J2K", reversible=True))
    chunks[which] = (chunks[which][0], stream)
    return with_chunks(data, chunks)


def forged_huge_header(seed_file: bytes, width: int, height: int) -> bytes:
    """``seed_file`` (either version) with its header claiming ``width`` x ``height`` (version
    1's padded size to match), its chunks unchanged."""
    if version_of(seed_file) != container.FORMAT_VERSION:
        values = header_values_v2(seed_file)
        values.update(width=width, height=height)
        return raw_header_v2(values) + seed_file[first_chunk(seed_file) :]
    values = header_values(seed_file)
    tile = int(values["tile"])  # type: ignore[call-overload]
    values.update(width=width, height=height)
    values.update(padded_width=-(-width // tile) * tile, padded_height=-(-height // tile) * tile)
    return raw_header(values) + seed_file[HEADER_END + CRC.size :]


def truncations(data: bytes) -> list[bytes]:
    return [data[:n] for n in range(len(data))]


# ------------------------------------------------------------------ comcnn's files


def make_comcnn_seeds(encode: Callable[[np.ndarray, int], bytes]) -> list[bytes]:
    """Small valid comcnn files (the compact image coded by the model's inner codec) of every
    channel layout, odd sizes."""
    rng = np.random.default_rng(6)
    shapes = [(40, 56, 3), (33, 21, 4), (17, 23, 1), (9, 8, 2), (1, 1, 3)]
    return [encode(smooth_image(rng, h, w, c), 30) for h, w, c in shapes]


def jpeg_of_frame(width: int, height: int, components: int) -> bytes:
    """A real JPEG of 8x8 pixels whose frame header is rewritten to declare width x height: what a
    decompression bomb looks like from outside (a few hundred bytes claiming a huge image)."""
    shape = (8, 8) if components == 1 else (8, 8, 3)
    raw = bytearray(imagecodecs.jpeg8_encode(np.zeros(shape, np.uint8), level=50))
    at = raw.find(b"\xff\xc0")
    raw[at + 5 : at + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(raw)


def inner_bomb(name: str, width: int, height: int, components: int) -> bytes:
    """A real 8x8 codestream of comcnn's inner codec ``name`` whose headers are rewritten to
    declare width x height (JPEG's SOF, JPEG 2000's SIZ and tile, WebP's VP8 frame header, AVIF's
    ispe): a decompression bomb seen from outside, a few hundred bytes claiming a huge image."""
    if name == "jpeg":
        return jpeg_of_frame(width, height, components)
    from cae_codec.comcnn import inner

    raw = bytearray(inner.encode(np.zeros((8, 8, 1 if components == 1 else 3), np.uint8), 30, name))
    if name == "jpeg2000":  # SOC, SIZ marker, Lsiz, Rsiz, then Xsiz, Ysiz, XOsiz, YOsiz, XTsiz, YTsiz
        raw[8:16] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
        raw[24:32] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    elif name == "webp":  # 14 bits each after the VP8 start code
        raw[26:30] = (width & 0x3FFF).to_bytes(2, "little") + (height & 0x3FFF).to_bytes(2, "little")
    else:  # avif: ispe's width and height after its version and flags
        at = raw.index(b"ispe") + 8
        raw[at : at + 8] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    return bytes(raw)


@st.composite
def foreign_inner_codestreams(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A comcnn file whose compact image chunk holds another valid codestream: of its own inner
    codec at the wrong size or component count (the right ones half the time), of another inner
    codec at the right size, a JPEG lossless or 12-bit, or headers forged to a huge size."""
    from cae_codec.comcnn import inner
    from cae_codec.comcnn import payload as comcnn_payload
    from cae_codec.comcnn.frames import BY_CHUNK, INNER_CODECS

    data = draw(st.sampled_from(seeds))
    chunks = chunks_of(data)
    which = next(i for i, (ctype, _) in enumerate(chunks) if ctype in comcnn_payload.INNER_CHUNKS)
    own = BY_CHUNK[chunks[which][0]]
    genuine = own.read_frame(chunks[which][1])
    kind = draw(st.sampled_from(["encoded", "encoded", "other codec", "bomb"]))
    if kind == "bomb":
        big = 16383 if own.name == "webp" else 65535  # VP8 has 14 bits a side
        w, h = draw(st.sampled_from([(big, big), (big, 1), (genuine.width, big), (0, genuine.height)]))
        stream = inner_bomb(own.name, w, h, genuine.components)
    else:
        right_size = st.just((genuine.height, genuine.width))
        h, w = draw(st.one_of(right_size, st.tuples(st.integers(1, 80), st.integers(1, 80))))
        grey = draw(st.booleans())
        img = np.zeros((h, w, 1 if grey else 3), np.uint8)
        name = own.name
        if kind == "other codec":
            name = draw(st.sampled_from([n for n in INNER_CODECS if n != own.name]))
            img = np.zeros((genuine.height, genuine.width, genuine.components), np.uint8)
        flavour = draw(st.sampled_from(["plain", "plain", "lossless", "12-bit"])) if name == "jpeg" else "plain"
        pixels = img[:, :, 0] if img.shape[2] == 1 else img
        if flavour == "lossless":
            stream = bytes(imagecodecs.jpeg8_encode(pixels, lossless=True))
        elif flavour == "12-bit":
            stream = bytes(imagecodecs.jpeg8_encode(pixels.astype(np.uint16) * 16, level=50, bitspersample=12))
        else:
            stream = inner.encode(img, draw(st.integers(1, 100)) * INNER_CODECS[name].quality_scale, name)
    chunks[which] = (chunks[which][0], stream)
    return with_chunks(data, chunks)


# families on comcnn's files (the generic mutations and its inner codestream's), run on seeds of
# a comcnn model when one is there (tools/fuzz.py --comcnn-model)
COMCNN_FAMILIES: dict[str, Callable[[list[bytes]], st.SearchStrategy[bytes]]] = {
    "comcnn-bit-flips+crc": lambda s: bit_flips(s, recompute_crcs=True),
    "comcnn-byte-edits+crc": lambda s: byte_edits(s),
    "comcnn-forged-header": lambda s: forged_headers_v2(s),
    "comcnn-chunk-layout": lambda s: chunk_layouts_v2(s),
    "comcnn-inner-mutation": lambda s: codestream_mutations(s),
    "comcnn-inner-foreign": lambda s: foreign_inner_codestreams(s),
}


# ------------------------------------------------------------------ rnn's files


def make_rnn_seeds(encode: Callable[[np.ndarray, int], bytes]) -> list[bytes]:
    """Small valid rnn files (progressive: PARM, ALPH for alpha, one PASS a pass) of every
    channel layout, odd sizes, 1 to 3 passes."""
    rng = np.random.default_rng(7)
    shapes = [(40, 56, 3, 3), (33, 21, 4, 2), (17, 23, 1, 3), (9, 8, 2, 1), (1, 1, 3, 2)]
    return [encode(smooth_image(rng, h, w, c), passes) for h, w, c, passes in shapes]


# families on rnn's files, run on seeds of an rnn model when one is there (--rnn-model); a cut or
# a flip that leaves whole passes must decode them (a coarser image), anything else fail on one line
RNN_FAMILIES: dict[str, Callable[[list[bytes]], st.SearchStrategy[bytes]]] = {
    "rnn-bit-flips+crc": lambda s: bit_flips(s, recompute_crcs=True),
    "rnn-bit-flips": lambda s: bit_flips(s, recompute_crcs=False),
    "rnn-byte-edits+crc": lambda s: byte_edits(s),
    "rnn-forged-header": lambda s: forged_headers_v2(s),
    "rnn-chunk-layout": lambda s: chunk_layouts_v2(s),
}


# ------------------------------------------------------------------ files without a latent

# largest drawn side of a file without a latent: 100 tiles, a fraction of a second to decode
EMPTY_LATENT_SIDE = 1200


def empty_latent_file(seed_file: bytes, width: int, height: int, channels: int, step: float | None = None) -> bytes:
    """A valid file of ``seed_file``'s model and version with no latent (K = 0): the header,
    (version 2) PARM, an opaque alpha plane when ``channels`` has alpha, (version 1) END_. It
    decodes to the same tile everywhere."""
    chunks = []
    if channels in (2, 4):
        chunks.append((ALPHA, j2k.encode_plane(np.full((height, width), 255, np.uint8), j2k.ALPHA_LEVELS)))
    if version_of(seed_file) != container.FORMAT_VERSION:
        values = header_values_v2(seed_file)
        values.update(width=width, height=height, channels=channels)
        params = params_values(seed_file)
        params.update(components=0, mosaic_cols=0)
        if step is not None:
            params["step"] = step
        return assemble_v2(values, [(PARAMS, raw_params(params)), *chunks])
    values = header_values(seed_file)
    tile = int(values["tile"])  # type: ignore[call-overload]
    values.update(width=width, height=height, channels=channels, components=0, mosaic_cols=0)
    values.update(padded_width=-(-width // tile) * tile, padded_height=-(-height // tile) * tile)
    if step is not None:
        values["step"] = step
    return assemble(raw_header(values), chunks)


@st.composite
def empty_latents(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """Files without a latent of drawn sizes, layouts and steps (every decoder band); now and
    then with a stray latent chunk, which such a file has no room for (version 1: the header's
    limits; version 2: the CAE's checks)."""
    size = st.integers(1, EMPTY_LATENT_SIDE)
    steps = st.sampled_from([quant.STEP_MIN, quant.step_for_quality(quant.QUALITY_DEFAULT), quant.STEP_MAX])
    step = draw(steps | st.floats(quant.STEP_MIN, quant.STEP_MAX, width=32))
    data = empty_latent_file(draw(st.sampled_from(seeds)), draw(size), draw(size), draw(st.integers(1, 4)), step)
    if draw(st.integers(0, 3)) == 0:
        chunks = chunks_of(data)
        stray = (LATENT, draw(st.binary(min_size=1, max_size=64)))
        # in version 2 after PARM, which must stay first
        at = draw(st.integers(0 if version_of(data) == container.FORMAT_VERSION else 1, len(chunks)))
        data = with_chunks(data, [*chunks[:at], stray, *chunks[at:]])
    return data


# ------------------------------------------------------------------ hostile streams


class EndlessStream(io.RawIOBase):
    """``data``, then ``tail`` repeated without end (nothing when empty), like /dev/zero or a
    pipe from a process that never stops writing; ``taken`` counts the bytes handed out."""

    def __init__(self, data: bytes, tail: bytes = b"") -> None:
        self.data = data
        self.tail = tail
        self.taken = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = len(buffer)
        if self.taken < len(self.data):
            piece = self.data[self.taken : self.taken + n]
        elif self.tail:
            # one endless repetition, whatever the sizes of the reads
            start = (self.taken - len(self.data)) % len(self.tail)
            piece = (self.tail * (n // len(self.tail) + 2))[start : start + n]
        else:
            piece = b""
        buffer[: len(piece)] = piece
        self.taken += len(piece)
        return len(piece)


def hostile_streams(seed_file: bytes) -> dict[str, tuple[bytes, bytes, int]]:
    """name -> (data, endless tail, the most bytes container.read_file may take before refusing),
    built on ``seed_file``'s header in its version's layout."""
    if version_of(seed_file) != container.FORMAT_VERSION:
        return _hostile_streams_v2(seed_file)
    header = seed_file[: HEADER_END + CRC.size]
    hd = container.unpack(seed_file).header
    over = container.chunk_limit(hd, LATENT) + 1
    half = container.MAX_ANCILLARY_BYTES // 2 + 1
    note = CHUNK_HEAD.pack(b"note", half) + bytes(half) + CRC.pack(zlib.crc32(b"note" + bytes(half)))
    empty_chunk = raw_chunk(b"note", b"")
    chunks_allowed = len(header) + (container.MAX_CHUNKS + 1) * len(empty_chunk)
    huge = empty_latent_file(seed_file, 13377, 13377, 3)
    return {
        "dev-zero": (b"", b"\0", len(MAGIC)),
        "png": (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", b"\0", len(MAGIC)),
        "latent-over-limit": (header + CHUNK_HEAD.pack(LATENT, over), b"\0", len(header) + CHUNK_HEAD.size),
        "u32-length": (header + CHUNK_HEAD.pack(b"note", 2**32 - 1), b"\xff", len(header) + CHUNK_HEAD.size),
        "ancillary-over-budget": (header + note + CHUNK_HEAD.pack(b"more", half), b"\0", len(header) + len(note) + 8),
        "endless-chunks": (header, empty_chunk, chunks_allowed),
        "header-then-zeros": (header, b"\0", chunks_allowed),
        "huge-header-then-zeros": (huge[: HEADER_END + CRC.size], b"\0", chunks_allowed),
        "trailing-data": (seed_file, b"x", len(seed_file) + 1),
        "huge-header-trailing-data": (huge, b"\0", len(huge) + 1),
    }


def _hostile_streams_v2(seed_file: bytes) -> dict[str, tuple[bytes, bytes, int]]:
    start = first_chunk(seed_file)
    header = seed_file[:start]
    values = header_values_v2(seed_file)
    limit = v2.read_header(seed_file)[0].chunk_limit()
    count = int(values["count"])  # type: ignore[call-overload]
    # the reader takes the longest header there can be at once: its first read, whatever follows
    at_least = v2.MAX_HEADER_BYTES

    def after(head: bytes, chunks: int, chunk_bytes: int) -> int:
        """What reading ``head``, ``chunks`` chunks of ``chunk_bytes`` and the one byte that
        shows there is more takes."""
        return max(at_least, len(head) + chunks * chunk_bytes + 1)

    empty_chunk = raw_chunk_v2(b"note", b"")
    most = raw_header_v2({**values, "count": v2.MAX_CHUNKS})
    huge = empty_latent_file(seed_file, 13377, 13377, 3)
    huge_start = first_chunk(huge)
    huge_most = raw_header_v2({**header_values_v2(huge), "count": v2.MAX_CHUNKS})
    # ancillary chunks share one budget: two halves of it need a header that allows a half
    roomy = raw_header_v2({**values, "width": 2000, "height": 2000, "count": 3})
    half = v2.MAX_ANCILLARY_BYTES // 2 + 1
    note = raw_chunk_v2(b"note", bytes(half))
    # the type and length of a chunk of zeros come with the header's read, or just after it
    zeros_most = max(at_least, start + 4 + 1)
    return {
        "dev-zero": (b"", b"\0", len(MAGIC)),
        "png": (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", b"\0", len(MAGIC)),
        "latent-over-limit": (header + LATENT + leb128(limit + 1), b"\0", max(at_least, start + 4 + 5)),
        "u32-length": (header + b"note" + leb128(2**32 - 1), b"\xff", max(at_least, start + 4 + 5)),
        "length-over-5-bytes": (header + b"note", b"\xff", max(at_least, start + 4 + 5)),
        "length-over-u32": (header + b"note" + b"\xff" * 4 + b"\x7f", b"\0", max(at_least, start + 4 + 5)),
        "length-overlong": (header + b"note" + b"\x80\x00", b"\0", max(at_least, start + 4 + 2)),
        "header-varint-endless": (MAGIC + bytes([v2.VERSION, 0, 1]), b"\x80", at_least),
        "too-many-chunks": (raw_header_v2({**values, "count": v2.MAX_CHUNKS + 1}), b"\0", at_least),
        "ancillary-over-budget": (roomy + note + b"more" + leb128(half), b"\0", len(roomy) + len(note) + 4 + 4),
        "icc-over-limit": (header + ICC + leb128(v2.MAX_ICC_BYTES + 1), b"\0", max(at_least, start + 4 + 3)),
        "endless-chunks": (header, empty_chunk, after(header, count, len(empty_chunk))),
        "most-chunks-then-endless": (most, empty_chunk, after(most, v2.MAX_CHUNKS, len(empty_chunk))),
        "huge-most-chunks-then-endless": (huge_most, empty_chunk, after(huge_most, v2.MAX_CHUNKS, len(empty_chunk))),
        "header-then-zeros": (header, b"\0", zeros_most),
        "huge-header-then-zeros": (huge[:huge_start], b"\0", max(at_least, huge_start + 4 + 1)),
        "trailing-data": (seed_file, b"x", len(seed_file) + 1),
        "huge-header-trailing-data": (huge, b"\0", len(huge) + 1),
    }


def stream_outcome(data: bytes, tail: bytes, most: int) -> str:
    """The kind of FormatError container.read_file raises on an endless stream; a stream it
    accepts, or reads more than ``most`` bytes of, is a bug."""
    stream = EndlessStream(data, tail)
    try:
        container.read_file(stream, "stream")  # type: ignore[arg-type]  # a RawIOBase reads as one
    except FormatError as e:
        if stream.taken > most:
            raise AssertionError(f"read {stream.taken} bytes (at most {most} expected) before: {e}") from e
        return _kind(e)
    raise AssertionError("an endless stream was accepted")


def check_read_file(data: bytes) -> None:
    """container.read_file must agree with parse on ``data``: the same bytes back for a file it
    accepts (one parse accepts among them), a one-line FormatError only if parse refuses too."""
    try:
        got = container.read_file(io.BytesIO(data), "case")
    except FormatError as e:
        if "\n" in str(e):
            raise AssertionError(f"read_file error is not one line: {str(e)!r}") from e
        try:
            container.parse(data)
        except FormatError:
            return
        raise AssertionError(f"read_file refused a file parse accepts: {e}") from None
    if got != data:
        raise AssertionError(f"read_file gave {len(got)} of {len(data)} bytes")


SHOWN_KINDS = 12  # outcome kinds listed per family in the report

Family = Callable[[Seeds], st.SearchStrategy[bytes]]
FAMILIES: dict[str, Family] = {
    "v1-bit-flips": lambda s: bit_flips(s.v1, recompute_crcs=False),
    "v1-bit-flips+crc": lambda s: bit_flips(s.v1, recompute_crcs=True),
    "v1-byte-edits+crc": lambda s: byte_edits(s.v1),
    "v1-forged-header": lambda s: forged_headers(s.v1),
    "v1-chunk-layout": lambda s: chunk_layouts(s.v1),
    "v1-j2k-mutation": lambda s: codestream_mutations(s.v1),
    "v1-j2k-foreign": lambda s: foreign_codestreams(s.v1),
    "v1-empty-latent": lambda s: empty_latents(s.v1),
    "v2-bit-flips": lambda s: bit_flips(s.v2, recompute_crcs=False),
    "v2-bit-flips+crc": lambda s: bit_flips(s.v2, recompute_crcs=True),
    "v2-byte-edits+crc": lambda s: byte_edits(s.v2),
    "v2-forged-header": lambda s: forged_headers_v2(s.v2),
    "v2-chunk-layout": lambda s: chunk_layouts_v2(s.v2),
    "v2-parameters": lambda s: parameter_mutations(s.v2),
    "v2-chunk-mutation": lambda s: codestream_mutations(s.v2),
    "v2-j2k-foreign": lambda s: foreign_codestreams(s.v2),
    "v2-empty-latent": lambda s: empty_latents(s.v2),
    "random-bytes": lambda s: st.one_of(
        st.binary(max_size=200),
        st.binary(max_size=200).map(lambda b: MAGIC + b),
        st.tuples(st.sampled_from(container.VERSIONS), st.binary(max_size=200)).map(
            lambda v: MAGIC + bytes([v[0]]) + v[1]
        ),
    ),
}


# ------------------------------------------------------------------ running a case


def _kind(err: CaecError) -> str:
    text = re.sub(r"\bweights [0-9a-f]+", "weights H", str(err))
    text = re.sub(r"\d+(x\d+)+", "WxH", text)
    text = re.sub(r"(?<![A-Za-z])(0x[0-9a-f]+|\d+(\.\d+)?(e[-+]?\d+)?)", "N", text)
    text = re.sub(r"'[^']*'|b'[^']*'|\"[^\"]*\"", "'…'", text)
    return f"{type(err).__name__}: {text[:70]}"


OK = "ok"
# a file without a latent decoded: the one kind of valid file that must be fast at any size
OK_NO_LATENT = "ok (no latent)"


def decode_outcome(data: bytes) -> str:
    """OK, OK_NO_LATENT or the kind of CaecError; anything else propagates (that is a bug)."""
    check_read_file(data)  # what `caec decode` and `caec info` read files and stdin with
    with contextlib.suppress(CaecError):  # `caec info` reads the same header and chunks
        api.info(data)
    try:
        img = api.decode(data, device="cpu")
    except CaecError as e:
        if "\n" in str(e) or not str(e):
            raise AssertionError(f"error message is not one line: {str(e)!r}") from e
        return _kind(e)
    box = container.parse(data)
    if img.shape != (box.height, box.width, box.channels) or img.dtype != np.uint8:
        raise AssertionError(f"decoded {img.shape} {img.dtype} for a {box.width}x{box.height}x{box.channels} header")
    if box.codec != registry.DEFAULT_CODEC or payload.params(box).components:
        return OK
    # every tile decodes from the same input (the PCA mean), so the picture repeats tile by tile
    pixels = img[:, :, : 3 if box.channels >= 3 else 1]
    if not (np.array_equal(pixels[TILE:], pixels[:-TILE]) and np.array_equal(pixels[:, TILE:], pixels[:, :-TILE])):
        raise AssertionError("a file without a latent decoded to tiles that differ")
    return OK_NO_LATENT


@dataclass
class Report:
    family: str
    cases: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    bugs: list[tuple[bytes, str]] = field(default_factory=list)
    slow: list[tuple[bytes, float]] = field(default_factory=list)
    worst_s: float = 0.0
    worst_error_s: float = 0.0  # the slowest case that ended in an error (a malformed file)
    total_s: float = 0.0


def run_one(report: Report, data: bytes, slow_s: float) -> None:
    t0 = time.perf_counter()
    try:
        outcome = decode_outcome(data)
    except Exception as e:  # anything not a CaecError is what this driver looks for
        outcome = "BUG"
        report.bugs.append((data, f"{type(e).__name__}: {e}"))
    dt = time.perf_counter() - t0
    report.cases += 1
    report.outcomes[outcome] += 1
    report.total_s += dt
    report.worst_s = max(report.worst_s, dt)
    if not outcome.startswith(OK):
        report.worst_error_s = max(report.worst_error_s, dt)
    if outcome != OK and dt > slow_s:
        report.slow.append((data, dt))


def run_stream(report: Report, data: bytes, tail: bytes, most: int, slow_s: float) -> None:
    """One endless stream through container.read_file (stream_outcome), counted like run_one."""
    t0 = time.perf_counter()
    try:
        outcome = stream_outcome(data, tail, most)
    except AssertionError as e:
        outcome = "BUG"
        report.bugs.append((data, str(e)))
    dt = time.perf_counter() - t0
    report.cases += 1
    report.outcomes[outcome] += 1
    report.total_s += dt
    report.worst_s = report.worst_error_s = max(report.worst_s, dt)
    if dt > slow_s:
        report.slow.append((data, dt))


def run_family(name: str, seeds: Seeds | list[bytes], n: int, slow_s: float, rng_seed: int) -> Report:
    """The drawn family ``name`` (of FAMILIES on ``Seeds``, of COMCNN_FAMILIES and RNN_FAMILIES on
    the files of those codecs)."""
    report = Report(name)
    on_files = {**COMCNN_FAMILIES, **RNN_FAMILIES}
    strategy = on_files[name](seeds) if isinstance(seeds, list) else FAMILIES[name](seeds)  # type: ignore[arg-type]

    @seed(rng_seed)
    @settings(
        max_examples=n,
        database=None,
        deadline=None,
        phases=[Phase.generate],  # the driver records failures itself; nothing to shrink
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def case(data: bytes) -> None:
        run_one(report, data, slow_s)

    case()
    return report


def exhaustive_sets(version: str, files: list[bytes], slow_s: float) -> list[Report]:
    """The fixed cases on the seed files of one version (``version``, their reports' prefix):
    every truncation, every header bit (CRC recomputed), huge headers, hostile streams."""
    fixed = Report(f"{version}-truncation")
    for s in files:
        for data in truncations(s):
            run_one(fixed, data, slow_s)
    # every bit of the header, CRC recomputed, on the file that has both chunk kinds
    header_bits = Report(f"{version}-header-bits+crc")
    rgba = next(s for s in files if container.parse(s).channels == 4)
    for bit in range(8 * first_chunk(rgba)):
        flipped = bytearray(rgba)
        flipped[bit // 8] ^= 1 << (bit % 8)
        run_one(header_bits, fix_crcs(bytes(flipped)), slow_s)
    huge = Report(f"{version}-huge-header")
    for w, h in [(100_000, 100_000), (60_000, 60_000), (13_400, 13_400), (1 << 20, 1), (2**31, 2**31)]:
        run_one(huge, forged_huge_header(files[0], w, h), slow_s)
        # the same without a latent: valid; refused by the pixel limit or decoded in a moment
        run_one(huge, empty_latent_file(files[0], min(w, 1 << 20), min(h, 1 << 20), 3), slow_s)
    run_one(huge, empty_latent_file(files[0], 4000, 3000, 3), slow_s)
    streams = Report(f"{version}-hostile-streams")
    for data, tail, most in hostile_streams(files[0]).values():
        run_stream(streams, data, tail, most, slow_s)
    return [fixed, header_bits, huge, streams]


def _codec_seeds(
    codec_id: str, model: str | None, make_seeds: Callable[[Callable[[np.ndarray, int], bytes]], list[bytes]]
) -> list[bytes]:
    """Seed files of ``codec_id``'s model ``model`` (``make_seeds`` given its encoder at a
    quality); none (and a note) when it cannot be loaded here."""
    if not model:
        return []
    try:
        codec = registry.load(codec_id, model, "cpu")
    except CaecError as e:
        print(f"{codec_id} families left out: {e}", file=sys.stderr)
        return []
    return make_seeds(lambda img, quality: contract.encode(codec, img, quality=quality))


def _comcnn_seeds(model: str | None) -> list[bytes]:
    return _codec_seeds("comcnn", model, make_comcnn_seeds)


def _rnn_seeds(model: str | None) -> list[bytes]:
    return _codec_seeds("rnn", model, make_rnn_seeds)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=10_000, help="drawn cases, shared among the families")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--slow",
        type=float,
        default=1.0,
        help="seconds after which a failing case, or a file without a latent, counts as a bug",
    )
    ap.add_argument("--crashes", type=Path, default=Path("fuzz-crashes"), help="where failing inputs are saved")
    ap.add_argument("--model", default=api.DEFAULT_MODEL)
    ap.add_argument(
        "--comcnn-model",
        default=registry.get("comcnn").default_model,
        help="comcnn model whose files the comcnn families start from ('' leaves them out)",
    )
    ap.add_argument(
        "--rnn-model",
        default=registry.get("rnn").default_model,
        help="rnn model whose files the rnn families (and every truncation of them) start from ('' leaves them out)",
    )
    args = ap.parse_args(argv)

    codec = api.get_codec(args.model, device="cpu")
    seeds = make_seeds(lambda img, q: contract.encode(codec, img, quality=q))
    t_start = time.perf_counter()
    reports = []
    for version, files in (("v1", seeds.v1), ("v2", seeds.v2)):
        reports += exhaustive_sets(version, files, args.slow)
    # the drawn families alone make up --cases; the exhaustive sets above come on top
    per_family = -(-args.cases // len(FAMILIES))
    for i, name in enumerate(FAMILIES):
        reports.append(run_family(name, seeds, per_family, args.slow, args.seed * 100 + i))
        r = reports[-1]
        print(f"  {name}: {r.cases} cases, {len(r.bugs)} bugs, worst {r.worst_s * 1000:.0f} ms", file=sys.stderr)
    comcnn_seeds = _comcnn_seeds(args.comcnn_model)
    for i, name in enumerate(COMCNN_FAMILIES if comcnn_seeds else []):
        reports.append(run_family(name, comcnn_seeds, per_family, args.slow, args.seed * 100 + 50 + i))
        r = reports[-1]
        print(f"  {name}: {r.cases} cases, {len(r.bugs)} bugs, worst {r.worst_s * 1000:.0f} ms", file=sys.stderr)

    rnn_seeds = _rnn_seeds(args.rnn_model)
    if rnn_seeds:
        cut = Report("rnn-truncation")
        for s in rnn_seeds:
            for data in truncations(s):
                run_one(cut, data, args.slow)
        reports.append(cut)
    for i, name in enumerate(RNN_FAMILIES if rnn_seeds else []):
        reports.append(run_family(name, rnn_seeds, per_family, args.slow, args.seed * 100 + 70 + i))
        r = reports[-1]
        print(f"  {name}: {r.cases} cases, {len(r.bugs)} bugs, worst {r.worst_s * 1000:.0f} ms", file=sys.stderr)

    total = sum(r.cases for r in reports)
    bugs = [b for r in reports for b in r.bugs]
    slow = [s for r in reports for s in r.slow]
    print(f"fuzzed {total} cases in {time.perf_counter() - t_start:.0f} s (model {codec.name})")
    worst_error = max(r.worst_error_s for r in reports)
    print(f"slowest case that ended in an error: {1000 * worst_error:.0f} ms")
    for r in reports:
        mean_ms = 1000 * r.total_s / max(1, r.cases)
        print(
            f"\n{r.family}: {r.cases} cases, mean {mean_ms:.1f} ms, worst {1000 * r.worst_s:.0f} ms, "
            f"worst failing {1000 * r.worst_error_s:.0f} ms"
        )
        ranked = r.outcomes.most_common()
        for outcome, count in ranked[:SHOWN_KINDS]:
            print(f"  {count:6d}  {outcome}")
        if len(ranked) > SHOWN_KINDS:
            rest = ranked[SHOWN_KINDS:]
            print(f"  {sum(c for _, c in rest):6d}  ({len(rest)} more kinds)")
    overall = Counter[str]()
    for r in reports:
        overall.update(o.split(":")[0] for o in r.outcomes.elements())
    print("\noutcome classes:", ", ".join(f"{k} {v}" for k, v in overall.most_common()))
    if bugs or slow:
        args.crashes.mkdir(parents=True, exist_ok=True)
        for i, (data, what) in enumerate(bugs):
            (args.crashes / f"bug-{i}.cae").write_bytes(data)
            print(f"BUG {i}: {what}")
        for i, (data, dt) in enumerate(slow):
            (args.crashes / f"slow-{i}.cae").write_bytes(data)
            print(f"SLOW {i}: {dt:.2f} s")
        print(f"{len(bugs)} bugs, {len(slow)} slow cases; inputs saved in {args.crashes}/")
        return 1
    print("no bugs: every malformed input raised a CaecError")
    return 0


if __name__ == "__main__":
    sys.exit(main())
