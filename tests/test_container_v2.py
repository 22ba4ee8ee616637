"""Version 2 of the container: compact header, ordered repeatable chunks, progressive prefixes."""

from __future__ import annotations

import pytest

from cae_codec.container import v2
from cae_codec.errors import FormatError


def header(**kw) -> v2.HeaderV2:
    fields = {"codec": "rnn", "width": 28, "height": 28, "channels": 1, "weights_hash": bytes(range(8))}
    fields.update(kw)
    return v2.HeaderV2(**fields)


@pytest.mark.parametrize("value", [0, 1, 127, 128, 16383, 16384, 2**32 - 1])
def test_uvarint_round_trip(value: int) -> None:
    raw = v2.uvarint(value)
    assert v2.read_uvarint(raw, 0, "x") == (value, len(raw))


@pytest.mark.parametrize("raw", [b"\x80\x00", b"\xff\xff\xff\xff\x7f", b"\x80\x80\x80\x80\x80\x01", b"\x80"])
def test_malformed_uvarints_are_refused(raw: bytes) -> None:
    with pytest.raises(FormatError):
        v2.read_uvarint(raw, 0, "x")


def test_a_one_chunk_file_costs_at_most_40_bytes_besides_its_payload() -> None:
    for side in (1, 28, 768, 16383):
        payload = bytes(16383)
        data = v2.pack(header(width=side, height=side, model_number=3), [(b"CODE", payload)])
        assert len(data) - len(payload) <= 40, side
    assert len(v2.pack(header(), [(b"CODE", b"\x01" * 20)])) - 20 == 37


def test_chunks_keep_their_order_and_may_repeat() -> None:
    chunks = [(b"PARM", b"p"), (b"PASS", b"a"), (b"iccp", b"icc"), (b"PASS", b"bb"), (b"PASS", b"")]
    box = v2.unpack(v2.pack(header(flags=v2.FLAG_PROGRESSIVE), chunks))
    assert box.chunks == chunks and box.complete and box.declared == 5
    assert box.all(b"PASS") == [b"a", b"bb", b""] and box.first(b"iccp") == b"icc"
    assert box.header == header(flags=v2.FLAG_PROGRESSIVE)


def test_a_cut_progressive_file_decodes_to_its_last_whole_chunk() -> None:
    chunks = [(b"PASS", bytes([i]) * (10 + i)) for i in range(6)]
    data = v2.pack(header(flags=v2.FLAG_PROGRESSIVE), chunks)
    first_chunk = len(v2.pack(header(flags=v2.FLAG_PROGRESSIVE), []))
    ends = []
    pos = first_chunk
    for _, p in chunks:
        pos += 4 + 1 + len(p) + 4
        ends.append(pos)
    for cut in range(first_chunk, len(data) + 1):
        box = v2.unpack(data[:cut])
        whole = sum(e <= cut for e in ends)
        assert box.chunks == chunks[:whole], cut
        assert box.complete == (cut == len(data))


def test_a_cut_header_is_an_error_even_when_progressive() -> None:
    data = v2.pack(header(flags=v2.FLAG_PROGRESSIVE), [(b"PASS", b"x")])
    for cut in range(len(v2.MAGIC) + 1, 24):
        with pytest.raises(FormatError):
            v2.unpack(data[:cut])


def test_a_cut_file_that_is_not_progressive_is_an_error() -> None:
    data = v2.pack(header(), [(b"CODE", b"x" * 30), (b"CODE", b"y")])
    for cut in range(len(v2.MAGIC) + 1, len(data)):
        with pytest.raises(FormatError):
            v2.unpack(data[:cut])


@pytest.mark.parametrize(
    "mutate, needle",
    [
        (lambda d: d + b"\0", "trailing data"),
        (lambda d: d[:-1] + bytes([d[-1] ^ 1]), "CRC mismatch"),
        (lambda d: d[:12] + bytes([d[12] ^ 1]) + d[13:], "header CRC"),
    ],
)
def test_corrupt_files_are_refused(mutate, needle: str) -> None:
    data = v2.pack(header(), [(b"CODE", b"payload")])
    with pytest.raises(FormatError, match=needle):
        v2.unpack(mutate(data))


def test_header_fields_are_checked() -> None:
    with pytest.raises(FormatError, match="unknown flags"):
        v2.pack(header(flags=4), [])
    with pytest.raises(FormatError, match="channels"):
        v2.pack(header(channels=5), [])
    with pytest.raises(FormatError, match="unknown codec"):
        v2.pack(header(codec="nope"), [])
    with pytest.raises(FormatError, match="PARM must be the first"):
        v2.unpack(v2.pack(header(), [(b"CODE", b"x"), (b"PARM", b"y")]))


def test_a_chunk_over_the_limit_is_refused_before_its_payload() -> None:
    data = bytearray(v2.pack(header(width=2, height=2), [(b"CODE", b"x")]))
    # rewrite the one-byte length into a 5-byte one far over the limit (CRC no longer matters)
    start = len(v2.pack(header(width=2, height=2), [])) + 4
    data[start : start + 1] = v2.uvarint(2**31)
    with pytest.raises(FormatError, match="over this header's limit"):
        v2.unpack(bytes(data))


def test_truncate_keeps_a_prefix_as_a_complete_file() -> None:
    chunks = [(b"PARM", b"p"), *[(b"PASS", bytes([i]) * 5) for i in range(4)]]
    data = v2.pack(header(flags=v2.FLAG_PROGRESSIVE), chunks)
    short = v2.truncate(data, 3)
    box = v2.unpack(short)
    assert box.complete and box.chunks == chunks[:3] and len(short) < len(data)
    with pytest.raises(FormatError):
        v2.truncate(v2.pack(header(), chunks), 2)


def test_a_file_of_several_images_says_how_many() -> None:
    stack = header(flags=v2.FLAG_STACK, images=3)
    data = v2.pack(stack, [(b"CODE", b"a"), (b"CODE", b"b"), (b"CODE", b"c")])
    assert v2.unpack(data).header.images == 3
    assert len(data) == len(v2.pack(header(), [(b"CODE", b"a"), (b"CODE", b"b"), (b"CODE", b"c")])) + 1
    for bad in (header(flags=v2.FLAG_STACK, images=1), header(images=2), header(flags=v2.FLAG_STACK, images=2**16 + 1)):
        with pytest.raises(FormatError, match="images"):
            v2.pack(bad, [])
    # the count bounds what the chunks may hold in all: 3 digits' worth, not 65,536
    assert stack.chunk_limit() == 2 * 28 * 28 * 3 + v2.CHUNK_SLACK
