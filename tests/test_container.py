"""Container round trip and every kind of corruption -> FormatError, in both versions:
version 1 (caec 0.1's files, still read; container.unpack) and version 2 (what caec writes;
container.parse reads either), and the cae-pca-j2k payload checks behind version 2's PARM."""

from __future__ import annotations

import math
import struct
import zlib

import numpy as np
import pytest

from cae_codec import container
from cae_codec.cae import payload
from cae_codec.cae.payload import PARAMS_STRUCT
from cae_codec.container import ALPHA, END, ICC, LATENT, MAGIC, Header, v2
from cae_codec.container.v2 import PARAMS
from cae_codec.errors import FormatError
from cae_codec.stages import j2k
from tools.fuzz import icc_header, leb128, raw_chunk_v2, raw_header_v2


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


def test_unpack_is_the_version_1_parser() -> None:
    data = v2.pack(make_header_v2(), CHUNKS_V2)
    with pytest.raises(FormatError, match=r"unsupported format version 2 \(this caec reads version 1\)"):
        container.unpack(data)
    assert container.parse(data).version == 2


# ---------------------------------------------------------------- version 2


def make_header_v2(**kw: object) -> v2.HeaderV2:
    fields: dict[str, object] = dict(
        codec="cae-pca-j2k",
        width=300,
        height=200,
        channels=4,  # RGBA: a file with an ALPH chunk
        weights_hash=bytes(range(8)),
        model_number=1,
    )
    fields.update(kw)
    return v2.HeaderV2(**fields)  # type: ignore[arg-type]


# tile, step, quality, latent channels M, components K, mosaic columns C
PARAMS_V2 = {"tile": 128, "step": 1.5, "quality": 4, "latent": 96, "components": 10, "cols": 4}


def parm(**kw: float) -> bytes:
    return PARAMS_STRUCT.pack(*{**PARAMS_V2, **kw}.values())


CHUNKS_V2 = [(PARAMS, parm()), (LATENT, b"latent-bytes" * 10), (ALPHA, b"alpha")]
# make_header_v2's fields as tools.fuzz.raw_header_v2 takes them
RAW_V2 = {
    "flags": 0,
    "codec": 1,
    "model": 1,
    "weights_hash": bytes(range(8)),
    "width": 300,
    "height": 200,
    "channels": 4,
    "count": len(CHUNKS_V2),
}


def forged_v2(chunks: list[tuple[bytes, bytes]] = CHUNKS_V2, **fields: object) -> bytes:
    """A version-2 file of RAW_V2 with ``fields`` changed, written without validation (header
    CRC and chunk CRCs valid); the chunk count is that of ``chunks`` unless given."""
    header = raw_header_v2({**RAW_V2, "count": len(chunks), **fields})
    return header + b"".join(raw_chunk_v2(t, p) for t, p in chunks)


def test_v2_round_trip() -> None:
    data = v2.pack(make_header_v2(), CHUNKS_V2)
    assert data == forged_v2()  # the raw writer of the hostile cases writes what pack does
    box = container.parse(data)
    assert (box.version, box.codec, box.width, box.height, box.channels) == (2, "cae-pca-j2k", 300, 200, 4)
    assert (box.model, box.model_number, box.weights_hash) == (None, 1, bytes(range(8)))
    assert box.chunks == CHUNKS_V2 and box.complete and box.v1_header is None and box.flags == 0
    assert payload.params(box) == payload.CaeParams(128, 1.5, 4, 96, 10, 4, 384, 256)


def test_v2_layout_matches_docs_format_md() -> None:
    data = v2.pack(make_header_v2(), CHUNKS_V2)
    _, count, first_chunk = v2.read_header(data)
    assert data[:8] == MAGIC and data[8:11] == bytes([2, 0, 1])  # version, flags, codec number
    assert data[11] == 1 and data[12:20] == bytes(range(8))  # model number, hash prefix
    assert data[20:25] == b"\xac\x02\xc8\x01\x04"  # 300 and 200 as uvarints, 4 channels
    assert data[25] == count == 3 and first_chunk == 30
    assert struct.unpack_from(">I", data, 26)[0] == zlib.crc32(data[8:26])
    assert data[30:35] == PARAMS + bytes([13]) and data[35:48] == parm()
    assert PARAMS_STRUCT.unpack(data[35:48]) == (128, 1.5, 4, 96, 10, 4)
    assert struct.unpack_from(">I", data, 48)[0] == zlib.crc32(PARAMS + parm())
    assert data[52:56] == LATENT and data[-4 - 5 - 1 - 4 : -4 - 5 - 1] == ALPHA  # no END_ chunk


def test_v1_and_v2_of_one_image_have_the_same_parameters() -> None:
    """parse gives either version as a Box; the CAE's parameters are the same whether they
    come from version 1's header or version 2's PARM."""
    old = container.parse(container.pack(make_header(), CHUNKS))
    new = container.parse(v2.pack(make_header_v2(), CHUNKS_V2))
    assert old.version == 1 and old.v1_header == make_header() and old.model == "cae-gdn-v1"
    assert payload.params(old) == payload.params(new)
    assert old.chunks == CHUNKS and new.chunks[1:] == CHUNKS


def test_v2_truncation_at_every_byte() -> None:
    """Not progressive: a file cut anywhere is one FormatError line, never a shorter file."""
    data = v2.pack(make_header_v2(), CHUNKS_V2)
    for cut in range(len(data)):
        with pytest.raises(FormatError) as e:
            container.parse(data[:cut])
        assert "\n" not in str(e.value)
        if cut >= 30:  # past the header: what is missing is named
            assert str(e.value).startswith("truncated file: "), (cut, e.value)


def test_v2_every_single_byte_flip_is_detected() -> None:
    data = v2.pack(make_header_v2(), CHUNKS_V2)
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x40
        with pytest.raises(FormatError):
            container.parse(bytes(bad))


def test_v2_corrupt_crcs_and_trailing_data() -> None:
    data = v2.pack(make_header_v2(), CHUNKS_V2)
    with pytest.raises(FormatError, match=r"^header CRC mismatch"):
        container.parse(data[:29] + bytes([data[29] ^ 1]) + data[30:])
    with pytest.raises(FormatError, match=r"^chunk ALPH CRC mismatch"):
        container.parse(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(FormatError, match=r"^chunk LATN CRC mismatch"):
        container.parse(forged_v2()[:52] + raw_chunk_v2(LATENT, b"x", crc_ok=False) + raw_chunk_v2(ALPHA, b"alpha"))
    with pytest.raises(FormatError, match=r"^1 bytes of trailing data after the last chunk"):
        container.parse(data + b"x")
    with pytest.raises(FormatError, match=r"^unsupported format version 3 \(this caec reads versions 1 and 2\)"):
        container.parse(data[:8] + b"\x03" + data[9:])


@pytest.mark.parametrize(
    "fields, needle",
    [
        ({"flags": 4}, "unknown flags 0x4 (file needs a newer caec)"),
        ({"flags": 0x80}, "unknown flags 0x80"),
        ({"codec": 0}, "unknown codec number 0 (file needs a newer caec)"),
        ({"codec": 5}, "unknown codec number 5"),
        ({"codec": 255}, "unknown codec number 255"),
        ({"model": 2**32}, "malformed model number: 4294967296 is above 4294967295"),
        ({"width": 0}, "malformed header: image size 0x200"),
        ({"height": 0}, "malformed header: image size 300x0"),
        ({"width": v2.MAX_SIDE + 1}, "malformed header: image size 1048577x200"),
        ({"width": 2**32}, "malformed width: 4294967296 is above 4294967295"),
        ({"width": v2.MAX_SIDE, "height": v2.MAX_SIDE}, "1048576x1048576 exceeds 4294967296 pixels"),
        ({"channels": 0}, "malformed header: 0 channels"),
        ({"channels": 5}, "malformed header: 5 channels"),
        ({"count": v2.MAX_CHUNKS + 1}, "malformed header: 4097 chunks, more than 4096"),
        ({"count": 2**32 - 1}, "malformed header: 4294967295 chunks"),
        # a longer hash prefix shifts every field after it: the CRC is read from the wrong place
        ({"weights_hash": bytes(9)}, "header CRC mismatch"),
    ],
)
def test_v2_forged_header_fields_are_refused(fields: dict[str, object], needle: str) -> None:
    with pytest.raises(FormatError) as e:
        container.parse(forged_v2(**fields))
    assert needle in str(e.value)


def test_v2_header_values_the_container_leaves_to_the_codec() -> None:
    """Model number 0 (weights found by hash), a hash prefix of zeros, flags 1 and 2 and the
    largest header values are the container's to accept; the codec refuses what it cannot use
    (flags: test_cae_payload_refuses_flags; the model: tests/test_robustness.py)."""
    for fields in ({"model": 0}, {"model": 2**32 - 1}, {"weights_hash": bytes(8)}, {"flags": 1}, {"flags": 3}):
        box = container.parse(forged_v2(**fields))
        assert box.chunks == CHUNKS_V2
    big = container.parse(forged_v2(width=v2.MAX_SIDE, height=v2.MAX_PIXELS // v2.MAX_SIDE))
    assert (big.width, big.height) == (1 << 20, 1 << 12)


@pytest.mark.parametrize("field", ["model", "width", "height", "count"])
def test_v2_header_varints_only_in_their_shortest_form(field: str) -> None:
    value = RAW_V2[field] if field != "count" else len(CHUNKS_V2)
    assert isinstance(value, int)
    what = {"model": "model number", "count": "chunk count"}.get(field, field)
    assert container.parse(forged_v2(**{field: leb128(value)})).chunks == CHUNKS_V2
    for raw, needle in [
        (leb128(value, len(leb128(value)) + 1), f"malformed {what}: a uvarint in a longer form than needed"),
        (leb128(value, 5), f"malformed {what}: a uvarint in a longer form than needed"),
        (leb128(value, 6), f"malformed {what}: a uvarint of more than 5 bytes"),
        (b"\x80" * 5 + b"\x00", f"malformed {what}: a uvarint of more than 5 bytes"),
        (leb128(2**32), f"malformed {what}: 4294967296 is above 4294967295"),
        (leb128(2**35 - 1), f"malformed {what}: 34359738367 is above 4294967295"),
    ]:
        with pytest.raises(FormatError) as e:
            container.parse(forged_v2(**{field: raw}))
        assert str(e.value) == needle, raw
    # a header that ends inside the varint (255: two bytes, the first found nowhere before it)
    data = forged_v2(**{field: leb128(255)})
    start = data.index(leb128(255))
    with pytest.raises(FormatError, match=f"^truncated file: {what} incomplete$"):
        container.parse(data[: start + 1])


def test_v2_chunk_count_must_match_the_chunks() -> None:
    with pytest.raises(FormatError, match=r"^truncated file: chunk 4 of 4 expected at byte 195$"):
        container.parse(forged_v2(count=4))
    with pytest.raises(FormatError, match=r"^truncated file: chunk 4 of 4096 expected at byte 196$"):
        container.parse(forged_v2(count=4096))
    with pytest.raises(FormatError, match=r"^14 bytes of trailing data after the last chunk$"):
        container.parse(forged_v2(count=2))
    with pytest.raises(FormatError, match=r"^165 bytes of trailing data after the last chunk$"):
        container.parse(forged_v2(count=0))
    # no chunk at all is the container's to accept; the codec wants its PARM
    box = container.parse(forged_v2([]))
    with pytest.raises(FormatError, match=r"^missing PARM chunk"):
        payload.params(box)


def test_v2_chunk_lengths() -> None:
    limit = make_header_v2().chunk_limit()
    assert limit == 2 * 300 * 200 * 4 + v2.CHUNK_SLACK
    head = raw_header_v2(RAW_V2)  # of a 3-chunk file
    parm_chunk = raw_chunk_v2(PARAMS, parm())
    cases = [
        (raw_chunk_v2(LATENT, b"x" * 20, declared=21), "truncated file: chunk LATN of 21 bytes runs past the end"),
        (raw_chunk_v2(LATENT, b"", declared=limit + 1), f"chunk LATN declares {limit + 1} bytes, over this header's"),
        (raw_chunk_v2(LATENT, b"", declared=2**32 - 1), "chunk LATN declares 4294967295 bytes, over this header's"),
        (raw_chunk_v2(LATENT, b"x", declared=leb128(1, 2)), "malformed length of chunk LATN: a uvarint in a longer"),
        (
            raw_chunk_v2(LATENT, b"x", declared=b"\x81\x80\x80\x80\x80\x00"),
            "malformed length of chunk LATN: a uvarint of more than",
        ),
        (raw_chunk_v2(LATENT, b"x", declared=leb128(2**32 + 1)), "malformed length of chunk LATN: 4294967297 is above"),
        (LATENT + b"\x80\x80", "truncated file: length of chunk LATN incomplete"),
        (LATENT[:3], "truncated file: chunk 2 of 3 expected at byte 52"),
    ]
    for chunk, needle in cases:
        with pytest.raises(FormatError) as e:
            container.parse(head + parm_chunk + chunk)
        assert str(e.value).startswith(needle), (chunk[:12], e.value)


def test_v2_chunk_types() -> None:
    with pytest.raises(FormatError, match=r"^invalid chunk type b'L\\x00TN'$"):
        container.parse(forged_v2([*CHUNKS_V2, (b"L\0TN", b"x")]))
    with pytest.raises(FormatError, match=r"^PARM must be the first chunk$"):
        container.parse(forged_v2([CHUNKS_V2[1], CHUNKS_V2[0], CHUNKS_V2[2]]))
    with pytest.raises(FormatError, match=r"^PARM must be the first chunk$"):
        container.parse(forged_v2([CHUNKS_V2[0], *CHUNKS_V2]))
    # types repeat and the container knows no critical types: those are the codec's
    box = container.parse(forged_v2([*CHUNKS_V2, (LATENT, b"y"), (b"NEWX", b""), (END, b""), (b"note", b"n")]))
    assert box.all(LATENT) == [CHUNKS_V2[1][1], b"y"] and box.first(b"note") == b"n"
    with pytest.raises(FormatError, match=r"^chunk iccp: not an ICC profile"):
        container.parse(forged_v2([*CHUNKS_V2, (ICC, b"junk")]))
    with pytest.raises(FormatError, match=r"^chunk iccp: ICC profile for 'GRAY' data cannot describe an RGB"):
        container.parse(forged_v2([*CHUNKS_V2, (ICC, icc_header(b"GRAY"))]))
    assert container.parse(forged_v2([*CHUNKS_V2, (ICC, icc_header(b"RGB "))])).first(ICC) == icc_header(b"RGB ")
    with pytest.raises(FormatError, match=r"^duplicate chunk iccp$"):
        container.parse(forged_v2([*CHUNKS_V2, (ICC, icc_header(b"RGB ")), (ICC, icc_header(b"RGB "))]))


# ---------------------------------------------------------------- cae-pca-j2k payload (PARM and chunks)

STRIDE = 16  # a model of 4 stages


def cae_file(channels: int = 3, flags: int = 0, **params: float) -> container.Box:
    """A version-2 cae-pca-j2k file of 300 x 200 pixels that passes payload.check at
    STRIDE with 96 latent channels (genuine codestreams of the right shapes), as a Box."""
    p = {**PARAMS_V2, **params}
    chunks = [(PARAMS, parm(**params))]
    k, cols = int(p["components"]), int(p["cols"])
    if k and cols and not 384 % STRIDE:
        shape = j2k.latent_mosaic_shape(k, cols, 256 // STRIDE, 384 // STRIDE)
        chunks.append((LATENT, j2k.encode_plane(np.zeros(shape, np.int16), 0)))
    if channels in (2, 4):
        chunks.append((ALPHA, j2k.encode_plane(np.full((200, 300), 255, np.uint8), 0)))
    return container.parse(forged_v2(chunks, channels=channels, flags=flags))


def with_chunks_of(box: container.Box, chunks: list[tuple[bytes, bytes]]) -> container.Box:
    return container.parse(forged_v2(chunks, channels=box.channels))


def test_cae_payload_check_passes_a_valid_file() -> None:
    for channels in (1, 2, 3, 4):
        for components, cols in ((10, 4), (0, 0)):
            box = cae_file(channels, components=components, cols=cols)
            assert payload.check(box, STRIDE, 96).components == components
            assert payload.check(box) == payload.params(box)  # without a model: what needs none


@pytest.mark.parametrize(
    "params, needle",
    [
        ({"step": 0.0}, "malformed parameters: quantization step 0.0"),
        ({"step": -1.0}, "malformed parameters: quantization step -1.0"),
        ({"step": math.nan}, "malformed parameters: quantization step nan"),
        ({"step": math.inf}, "malformed parameters: quantization step inf"),
        ({"step": 1e6}, "malformed parameters: quantization step 1000000.0"),
        ({"tile": 0}, "malformed parameters: tile of 0 pixels"),
        ({"latent": 0, "components": 0, "cols": 0}, "malformed parameters: 0 of 0 components"),
        ({"latent": 4097}, "malformed parameters: 10 of 4097 components"),
        ({"components": 97}, "malformed parameters: 97 of 96 components"),
        ({"cols": 0}, "malformed parameters: mosaic of 0 columns for 10 components"),
        ({"cols": 11}, "malformed parameters: mosaic of 11 columns for 10 components"),
        ({"components": 0, "cols": 4}, "malformed parameters: mosaic of 4 columns without components"),
        ({"latent": 95}, "file declares 95 latent channels, the model has 96"),
        ({"tile": 100}, "tiles of 100 pixels; cae-pca-j2k codes tiles of 128"),
        ({"tile": 256}, "tiles of 256 pixels; cae-pca-j2k codes tiles of 128"),
    ],
)
def test_cae_payload_refuses_bad_parameters(params: dict[str, float], needle: str) -> None:
    box = cae_file(**params)
    with pytest.raises(FormatError) as e:
        payload.check(box, STRIDE, 96)
    assert str(e.value) == needle


def test_cae_payload_needs_a_padded_size_of_whole_latent_cells() -> None:
    # 128-pixel tiles fit any stride up to 128: a model of 8 stages (stride 256) does not
    with pytest.raises(FormatError, match=r"^padded size 384x256 does not fit the model's stride 256$"):
        payload.check(cae_file(), 256, 96)


@pytest.mark.parametrize("flags", [v2.FLAG_PROGRESSIVE, v2.FLAG_STACK, v2.FLAG_PROGRESSIVE | v2.FLAG_STACK])
def test_cae_payload_refuses_flags(flags: int) -> None:
    """Every cae-pca-j2k file has flags 0 (docs/format.md 3.3): one that claims to be
    progressive or several images is refused, not decoded as if the flags were 0."""
    box = cae_file(flags=flags)
    assert box.flags == flags
    with pytest.raises(FormatError, match=f"^flags {flags:#x} do not apply to cae-pca-j2k files$"):
        payload.check(box, STRIDE, 96)


def test_cae_payload_refuses_bad_chunks() -> None:
    rgba = cae_file(4)
    parm_, latent, alpha = rgba.chunks
    grey = cae_file(1)
    no_latent = cae_file(3, components=0, cols=0)
    cases = [
        (with_chunks_of(rgba, [latent, alpha]), "missing PARM chunk (the codec's parameters)"),
        (with_chunks_of(rgba, [(PARAMS, parm_[1][:-1]), latent, alpha]), "PARM chunk of 12 bytes, not 13"),
        (with_chunks_of(rgba, [(PARAMS, parm_[1] + b"\0"), latent, alpha]), "PARM chunk of 14 bytes, not 13"),
        (with_chunks_of(rgba, [(PARAMS, b""), latent, alpha]), "PARM chunk of 0 bytes, not 13"),
        (with_chunks_of(rgba, [parm_, alpha]), "missing latent chunk"),
        (with_chunks_of(rgba, [parm_, latent]), "missing alpha chunk"),
        (with_chunks_of(rgba, [parm_, latent, latent, alpha]), "duplicate chunk LATN"),
        (with_chunks_of(rgba, [parm_, latent, alpha, alpha]), "duplicate chunk ALPH"),
        (with_chunks_of(no_latent, [*no_latent.chunks, latent]), "a latent chunk in a file without components"),
        (with_chunks_of(grey, [*grey.chunks, alpha]), "an alpha chunk in a file without alpha"),
        (with_chunks_of(rgba, [*rgba.chunks, (b"NEWX", b"")]), "unknown critical chunk NEWX for cae-pca-j2k"),
        (with_chunks_of(rgba, [*rgba.chunks, (END, b"")]), "unknown critical chunk END_ for cae-pca-j2k"),
        (with_chunks_of(rgba, [parm_, (LATENT, alpha[1]), alpha]), "latent codestream is 300x200x1"),
        (with_chunks_of(rgba, [parm_, latent, (ALPHA, latent[1])]), "alpha codestream is"),
    ]
    for box, needle in cases:
        with pytest.raises(FormatError) as e:
            payload.check(box, STRIDE, 96)
        assert str(e.value).startswith(needle), (needle, e.value)
    # ancillary chunks anywhere after PARM are skipped
    box = with_chunks_of(rgba, [parm_, (b"note", b"n"), latent, (b"more", b""), alpha, (b"note", b"")])
    assert payload.check(box, STRIDE, 96).components == 10
