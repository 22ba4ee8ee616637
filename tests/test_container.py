"""Container round trip and every kind of corruption -> FormatError."""

from __future__ import annotations

import struct
import zlib

import pytest

from cae_codec import container
from cae_codec.container import ALPHA, END, LATENT, MAGIC, Header
from cae_codec.errors import FormatError


def make_header(**kw: object) -> Header:
    fields: dict[str, object] = dict(
        channels=4,  # RGBA: a file with an ALPH chunk
        width=300,
        height=200,
        tile=128,
        padded_width=384,
        padded_height=256,
        codec="cae-pca-j2k",
        model="cae-gdn-v1",
        weights_hash=bytes(range(16)),
        step=1.5,
        quality=4,
        latent_channels=96,
        components=10,
        mosaic_cols=4,
    )
    fields.update(kw)
    return Header(**fields)  # type: ignore[arg-type]


CHUNKS = [(LATENT, b"latent-bytes" * 10), (ALPHA, b"alpha")]


def test_round_trip() -> None:
    h = make_header()
    box = container.unpack(container.pack(h, CHUNKS))
    assert box.header == h
    assert box.chunks == dict(CHUNKS)


def test_layout_matches_docs_format_md() -> None:
    data = container.pack(make_header(), CHUNKS)
    _, first_chunk = container.read_header(data)
    assert first_chunk == 108
    assert data[8] == container.FORMAT_VERSION
    assert struct.unpack_from(">II", data, 11) == (300, 200)
    assert data[29:40] == b"cae-pca-j2k" and data[77:93] == bytes(range(16))
    assert struct.unpack_from(">f", data, 93)[0] == 1.5 and data[97] == 4
    assert struct.unpack_from(">HHH", data, 98) == (96, 10, 4)
    assert data[-12:-8] == END and data[108:112] == LATENT


def test_step_is_stored_exactly_as_float32() -> None:
    h = make_header(step=0.1)
    box = container.unpack(container.pack(h, []))
    assert box.header.step == struct.unpack(">f", struct.pack(">f", 0.1))[0]


def chunk_boundaries(data: bytes) -> list[int]:
    _, pos = container.read_header(data)
    cuts = [len(MAGIC), len(MAGIC) + 1, pos]
    while pos < len(data):
        (length,) = struct.unpack_from(">I", data, pos + 4)
        cuts += [pos + 4, pos + 8, pos + 8 + length]
        pos += 12 + length
        cuts.append(pos)
    return sorted(set(c for c in cuts if c < len(data)))


def test_truncation_at_every_chunk_boundary() -> None:
    data = container.pack(make_header(), CHUNKS)
    cuts = chunk_boundaries(data)
    assert len(cuts) > 8
    for cut in [0, *cuts, len(data) - 1]:
        with pytest.raises(FormatError):
            container.unpack(data[:cut])


def test_truncation_at_every_byte() -> None:
    data = container.pack(make_header(), CHUNKS)
    for cut in range(len(data)):
        with pytest.raises(FormatError):
            container.unpack(data[:cut])


def test_every_single_byte_flip_is_detected() -> None:
    data = container.pack(make_header(), CHUNKS)
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x40
        with pytest.raises(FormatError):
            container.unpack(bytes(bad))


def test_wrong_magic_and_version() -> None:
    data = container.pack(make_header(), CHUNKS)
    with pytest.raises(FormatError, match="magic"):
        container.unpack(b"\x89PNG\r\n\x1a\n" + data[8:])
    future = bytearray(data)
    future[8] = max(container.VERSIONS) + 1
    with pytest.raises(FormatError, match="version"):
        container.unpack(bytes(future))


def test_sniff_tells_cae_from_other_files() -> None:
    assert container.sniff(container.pack(make_header(), CHUNKS)[:16])
    assert not container.sniff(b"\x89PNG\r\n\x1a\n")
    assert not container.sniff(b"")


def test_trailing_garbage_rejected() -> None:
    data = container.pack(make_header(), CHUNKS)
    with pytest.raises(FormatError, match="trailing"):
        container.unpack(data + b"x")


def _with_extra_chunk(ctype: bytes) -> bytes:
    data = container.pack(make_header(), CHUNKS)
    end = container.CHUNK_HEAD.pack(END, 0) + container.CRC.pack(zlib.crc32(END))
    extra = container.CHUNK_HEAD.pack(ctype, 3) + b"abc" + container.CRC.pack(zlib.crc32(ctype + b"abc"))
    return data[: -len(end)] + extra + end


def test_unknown_ancillary_chunk_is_skipped_critical_refused() -> None:
    box = container.unpack(_with_extra_chunk(b"note"))
    assert box.chunks[b"note"] == b"abc"
    with pytest.raises(FormatError, match="critical"):
        container.unpack(_with_extra_chunk(b"NEWX"))


@pytest.mark.parametrize(
    "field, value",
    [
        ("channels", 0),
        ("channels", 5),
        ("width", 0),
        ("height", 0),
        ("width", 100_000_000),
        ("padded_width", 300),
        ("padded_height", 1000),
        ("tile", 0),
        ("step", 0.0),
        ("step", float("nan")),
        ("components", 97),
        ("mosaic_cols", 0),
        ("flags", 1),
    ],
)
def test_inconsistent_header_rejected_on_write_and_read(field: str, value: object) -> None:
    bad = make_header(**{field: value})
    with pytest.raises(FormatError):
        container.pack(bad, [])
    # the same header forged into a file (valid CRC) must be refused by the reader too
    good = container.pack(make_header(), [])
    fields = list(container.HEADER_STRUCT.unpack_from(good, len(MAGIC) + 1))
    fields[container.HEADER_FIELDS.index(field)] = value
    fixed = bytes([container.FORMAT_VERSION]) + container.HEADER_STRUCT.pack(*fields)
    forged = MAGIC + fixed + container.CRC.pack(zlib.crc32(fixed)) + good[len(MAGIC) + len(fixed) + 4 :]
    with pytest.raises(FormatError):
        container.unpack(forged)


def test_names_must_fit_their_fields() -> None:
    with pytest.raises(ValueError):
        container.pack(make_header(model="x" * 33), [])
