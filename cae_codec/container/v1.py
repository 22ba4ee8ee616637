"""Version 1 of the .cae container (caec 0.1): magic, version, a fixed big-endian header made
for the CAE codec, then typed chunks, each type at most once. Read, no longer written.

Layout (all integers big-endian; docs/format.md is the normative description)::

    magic     8 bytes  89 43 41 45 0D 0A 1A 0A   ("\\x89CAE\\r\\n\\x1a\\n", as PNG does)
    version   u8       FORMAT_VERSION
    header    HEADER_STRUCT fields, then u32 CRC-32 of version + header
    chunks    repeated: type (4 ASCII bytes), length u32, payload, u32 CRC-32 of type + payload
              the last chunk is END_ (length 0); nothing may follow it

Chunk types whose first letter is upper case are critical: a reader that does not know
one must refuse the file. Lower-case ones are ancillary and may be skipped. Every read is
bounds-checked and every failure raises :class:`~cae_codec.errors.FormatError`.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from cae_codec.errors import FormatError, HeaderFieldError

MAGIC = b"\x89CAE\r\n\x1a\n"
FORMAT_VERSION = 1
# flags, channels, width, height, tile, padded width, padded height, codec id, model name,
# weights hash, quantization step, quality, latent channels, coded components, mosaic columns
HEADER_STRUCT = struct.Struct(">BBIIHII16s32s16sfBHHH")
# the Header field stored in each HEADER_STRUCT slot, in order
HEADER_FIELDS = (
    "flags",
    "channels",
    "width",
    "height",
    "tile",
    "padded_width",
    "padded_height",
    "codec",
    "model",
    "weights_hash",
    "step",
    "quality",
    "latent_channels",
    "components",
    "mosaic_cols",
)
# NUL-padded ASCII fields: size in bytes and the name used in error messages
TEXT_FIELDS = {"codec": (16, "codec id"), "model": (32, "model name")}
CHUNK_HEAD = struct.Struct(">4sI")
CRC = struct.Struct(">I")

# Hard limits of the format. A header beyond them is malformed, whatever the payload says,
# so a hostile file cannot make a reader allocate before anything else is checked.
MAX_SIDE = 1 << 20
MAX_PIXELS = 1 << 32
MAX_CHUNKS = 64
# Payload size limits (docs/format.md, "Size limits"), from the header: a reader checks each
# chunk's declared length against them before it reads the payload, so that a forged length
# cannot make it read, or wait for, more than a genuine file with that header can hold.
# A model's latent is at least 2x smaller than the image along each axis (1..6 stride-2 stages).
MIN_LATENT_STRIDE = 2
# Lossless JPEG 2000 of noise measured at most 1.3x its raw samples, plus ~130 bytes of
# markers; these leave a margin for any encoder settings a writer may choose.
CODESTREAM_EXPANSION = 2
CODESTREAM_SLACK = 1 << 16
# all chunks other than LATN and ALPH together (ancillary data)
MAX_ANCILLARY_BYTES = 1 << 24

LATENT = b"LATN"
ALPHA = b"ALPH"
END = b"END_"
# ancillary: the source's ICC colour profile, so that a decoded wide-gamut photo keeps its colours
ICC = b"iccp"
# Real profiles run from about 500 bytes (sRGB, Display P3) to a few hundred KB (print and
# camera profiles with lookup tables); the limit bounds what a hostile file makes a reader hold.
MAX_ICC_BYTES = 1 << 20
# the profile's data colour space (bytes 16..19 of its header) that each layout needs
ICC_COLOUR_SPACE = {1: b"GRAY", 2: b"GRAY", 3: b"RGB ", 4: b"RGB "}
# critical chunk types a reader of this version understands; a codec adding one registers it here
KNOWN_CRITICAL: set[bytes] = {LATENT, ALPHA}
# A decoder looks the model name up as a file name in the model directories, so a name read
# from a (possibly hostile) file must not be able to point anywhere else: no path
# separators, no leading dot ("", ".", ".." and hidden files), nothing a terminal would
# interpret when the name is echoed in an error line.
MODEL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+-]*")


@dataclass(frozen=True)
class Header:
    channels: int  # 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA
    width: int
    height: int
    tile: int
    padded_width: int
    padded_height: int
    codec: str
    model: str
    weights_hash: bytes
    step: float
    quality: int  # the --quality used, 0 when the step was chosen otherwise (e.g. --bpp)
    latent_channels: int
    components: int  # leading PCA components coded; the rest are zero
    mosaic_cols: int
    flags: int = 0

    def validate(self) -> None:
        def bad(msg: str) -> FormatError:
            return FormatError(f"malformed header: {msg}")

        if self.flags != 0:
            raise bad(f"unknown flags {self.flags:#x}")
        if self.channels not in (1, 2, 3, 4):
            raise bad(f"{self.channels} channels")
        if not (0 < self.width <= MAX_SIDE and 0 < self.height <= MAX_SIDE):
            raise bad(f"image size {self.width}x{self.height}")
        if self.width * self.height > MAX_PIXELS:
            raise bad(f"{self.width}x{self.height} exceeds {MAX_PIXELS} pixels")
        if self.tile == 0 or self.padded_width % self.tile or self.padded_height % self.tile:
            raise bad(f"padded size {self.padded_width}x{self.padded_height} is not a multiple of tile {self.tile}")
        if not (self.width <= self.padded_width < self.width + self.tile):
            raise bad("padded width inconsistent with width")
        if not (self.height <= self.padded_height < self.height + self.tile):
            raise bad("padded height inconsistent with height")
        if not (self.step > 0 and self.step < 1e6):  # also rejects NaN
            raise bad(f"quantization step {self.step}")
        if not 0 < self.latent_channels <= 4096 or not 0 <= self.components <= self.latent_channels:
            raise bad(f"{self.components} of {self.latent_channels} components")
        if self.components and not 0 < self.mosaic_cols <= self.components:
            raise bad(f"mosaic of {self.mosaic_cols} columns for {self.components} components")
        if len(self.weights_hash) != 16:
            raise bad("weights hash must be 16 bytes")
        if not MODEL_NAME.fullmatch(self.model):
            raise bad(f"model name {self.model!r} is not a plain name (letters, digits, '._+-')")


@dataclass
class Container:
    header: Header
    chunks: dict[bytes, bytes] = field(default_factory=dict)


def icc_profile_problem(profile: bytes, channels: int) -> str | None:
    """Why ``profile`` cannot be carried with an image of ``channels`` channels, or None if it can.

    Only the profile's header is checked (size, signature, colour space), as a PNG writer
    does; what the profile's tags mean is the colour-managed viewer's business.
    """
    if len(profile) > MAX_ICC_BYTES:
        return f"ICC profile of {len(profile)} bytes is over the format's limit of {MAX_ICC_BYTES}"
    if len(profile) < 128 or profile[36:40] != b"acsp":
        return "not an ICC profile (no 'acsp' signature in a 128-byte header)"
    space = profile[16:20]
    if space != ICC_COLOUR_SPACE[channels]:
        layout = "a grey" if channels < 3 else "an RGB"
        return f"ICC profile for {space.decode('latin-1').strip()!r} data cannot describe {layout} image"
    return None


def _fixed_ascii(text: str, size: int, what: str) -> bytes:
    raw = text.encode("ascii", errors="replace")
    if len(raw) > size or not text.isascii() or b"\0" in raw:
        raise HeaderFieldError(f"{what} {text!r} must be at most {size} ASCII characters")
    return raw.ljust(size, b"\0")


def _read_ascii(raw: bytes, what: str) -> str:
    text = raw.rstrip(b"\0")
    if b"\0" in text:
        raise FormatError(f"malformed header: {what} has embedded NUL")
    # printable only: the text ends up in one-line error messages
    if not all(0x20 <= c < 0x7F for c in text):
        raise FormatError(f"malformed header: {what} is not printable ASCII")
    return text.decode("ascii")


def _chunk(ctype: bytes, payload: bytes) -> bytes:
    return CHUNK_HEAD.pack(ctype, len(payload)) + payload + CRC.pack(zlib.crc32(ctype + payload))


def pack(header: Header, chunks: Iterable[tuple[bytes, bytes]]) -> bytes:
    header.validate()
    values = [
        _fixed_ascii(getattr(header, name), *TEXT_FIELDS[name]) if name in TEXT_FIELDS else getattr(header, name)
        for name in HEADER_FIELDS
    ]
    fixed = bytes([FORMAT_VERSION]) + HEADER_STRUCT.pack(*values)
    parts = [MAGIC, fixed, CRC.pack(zlib.crc32(fixed))]
    parts += [_chunk(t, p) for t, p in chunks]
    parts.append(_chunk(END, b""))
    return b"".join(parts)


def sniff(prefix: bytes) -> bool:
    """True if ``prefix`` starts like a .cae file (for format detection)."""
    return prefix.startswith(MAGIC)


NOT_CAE = "not a .cae file (bad magic bytes)"


def read_header(data: bytes) -> tuple[Header, int]:
    """Parse and validate the fixed header; returns it and the offset of the first chunk."""
    if len(data) < len(MAGIC) or not data.startswith(MAGIC):
        raise FormatError(NOT_CAE)
    pos = len(MAGIC)
    if len(data) < pos + 1:
        raise FormatError("truncated file: no version byte")
    version = data[pos]
    if version != FORMAT_VERSION:
        raise FormatError(f"unsupported format version {version} (this caec reads version {FORMAT_VERSION})")
    end = pos + 1 + HEADER_STRUCT.size
    if len(data) < end + CRC.size:
        raise FormatError("truncated file: header incomplete")
    (crc,) = CRC.unpack_from(data, end)
    if zlib.crc32(data[pos:end]) != crc:
        raise FormatError("header CRC mismatch (file is corrupt)")
    fields = dict(zip(HEADER_FIELDS, HEADER_STRUCT.unpack_from(data, pos + 1), strict=True))
    for name, (_, what) in TEXT_FIELDS.items():
        fields[name] = _read_ascii(fields[name], what)
    header = Header(**fields)
    header.validate()
    return header, end + CRC.size


def unpack(data: bytes) -> Container:
    header, pos = read_header(data)
    chunks: dict[bytes, bytes] = {}
    ancillary = 0
    while True:
        if len(chunks) > MAX_CHUNKS:
            raise FormatError("too many chunks")
        if pos + CHUNK_HEAD.size > len(data):
            raise FormatError(f"truncated file: chunk header expected at byte {pos}")
        ctype, length = CHUNK_HEAD.unpack_from(data, pos)
        ancillary = check_chunk_length(header, ctype, length, ancillary)
        body = pos + CHUNK_HEAD.size
        if length > len(data) - body - CRC.size:
            raise FormatError(f"truncated file: chunk {ctype!r} of {length} bytes runs past the end")
        payload = data[body : body + length]
        (crc,) = CRC.unpack_from(data, body + length)
        if zlib.crc32(ctype + payload) != crc:
            raise FormatError(f"chunk {ctype!r} CRC mismatch (file is corrupt)")
        pos = body + length + CRC.size
        if ctype == END:
            if pos != len(data):
                raise FormatError(f"{len(data) - pos} bytes of trailing data after END_")
            return Container(header, chunks)
        if not all(65 <= c <= 90 or 97 <= c <= 122 or c == 95 for c in ctype):
            raise FormatError(f"invalid chunk type {ctype!r}")
        if ctype in chunks:
            raise FormatError(f"duplicate chunk {ctype.decode()}")
        if ctype[:1].isupper() and ctype not in KNOWN_CRITICAL:
            raise FormatError(f"unknown critical chunk {ctype.decode()} (file needs a newer caec)")
        if ctype == ICC and (problem := icc_profile_problem(payload, header.channels)):
            raise FormatError(f"chunk iccp: {problem}")
        chunks[ctype] = payload


def chunk_limit(header: Header, ctype: bytes) -> int:
    """The most payload bytes a chunk of type ``ctype`` can hold in a file with ``header``.

    LATN and ALPH are codestreams of at most CODESTREAM_EXPANSION times their raw samples
    plus CODESTREAM_SLACK: LATN's the int16 mosaic of the header's K components at the
    finest latent any model has, ALPH's the alpha plane. A header without a latent (K = 0)
    or without alpha allows none of that chunk. An ICC profile is at most MAX_ICC_BYTES;
    other types share MAX_ANCILLARY_BYTES.
    """
    if ctype == END:
        return 0
    if ctype == ICC:
        return MAX_ICC_BYTES
    if ctype == LATENT:
        raw = 2 * _latent_samples_bound(header)
    elif ctype == ALPHA:
        raw = header.width * header.height if header.channels in (2, 4) else 0
    else:
        return MAX_ANCILLARY_BYTES
    return CODESTREAM_EXPANSION * raw + CODESTREAM_SLACK if raw else 0


def _latent_samples_bound(header: Header) -> int:
    """Samples of the largest component mosaic ``header`` describes: ceil(K / C) * C planes
    of the padded image at MIN_LATENT_STRIDE."""
    if not header.components:
        return 0
    planes = -(-header.components // header.mosaic_cols) * header.mosaic_cols
    side = MIN_LATENT_STRIDE
    return planes * -(-header.padded_height // side) * -(-header.padded_width // side)


def check_chunk_length(header: Header, ctype: bytes, length: int, ancillary: int) -> int:
    """Refuse a chunk declaring more than chunk_limit; returns the ancillary bytes so far,
    given those before this chunk."""
    if ctype == END and length:
        raise FormatError("END_ chunk must be empty")
    limit = chunk_limit(header, ctype)
    if length > limit:
        raise FormatError(f"chunk {ctype!r} declares {length} bytes, over this header's limit of {limit}")
    if ctype in (LATENT, ALPHA):
        return ancillary
    if ancillary + length > MAX_ANCILLARY_BYTES:
        raise FormatError(f"ancillary chunks hold more than {MAX_ANCILLARY_BYTES} bytes")
    return ancillary + length


def read_stream(take: Callable[[int], bytes], peek_end: Callable[[], bool], have: bytes) -> None:
    """Read one version-1 file through ``take(n)`` (the next n bytes, fewer at the end),
    ``have`` being what was read so far (magic and version), no further than its chunks
    explain: every chunk's declared length is checked against chunk_limit before its payload
    is read, and after END_ ``peek_end()`` must say nothing follows. CRCs and chunk types are
    left to unpack, which parses the bytes read."""
    data = have + take(len(MAGIC) + 1 + HEADER_STRUCT.size + CRC.size - len(have))
    header, pos = read_header(data)
    ancillary = 0
    stored = 0
    while True:
        if stored > MAX_CHUNKS:
            raise FormatError("too many chunks")
        head = take(CHUNK_HEAD.size)
        if len(head) < CHUNK_HEAD.size:
            raise FormatError(f"truncated file: chunk header expected at byte {pos}")
        ctype, length = CHUNK_HEAD.unpack(head)
        ancillary = check_chunk_length(header, ctype, length, ancillary)
        if len(take(length + CRC.size)) < length + CRC.size:
            raise FormatError(f"truncated file: chunk {ctype!r} of {length} bytes runs past the end")
        pos += CHUNK_HEAD.size + length + CRC.size
        if ctype == END:
            if not peek_end():
                raise FormatError("trailing data after END_ (the file is longer than its chunks)")
            return
        stored += 1
