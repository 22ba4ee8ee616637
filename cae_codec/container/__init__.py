"""The .cae container, whatever its version: read a file (bounded), parse it into a neutral
:class:`Box`, write the current version.

Version 2 (container.v2) is written by every codec; version 1 (container.v1, caec 0.1, the
CAE's own header) is still read, so old files keep decoding. docs/format.md is normative.

The version-1 names (Header, pack, unpack, LATENT...) are re-exported here for the code and
tests that build or take apart version-1 files on purpose.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from cae_codec.container import v1, v2
from cae_codec.container.v1 import (
    ALPHA,
    CHUNK_HEAD,
    CODESTREAM_EXPANSION,
    CODESTREAM_SLACK,
    CRC,
    END,
    FORMAT_VERSION,
    HEADER_FIELDS,
    HEADER_STRUCT,
    ICC,
    KNOWN_CRITICAL,
    LATENT,
    MAGIC,
    MAX_ANCILLARY_BYTES,
    MAX_CHUNKS,
    MAX_ICC_BYTES,
    MAX_PIXELS,
    MAX_SIDE,
    MODEL_NAME,
    NOT_CAE,
    Container,
    Header,
    check_chunk_length,
    chunk_limit,
    icc_profile_problem,
    pack,
    read_header,
    unpack,
)
from cae_codec.errors import FormatError, HeaderFieldError
from cae_codec.fsutil import read_error

__all__ = [
    "ALPHA",
    "CHUNK_HEAD",
    "CODESTREAM_EXPANSION",
    "CODESTREAM_SLACK",
    "CRC",
    "END",
    "FORMAT_VERSION",
    "HEADER_FIELDS",
    "HEADER_STRUCT",
    "ICC",
    "KNOWN_CRITICAL",
    "LATENT",
    "MAGIC",
    "MAX_ANCILLARY_BYTES",
    "MAX_CHUNKS",
    "MAX_ICC_BYTES",
    "MAX_PIXELS",
    "MAX_SIDE",
    "MODEL_NAME",
    "NOT_CAE",
    "VERSIONS",
    "Box",
    "Container",
    "Header",
    "HeaderFieldError",
    "check_chunk_length",
    "chunk_limit",
    "icc_profile_problem",
    "pack",
    "parse",
    "read_file",
    "read_header",
    "sniff",
    "unpack",
    "v1",
    "v2",
]

VERSIONS = (v1.FORMAT_VERSION, v2.VERSION)
# Payloads are read in pieces of this size at most, so that the memory a reader takes grows
# with the bytes that arrive, never with what a length field declares.
READ_PIECE = 1 << 20


@dataclass
class Box(v2.ChunkList):
    """A parsed .cae file of either version, as the codecs see it."""

    version: int
    codec: str
    width: int
    height: int
    channels: int
    # the weights it was made with: a name (version 1), a zoo number (version 2; 0: none)
    # and their hash (16 bytes in version 1, its first 8 in version 2)
    model: str | None
    model_number: int
    weights_hash: bytes
    flags: int = 0
    chunks: list[tuple[bytes, bytes]] = field(default_factory=list)
    declared: int = 0  # chunks the header announces (a progressive file may hold fewer)
    images: int = 1  # images of width x height in the file (several only with the stack flag)
    v1_header: Header | None = None  # a version-1 file's header: the CAE's parameters are in it

    @property
    def progressive(self) -> bool:
        return bool(self.flags & v2.FLAG_PROGRESSIVE)

    @property
    def stack(self) -> bool:
        return bool(self.flags & v2.FLAG_STACK)


def sniff(prefix: bytes) -> bool:
    """True if ``prefix`` starts like a .cae file of any version (for format detection)."""
    return prefix.startswith(MAGIC)


def _version(data: bytes) -> int:
    if len(data) < len(MAGIC) or not data.startswith(MAGIC):
        raise FormatError(NOT_CAE)
    if len(data) == len(MAGIC):
        raise FormatError("truncated file: no version byte")
    version = data[len(MAGIC)]
    if version not in VERSIONS:
        known = " and ".join(map(str, VERSIONS))
        raise FormatError(f"unsupported format version {version} (this caec reads versions {known})")
    return version


def parse(data: bytes | bytearray | memoryview) -> Box:
    """Parse a whole file of either version; any defect is one FormatError line."""
    raw = bytes(data)
    if _version(raw) == v1.FORMAT_VERSION:
        old = unpack(raw)
        hd = old.header
        chunks = list(old.chunks.items())
        return Box(
            version=1,
            codec=hd.codec,
            width=hd.width,
            height=hd.height,
            channels=hd.channels,
            model=hd.model,
            model_number=0,
            weights_hash=hd.weights_hash,
            chunks=chunks,
            declared=len(chunks),
            v1_header=hd,
        )
    new = v2.unpack(raw)
    h = new.header
    if len(new.all(ICC)) > 1:
        raise FormatError("duplicate chunk iccp")
    for ctype, payload in new.chunks:
        if ctype == ICC and (problem := icc_profile_problem(payload, h.channels)):
            raise FormatError(f"chunk iccp: {problem}")
    return Box(
        version=2,
        codec=h.codec,
        width=h.width,
        height=h.height,
        channels=h.channels,
        model=None,
        model_number=h.model_number,
        weights_hash=h.weights_hash,
        flags=h.flags,
        chunks=new.chunks,
        declared=new.declared,
        images=h.images,
    )


def read_file(source: Path | BinaryIO, label: str) -> bytes:
    """The bytes of one .cae file of either version, from a path or a stream (stdin, a
    pipe), read no further than its chunks explain.

    The magic is checked on the first 8 bytes, the header right after them, and every chunk's
    declared length against the header's limit before its payload is read; after the last
    chunk one byte more is read to refuse trailing data. So /dev/zero or a PNG fails after 8
    bytes, and no forged length or endless stream makes it read more than a genuine file of
    that header. CRCs and chunk types are left to parse. Errors name ``label``: FormatError
    for the contents, CaecError when the file cannot be read.
    """
    try:
        if isinstance(source, Path):
            with source.open("rb") as stream:
                return _read_stream(stream)
        return _read_stream(source)
    except FormatError as e:
        raise FormatError(f"{label}: {e}") from None
    except OSError as e:
        raise read_error(label, e) from None


def _read_stream(stream: BinaryIO) -> bytes:
    parts: list[bytes] = []

    def take(n: int) -> bytes:
        """The next ``n`` bytes (fewer at the end of the stream), kept in ``parts``."""
        start = len(parts)
        while n > 0:
            piece = stream.read(min(n, READ_PIECE))
            if not piece:
                break
            parts.append(piece)
            n -= len(piece)
        return b"".join(parts[start:])

    def at_end() -> bool:
        return not stream.read(1)

    if not sniff(take(len(MAGIC))):  # a foreign or endless input fails on its first 8 bytes
        raise FormatError(NOT_CAE)
    have = b"".join(parts) + take(1)
    reader: Callable[[Callable[[int], bytes], Callable[[], bool], bytes], None]
    reader = v1.read_stream if _version(have) == v1.FORMAT_VERSION else v2.read_stream
    reader(take, at_end, have)
    return b"".join(parts)
