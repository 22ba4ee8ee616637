"""Fuzz the .cae reader: malformed files must fail with a CaecError, quickly, never otherwise.

    python tools/fuzz.py --cases 10000          (what `make fuzz` runs)

Every case is fed to ``api.decode`` and ``api.info`` (both go through ``container.unpack``),
and to ``container.read_file`` as a stream, which must give back exactly the bytes of a file
that unpack accepts and refuse only files that unpack refuses too.
An outcome is "ok" (the file decoded; its shape must match its header) or the class of the
CaecError raised plus the message with its numbers blanked, so that the report groups
errors by kind. Any other exception is a bug: the driver records it, saves the input under
``--crashes`` and exits 1. So is a failing case slower than ``--slow`` seconds, and a file
without a latent (K = 0, a constant image of any size) that takes as long to decode.

Plain random bit flips almost always stop at a CRC check, so most families recompute the
CRCs after mutating, which takes the cases through the header validation, the chunk
parser, the JPEG2000 decoder and the network behind them. tests/test_fuzz.py runs the same
families with a few examples each.
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

from cae_codec import api, container, j2k, quant
from cae_codec.container import ALPHA, CHUNK_HEAD, CRC, END, HEADER_FIELDS, HEADER_STRUCT, ICC, LATENT, MAGIC
from cae_codec.errors import CaecError, FormatError
from cae_codec.tiling import TILE

HEADER_START = len(MAGIC)  # the version byte; the header CRC covers version + fields
HEADER_END = HEADER_START + 1 + HEADER_STRUCT.size
FIELDS = list(HEADER_FIELDS)
# struct letter per field, to draw values that fit it
FIELD_FORMATS = dict(zip(FIELDS, re.findall(r"\d*[a-zA-Z]", HEADER_STRUCT.format.lstrip(">")), strict=True))
INT_BITS = {"B": 8, "H": 16, "I": 32}


# ------------------------------------------------------------------ seed files


def smooth_image(rng: np.random.Generator, h: int, w: int, c: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    chans = [128 + 90 * np.sin(xx / (5.0 + 3 * k) + k) * np.cos(yy / (7.0 + 2 * k)) for k in range(c)]
    noisy = np.stack(chans, axis=2) + rng.normal(0, 4, (h, w, c))
    return np.clip(noisy, 0, 255).astype(np.uint8)


def make_seeds(encode: Callable[[np.ndarray, int], bytes]) -> list[bytes]:
    """Small valid files of every channel layout; ``encode(image, quality)`` makes them."""
    rng = np.random.default_rng(5)
    shapes = [(40, 56, 3), (33, 20, 4), (17, 23, 1), (24, 24, 2), (130, 9, 3)]
    seeds = [encode(smooth_image(rng, h, w, c), 7) for h, w, c in shapes]
    # the last one also carries an ICC profile, so that mutations reach the iccp chunk's checks
    seeds[-1] = assemble(seeds[-1][: HEADER_END + CRC.size], [(ICC, icc_header(b"RGB ")), *chunks_of(seeds[-1])])
    return seeds


def icc_header(colour_space: bytes) -> bytes:
    """The smallest profile the iccp chunk accepts: an ICC header and an empty tag table.
    Built by hand because a profile from lcms carries its creation time, and the seeds must be
    the same on every run."""
    profile = bytearray(132)
    profile[0:4] = len(profile).to_bytes(4, "big")
    profile[12:24] = b"mntr" + colour_space + b"XYZ "
    profile[36:40] = b"acsp"
    return bytes(profile)


# ------------------------------------------------------------------ byte-level helpers


def fix_crcs(data: bytes) -> bytes:
    """Recompute the header CRC and the CRC of every chunk whose extent still lies in the file."""
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


def header_values(data: bytes) -> dict[str, object]:
    return dict(zip(FIELDS, HEADER_STRUCT.unpack_from(data, HEADER_START + 1), strict=True))


def raw_header(values: dict[str, object], version: int = container.FORMAT_VERSION) -> bytes:
    """Magic, version, fields and CRC without any validation (the writer would refuse most)."""
    fixed = bytes([version]) + HEADER_STRUCT.pack(*(values[f] for f in FIELDS))
    return MAGIC + fixed + CRC.pack(zlib.crc32(fixed))


def raw_chunk(ctype: bytes, payload: bytes, declared: int | None = None, crc_ok: bool = True) -> bytes:
    crc = zlib.crc32(ctype + payload) ^ (0 if crc_ok else 1)
    length = len(payload) if declared is None else declared
    return CHUNK_HEAD.pack(ctype, length) + payload + CRC.pack(crc)


def chunks_of(data: bytes) -> list[tuple[bytes, bytes]]:
    box = container.unpack(data)
    return list(box.chunks.items())


def assemble(header: bytes, chunks: list[tuple[bytes, bytes]]) -> bytes:
    return header + b"".join(raw_chunk(t, p) for t, p in chunks) + raw_chunk(END, b"")


# ------------------------------------------------------------------ strategies

INTERESTING_INTS = [0, 1, 2, 3, 7, 8, 15, 16, 17, 31, 127, 128, 129, 255, 256, 4095, 4096, 65535, 65536]
INTERESTING_INTS += [60000, 100000, 100096, 1 << 20, (1 << 20) + 1, 2**31 - 1, 2**31, 2**32 - 1]
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
    top = 2 ** INT_BITS[fmt] - 1
    assert isinstance(original, int)
    near = [v for v in (original - 1, original + 1, original * 2, original // 2) if 0 <= v <= top]
    fits = [v for v in INTERESTING_INTS if v <= top]
    return st.one_of(st.sampled_from(fits + near), st.integers(0, top))


@st.composite
def forged_headers(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """1-4 header fields set to boundary or random values, with a valid header CRC."""
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
    version = draw(st.sampled_from([container.FORMAT_VERSION] * 6 + [0, container.FORMAT_VERSION + 1, 255]))
    return raw_header(values, version) + data[HEADER_END + CRC.size :]


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
    """Valid header, then a drawn chunk sequence: wrong lengths, types, order, CRCs, endings."""
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
def codestream_mutations(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A valid container around a damaged JPEG2000 codestream (latent or alpha), or a damaged
    ICC profile where the seed has one."""
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
    return assemble(data[: HEADER_END + CRC.size], chunks)


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
    return assemble(data[: HEADER_END + CRC.size], chunks)


def forged_huge_header(seed_file: bytes, width: int, height: int) -> bytes:
    values = header_values(seed_file)
    tile = int(values["tile"])  # type: ignore[call-overload]
    values.update(width=width, height=height)
    values.update(padded_width=-(-width // tile) * tile, padded_height=-(-height // tile) * tile)
    return raw_header(values) + seed_file[HEADER_END + CRC.size :]


def truncations(data: bytes) -> list[bytes]:
    return [data[:n] for n in range(len(data))]


# ------------------------------------------------------------------ files without a latent

# largest drawn side of a file without a latent: 100 tiles, a fraction of a second to decode
EMPTY_LATENT_SIDE = 1200


def empty_latent_file(seed_file: bytes, width: int, height: int, channels: int, step: float | None = None) -> bytes:
    """A valid file of ``seed_file``'s model with no latent (K = 0): the header, an opaque alpha
    plane when ``channels`` has alpha, END_. It decodes to the same tile everywhere."""
    values = header_values(seed_file)
    tile = int(values["tile"])  # type: ignore[call-overload]
    values.update(width=width, height=height, channels=channels, components=0, mosaic_cols=0)
    values.update(padded_width=-(-width // tile) * tile, padded_height=-(-height // tile) * tile)
    if step is not None:
        values["step"] = step
    chunks = []
    if channels in (2, 4):
        chunks.append((ALPHA, j2k.encode_plane(np.full((height, width), 255, np.uint8), j2k.ALPHA_LEVELS)))
    return assemble(raw_header(values), chunks)


@st.composite
def empty_latents(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """Files without a latent of drawn sizes, layouts and steps (every decoder band); now and
    then with a stray latent chunk, which such a header leaves no room for."""
    size = st.integers(1, EMPTY_LATENT_SIDE)
    steps = st.sampled_from([quant.STEP_MIN, quant.step_for_quality(quant.QUALITY_DEFAULT), quant.STEP_MAX])
    step = draw(steps | st.floats(quant.STEP_MIN, quant.STEP_MAX, width=32))
    data = empty_latent_file(draw(st.sampled_from(seeds)), draw(size), draw(size), draw(st.integers(1, 4)), step)
    if draw(st.integers(0, 3)) == 0:
        stray = (LATENT, draw(st.binary(min_size=1, max_size=64)))
        data = assemble(data[: HEADER_END + CRC.size], [stray, *chunks_of(data)])
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
            piece = (self.tail * (n // len(self.tail) + 1))[:n]
        else:
            piece = b""
        buffer[: len(piece)] = piece
        self.taken += len(piece)
        return len(piece)


def hostile_streams(seed_file: bytes) -> dict[str, tuple[bytes, bytes, int]]:
    """name -> (data, endless tail, the most bytes container.read_file may take before refusing)."""
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


def stream_outcome(data: bytes, tail: bytes, most: int) -> str:
    """The kind of FormatError container.read_file raises on an endless stream; a stream it
    accepts, or reads more than ``most`` bytes of, is a bug."""
    stream = EndlessStream(data, tail)
    try:
        container.read_file(stream, "stream")  # type: ignore[arg-type]  (a RawIOBase reads as one)
    except FormatError as e:
        if stream.taken > most:
            raise AssertionError(f"read {stream.taken} bytes (at most {most} expected) before: {e}") from e
        return _kind(e)
    raise AssertionError("an endless stream was accepted")


def check_read_file(data: bytes) -> None:
    """container.read_file must agree with unpack on ``data``: the same bytes back for a file it
    accepts (one unpack accepts among them), a one-line FormatError only if unpack refuses too."""
    try:
        got = container.read_file(io.BytesIO(data), "case")
    except FormatError as e:
        if "\n" in str(e):
            raise AssertionError(f"read_file error is not one line: {str(e)!r}") from e
        try:
            container.unpack(data)
        except FormatError:
            return
        raise AssertionError(f"read_file refused a file unpack accepts: {e}") from None
    if got != data:
        raise AssertionError(f"read_file gave {len(got)} of {len(data)} bytes")


SHOWN_KINDS = 12  # outcome kinds listed per family in the report

Family = Callable[[list[bytes]], st.SearchStrategy[bytes]]
FAMILIES: dict[str, Family] = {
    "bit-flips": lambda s: bit_flips(s, recompute_crcs=False),
    "bit-flips+crc": lambda s: bit_flips(s, recompute_crcs=True),
    "byte-edits+crc": byte_edits,
    "forged-header": forged_headers,
    "chunk-layout": chunk_layouts,
    "j2k-mutation": codestream_mutations,
    "j2k-foreign": foreign_codestreams,
    "empty-latent": empty_latents,
    "random-bytes": lambda s: st.one_of(st.binary(max_size=200), st.binary(max_size=200).map(lambda b: MAGIC + b)),
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
    hd = container.unpack(data).header
    if img.shape != (hd.height, hd.width, hd.channels) or img.dtype != np.uint8:
        raise AssertionError(f"decoded {img.shape} {img.dtype} for a {hd.width}x{hd.height}x{hd.channels} header")
    if hd.components:
        return OK
    # every tile decodes from the same input (the PCA mean), so the picture repeats tile by tile
    pixels = img[:, :, : 3 if hd.channels >= 3 else 1]
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


def run_family(name: str, seeds: list[bytes], n: int, slow_s: float, rng_seed: int) -> Report:
    report = Report(name)

    @seed(rng_seed)
    @settings(
        max_examples=n,
        database=None,
        deadline=None,
        phases=[Phase.generate],  # the driver records failures itself; nothing to shrink
        suppress_health_check=list(HealthCheck),
    )
    @given(FAMILIES[name](seeds))
    def case(data: bytes) -> None:
        run_one(report, data, slow_s)

    case()
    return report


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
    args = ap.parse_args(argv)

    codec = api.get_codec(args.model, device="cpu")
    seeds = make_seeds(lambda img, q: codec.encode(img, quality=q))
    t_start = time.perf_counter()
    reports = []
    fixed = Report("truncation")
    for s in seeds:
        for data in truncations(s):
            run_one(fixed, data, args.slow)
    # every bit of the fixed header, CRC recomputed, on the file that has both chunk kinds
    header_bits = Report("header-bits+crc")
    rgba = next(s for s in seeds if container.unpack(s).header.channels == 4)
    for bit in range(8 * (HEADER_END + CRC.size)):
        flipped = bytearray(rgba)
        flipped[bit // 8] ^= 1 << (bit % 8)
        run_one(header_bits, fix_crcs(bytes(flipped)), args.slow)
    huge = Report("huge-header")
    for w, h in [(100_000, 100_000), (60_000, 60_000), (13_400, 13_400), (1 << 20, 1), (2**31, 2**31)]:
        run_one(huge, forged_huge_header(seeds[0], w, h), args.slow)
        # the same without a latent: valid; refused by the pixel limit or decoded in a moment
        run_one(huge, empty_latent_file(seeds[0], min(w, 1 << 20), min(h, 1 << 20), 3), args.slow)
    run_one(huge, empty_latent_file(seeds[0], 4000, 3000, 3), args.slow)
    streams = Report("hostile-streams")
    for data, tail, most in hostile_streams(seeds[0]).values():
        run_stream(streams, data, tail, most, args.slow)
    reports += [fixed, header_bits, huge, streams]
    # the drawn families alone make up --cases; the exhaustive sets above come on top
    per_family = -(-args.cases // len(FAMILIES))
    for i, name in enumerate(FAMILIES):
        reports.append(run_family(name, seeds, per_family, args.slow, args.seed * 100 + i))
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
