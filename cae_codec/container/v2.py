"""Version 2 of the .cae container: a compact header that any codec can use, then an ordered
list of chunks in which a type may repeat.

Layout (docs/format.md is the normative description)::

    magic        8 bytes  89 43 41 45 0D 0A 1A 0A   (as version 1)
    version      u8       2
    flags        u8       bit 0 progressive, bit 1 several images; other bits must be 0
    codec        u8       CODEC_NUMBERS
    model        uvarint  the zoo's number of the weights; 0: found by their hash alone
    weights      8 bytes  the first 8 bytes of the weights hash; zeros when the codec has none
    width        uvarint  pixels, of each image
    height       uvarint
    channels     u8       1 grey, 2 grey + alpha, 3 RGB, 4 RGBA
    images       uvarint  only with flag bit 1: how many images of that size (2..MAX_STACK)
    chunk count  uvarint  chunks that follow
    header CRC   u32      CRC-32 of version .. chunk count
    chunks       each: type (4 ASCII bytes), length uvarint, payload, u32 CRC-32 of type + payload

uvarint is LEB128 (7 bits a byte, least significant group first, high bit set on all bytes
but the last; at most 5 bytes, the shortest form only). All of a one-chunk file but its
payload takes 40 bytes or fewer while width, height and payload length are below 16384 and the
model number below 128.

The first chunk may be ``PARM``, the codec's parameters (its own layout). Chunk types whose
first letter is upper case are critical: the codec must know them. Lower-case ones are
ancillary (``iccp``, the ICC profile) and may be skipped.

A progressive file (flag bit 0) is decodable at any prefix of its chunks: a reader given a
truncated one keeps the chunks that arrived whole and says how many of how many it used. A
truncated file of any other kind is an error.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cae_codec.errors import FormatError, HeaderFieldError

MAGIC = b"\x89CAE\r\n\x1a\n"
VERSION = 2
FLAG_PROGRESSIVE = 1
FLAG_STACK = 2
KNOWN_FLAGS = FLAG_PROGRESSIVE | FLAG_STACK
# Codec numbers are part of the format: a number once given is never reused.
CODEC_NUMBERS = {"cae-pca-j2k": 1, "comcnn": 2, "rnn": 3, "mnist-dae": 4}
CODEC_IDS = {n: c for c, n in CODEC_NUMBERS.items()}
HASH_BYTES = 8
CRC = struct.Struct(">I")
PARAMS = b"PARM"
ICC = b"iccp"

# Format limits: a header or chunk list beyond them is malformed, whatever else it says.
MAX_SIDE = 1 << 20
MAX_PIXELS = 1 << 32
MAX_CHUNKS = 4096
MAX_VARINT_BYTES = 5
MAX_UINT32 = (1 << 32) - 1
# the chunks together hold at most this many times the raw samples of the file's images, plus
# the slack: every caec payload is a compressed form of them (a codestream of noise stays under
# 1.3x; a CAE latent of int16 at stride 2 with M = 4096 would be more, and no model has it)
CHUNK_EXPANSION = 2
CHUNK_SLACK = 1 << 20
# several-image files: at most this many images of the header's size
MAX_STACK = 1 << 16
# ancillary chunks (lower-case first letter) hold at most this much in all, and an ICC
# profile at most MAX_ICC_BYTES: both known from the length, before the payload is read
MAX_ANCILLARY_BYTES = 1 << 24
MAX_ICC_BYTES = 1 << 20


def uvarint(value: int) -> bytes:
    if not 0 <= value <= MAX_UINT32:
        raise HeaderFieldError(f"{value} does not fit a uvarint field (0..{MAX_UINT32})")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def read_uvarint(data: bytes | memoryview, pos: int, what: str) -> tuple[int, int]:
    """The uvarint at ``pos`` and the position after it; FormatError when cut short, longer
    than the shortest form, or above 2**32 - 1."""
    value = 0
    for i in range(MAX_VARINT_BYTES):
        if pos + i >= len(data):
            raise FormatError(f"truncated file: {what} incomplete")
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            if i and not byte:
                raise FormatError(f"malformed {what}: a uvarint in a longer form than needed")
            if value > MAX_UINT32:
                raise FormatError(f"malformed {what}: {value} is above {MAX_UINT32}")
            return value, pos + i + 1
    raise FormatError(f"malformed {what}: a uvarint of more than {MAX_VARINT_BYTES} bytes")


@dataclass(frozen=True)
class HeaderV2:
    codec: str
    width: int
    height: int
    channels: int
    weights_hash: bytes = bytes(HASH_BYTES)  # 8 bytes: a prefix of the weights hash
    model_number: int = 0
    flags: int = 0
    images: int = 1  # several only with FLAG_STACK

    @property
    def progressive(self) -> bool:
        return bool(self.flags & FLAG_PROGRESSIVE)

    @property
    def stack(self) -> bool:
        return bool(self.flags & FLAG_STACK)

    def validate(self) -> None:
        def bad(msg: str) -> FormatError:
            return FormatError(f"malformed header: {msg}")

        if self.flags & ~KNOWN_FLAGS:
            raise bad(f"unknown flags {self.flags:#x} (file needs a newer caec)")
        if self.codec not in CODEC_NUMBERS:
            raise bad(f"unknown codec {self.codec!r}")
        if self.channels not in (1, 2, 3, 4):
            raise bad(f"{self.channels} channels")
        if not (0 < self.width <= MAX_SIDE and 0 < self.height <= MAX_SIDE):
            raise bad(f"image size {self.width}x{self.height}")
        if self.width * self.height > MAX_PIXELS:
            raise bad(f"{self.width}x{self.height} exceeds {MAX_PIXELS} pixels")
        if len(self.weights_hash) != HASH_BYTES:
            raise bad(f"weights hash must be {HASH_BYTES} bytes")
        if self.stack != (self.images > 1) or not 1 <= self.images <= MAX_STACK:
            raise bad(f"{self.images} images with flags {self.flags:#x} (several need flag bit 1, at most {MAX_STACK})")
        if self.width * self.height * self.images > MAX_PIXELS:
            raise bad(f"{self.images} images of {self.width}x{self.height} exceed {MAX_PIXELS} pixels")

    def chunk_limit(self) -> int:
        """The most payload bytes the chunks of this file may declare, one or all together
        (each length is checked before its payload is read)."""
        raw = self.width * self.height * self.channels * self.images
        return CHUNK_EXPANSION * raw + CHUNK_SLACK


class ChunkList:
    """Access to an ordered chunk list of which ``declared`` were announced (a progressive file
    cut short holds fewer): the parsed version-2 file and the neutral Box share it."""

    chunks: list[tuple[bytes, bytes]]
    declared: int

    @property
    def complete(self) -> bool:
        return len(self.chunks) == self.declared

    def all(self, ctype: bytes) -> list[bytes]:
        return [p for t, p in self.chunks if t == ctype]

    def first(self, ctype: bytes) -> bytes | None:
        return next((p for t, p in self.chunks if t == ctype), None)


@dataclass
class ContainerV2(ChunkList):
    header: HeaderV2
    chunks: list[tuple[bytes, bytes]] = field(default_factory=list)
    # a progressive file cut short: the chunks that arrived whole, of ``declared`` chunks
    declared: int = 0


def check_length(header: HeaderV2, ctype: bytes, length: int, before: tuple[int, int]) -> tuple[int, int]:
    """Refuse a chunk declaring more than the format allows for its type in a file with
    ``header``, given the (ancillary, all) payload bytes of the chunks before it; returns them
    with this chunk's. So no forged length makes a reader take more than a genuine file of
    this header can hold, however many chunks it declares."""
    ancillary, total = before
    limit = header.chunk_limit()
    if ctype == ICC:
        limit = min(limit, MAX_ICC_BYTES)
    if length > limit:
        raise FormatError(
            f"chunk {ctype.decode('latin-1')} declares {length} bytes, over this header's limit of {limit}"
        )
    if total + length > header.chunk_limit():
        raise FormatError(f"the chunks declare more than this header's limit of {header.chunk_limit()} bytes in all")
    if ctype[:1].islower():
        ancillary += length
        if ancillary > MAX_ANCILLARY_BYTES:
            raise FormatError(f"ancillary chunks hold more than {MAX_ANCILLARY_BYTES} bytes")
    return ancillary, total + length


def _chunk(ctype: bytes, payload: bytes) -> bytes:
    return ctype + uvarint(len(payload)) + payload + CRC.pack(zlib.crc32(ctype + payload))


def _check_type(ctype: bytes) -> None:
    if len(ctype) != 4 or not all(65 <= c <= 90 or 97 <= c <= 122 or c == 95 for c in ctype):
        raise FormatError(f"invalid chunk type {ctype!r}")


def pack(header: HeaderV2, chunks: Sequence[tuple[bytes, bytes]]) -> bytes:
    header.validate()
    if len(chunks) > MAX_CHUNKS:
        raise HeaderFieldError(f"{len(chunks)} chunks, more than the format's {MAX_CHUNKS}")
    seen = (0, 0)
    for ctype, payload in chunks:
        _check_type(ctype)
        try:
            seen = check_length(header, ctype, len(payload), seen)
        except FormatError as e:
            raise HeaderFieldError(str(e)) from None
    fixed = _header_bytes(header, len(chunks))
    return b"".join([MAGIC, fixed, CRC.pack(zlib.crc32(fixed)), *(_chunk(t, p) for t, p in chunks)])


def _header_bytes(header: HeaderV2, count: int) -> bytes:
    return b"".join(
        [
            bytes([VERSION, header.flags, CODEC_NUMBERS[header.codec]]),
            uvarint(header.model_number),
            header.weights_hash,
            uvarint(header.width),
            uvarint(header.height),
            bytes([header.channels]),
            uvarint(header.images) if header.stack else b"",
            uvarint(count),
        ]
    )


def read_header(data: bytes | memoryview) -> tuple[HeaderV2, int, int]:
    """The header at the start of ``data`` (after the magic), its declared chunk count and
    the offset of the first chunk."""
    pos = len(MAGIC)
    if len(data) < pos + 3:
        raise FormatError("truncated file: header incomplete")
    if data[pos] != VERSION:
        raise FormatError(f"not a version {VERSION} header")
    flags, number = data[pos + 1], data[pos + 2]
    model, p = read_uvarint(data, pos + 3, "model number")
    if len(data) < p + HASH_BYTES:
        raise FormatError("truncated file: header incomplete")
    weights = bytes(data[p : p + HASH_BYTES])
    width, p = read_uvarint(data, p + HASH_BYTES, "width")
    height, p = read_uvarint(data, p, "height")
    if len(data) < p + 1:
        raise FormatError("truncated file: header incomplete")
    channels = data[p]
    p += 1
    images = 1
    if flags & FLAG_STACK:
        images, p = read_uvarint(data, p, "image count")
    count, p = read_uvarint(data, p, "chunk count")
    if len(data) < p + CRC.size:
        raise FormatError("truncated file: header incomplete")
    (crc,) = CRC.unpack_from(data, p)
    if zlib.crc32(data[pos:p]) != crc:
        raise FormatError("header CRC mismatch (file is corrupt)")
    codec = CODEC_IDS.get(number)
    if codec is None:
        raise FormatError(f"unknown codec number {number} (file needs a newer caec)")
    header = HeaderV2(codec, width, height, channels, weights, model, flags, images)
    header.validate()
    if count > MAX_CHUNKS:
        raise FormatError(f"malformed header: {count} chunks, more than {MAX_CHUNKS}")
    return header, count, p + CRC.size


def unpack(data: bytes | memoryview) -> ContainerV2:
    """Parse a whole version-2 file. A progressive file cut short gives the chunks that
    arrived whole (``complete`` is then False); any other defect is one FormatError."""
    header, count, pos = read_header(data)
    box = ContainerV2(header, declared=count)
    seen = (0, 0)
    for index in range(count):
        try:
            if pos + 4 > len(data):
                raise _Truncated(f"truncated file: chunk {index + 1} of {count} expected at byte {pos}")
            ctype = bytes(data[pos : pos + 4])
            _check_type(ctype)
            try:
                length, body = read_uvarint(data, pos + 4, f"length of chunk {ctype.decode()}")
            except FormatError as e:
                if "truncated" in str(e):
                    raise _Truncated(str(e)) from None
                raise
            seen = check_length(header, ctype, length, seen)
            if body + length + CRC.size > len(data):
                raise _Truncated(f"truncated file: chunk {ctype.decode()} of {length} bytes runs past the end")
        except _Truncated as e:
            if header.progressive and len(data) >= pos:
                return box  # a prefix: what arrived whole decodes
            raise FormatError(str(e)) from None
        payload = bytes(data[body : body + length])
        (crc,) = CRC.unpack_from(data, body + length)
        if zlib.crc32(ctype + payload) != crc:
            raise FormatError(f"chunk {ctype.decode()} CRC mismatch (file is corrupt)")
        if ctype == PARAMS and index:
            raise FormatError("PARM must be the first chunk")
        box.chunks.append((ctype, payload))
        pos = body + length + CRC.size
    if pos != len(data):
        raise FormatError(f"{len(data) - pos} bytes of trailing data after the last chunk")
    return box


class _Truncated(Exception):
    pass


def truncate(data: bytes, keep: int) -> bytes:
    """A progressive file cut to its first ``keep`` chunks, as a complete file (the header's
    chunk count rewritten): a smaller rate without re-encoding."""
    box = unpack(data)
    if not box.header.progressive:
        raise FormatError("only a progressive file can be cut to fewer chunks")
    if not 0 < keep <= len(box.chunks):
        raise FormatError(f"cannot keep {keep} of the {len(box.chunks)} chunks the file has")
    return pack(box.header, box.chunks[:keep])


def sniff(prefix: bytes) -> bool:
    return prefix.startswith(MAGIC) and len(prefix) > len(MAGIC) and prefix[len(MAGIC)] == VERSION


# the longest header: magic, version, flags, codec, 5-byte model, hash, 5-byte sides, channels,
# 5-byte image count, 5-byte chunk count, CRC
MAX_HEADER_BYTES = len(MAGIC) + 3 + MAX_VARINT_BYTES + HASH_BYTES + 2 * MAX_VARINT_BYTES + 1 + 2 * MAX_VARINT_BYTES + 4


def read_stream(take: Callable[[int], bytes], peek_end: Callable[[], bool], have: bytes) -> None:
    """Read one version-2 file through ``take(n)`` (the next n bytes, fewer at the end),
    ``have`` being what was read so far (magic and version), no further than its header and
    chunks explain; the bytes read are the caller's. A chunk declaring more than the header
    allows is refused before its payload is read; a progressive file may end early (parse
    then says how much arrived); ``peek_end()`` is True when nothing follows the last chunk."""
    data = have + take(MAX_HEADER_BYTES - len(have))
    header, count, pos = read_header(data)
    seen = (0, 0)
    pending = data[pos:]  # bytes read past the header: the start of the first chunk

    def more(n: int) -> bytes:
        nonlocal pending
        got, pending = pending[:n], pending[n:]
        return got + (take(n - len(got)) if len(got) < n else b"")

    for _ in range(count):
        ctype = more(4)
        if len(ctype) < 4:
            return _cut_short(header)
        raw = b""
        while True:
            byte = more(1)
            if not byte:
                return _cut_short(header)
            raw += byte
            if not byte[0] & 0x80 or len(raw) == MAX_VARINT_BYTES:
                break
        _check_type(ctype)
        length, _ = read_uvarint(raw, 0, f"length of chunk {ctype!r}")
        seen = check_length(header, ctype, length, seen)
        if len(more(length + CRC.size)) < length + CRC.size:
            return _cut_short(header)
    if pending or not peek_end():
        raise FormatError("trailing data after the last chunk (the file is longer than its chunks)")


def _cut_short(header: HeaderV2) -> None:
    if not header.progressive:
        raise FormatError("truncated file: it ends inside its chunks")
