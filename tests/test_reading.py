"""container.read_file: a .cae file read from a path or a stream no further than its chunks
explain, refused from its first bytes when they cannot start one (issue 19, item 4). Both
versions: version 1 (caec 0.1's files, still read) and version 2 (what caec writes)."""

from __future__ import annotations

import dataclasses
import errno
import io
import os
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cae_codec import container
from cae_codec.cae import payload
from cae_codec.cae.codec import FamilyCodec
from cae_codec.container import ALPHA, CHUNK_HEAD, CRC, END, LATENT, MAGIC, v2
from cae_codec.container.v2 import PARAMS
from cae_codec.errors import CaecError, FormatError
from cae_codec.stages import quant
from tests.conftest import REPO
from tests.test_container import CHUNKS_V2, RAW_V2, forged_v2, make_header, make_header_v2, parm
from tools.fuzz import EndlessStream, as_v1, leb128, raw_chunk_v2, raw_header_v2

FIRST_CHUNK = 108
CHUNKS = [(LATENT, b"latent-bytes" * 10), (ALPHA, b"alpha")]


def chunk(ctype: bytes, payload: bytes, declared: int | None = None) -> bytes:
    length = len(payload) if declared is None else declared
    return CHUNK_HEAD.pack(ctype, length) + payload + CRC.pack(zlib.crc32(ctype + payload))


def valid_file() -> bytes:
    return container.pack(make_header(), CHUNKS)


def test_valid_file_is_read_exactly_from_a_path_and_a_stream(tmp_path: Path) -> None:
    data = valid_file()
    path = tmp_path / "x.cae"
    path.write_bytes(data)
    assert container.read_file(path, "x.cae") == data
    stream = EndlessStream(data)
    assert container.read_file(stream, "<stdin>") == data
    assert stream.taken == len(data)


def test_a_pipe_is_read_to_its_end(tmp_path: Path) -> None:
    data = container.pack(make_header(), [(LATENT, os.urandom(300_000)), (ALPHA, b"alpha")])
    read_end, write_end = os.pipe()

    def write() -> None:
        # in pieces smaller than the pipe's buffer, so that reads return short
        with os.fdopen(write_end, "wb") as w:
            for i in range(0, len(data), 5000):
                w.write(data[i : i + 5000])
                w.flush()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        with os.fdopen(read_end, "rb") as r:
            assert container.read_file(r, "<stdin>") == data
    finally:
        writer.join()


def test_dev_zero_is_refused_from_its_first_bytes() -> None:
    stream = EndlessStream(b"", tail=b"\0")
    with pytest.raises(FormatError, match=r"^/dev/zero: not a \.cae file"):
        container.read_file(stream, "/dev/zero")
    assert stream.taken == len(MAGIC)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_dev_zero_under_a_memory_limit() -> None:
    """The real device, in a process that may not map 1 GiB: reading it whole would end in
    a MemoryError (issue 19: `caec info /dev/zero` ran until memory ran out)."""
    script = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
        "from pathlib import Path\n"
        "from cae_codec import container\n"
        "from cae_codec.errors import FormatError\n"
        "try:\n"
        "    container.read_file(Path('/dev/zero'), '/dev/zero')\n"
        "except FormatError as e:\n"
        "    print(e)\n"
        "    sys.exit(3)\n"
    )
    r = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 3, r.stderr
    assert r.stdout.strip() == "/dev/zero: not a .cae file (bad magic bytes)"


def test_png_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    Image.new("RGB", (4, 4)).save(path)
    with pytest.raises(FormatError, match=r"photo\.png: not a \.cae file"):
        container.read_file(path, str(path))


def test_trailing_data_is_refused_after_one_byte_more() -> None:
    data = valid_file()
    stream = EndlessStream(data, tail=b"garbage")
    with pytest.raises(FormatError, match=r"x\.cae: trailing data after END_"):
        container.read_file(stream, "x.cae")
    assert stream.taken == len(data) + 1
    with pytest.raises(FormatError, match="trailing"):
        container.unpack(data + b"g")  # the parser agrees on the bytes


def test_a_length_over_the_limit_is_refused_unread() -> None:
    header = make_header()
    limit = container.chunk_limit(header, LATENT)
    head = valid_file()[:FIRST_CHUNK]
    forged = head + CHUNK_HEAD.pack(LATENT, limit + 1)
    stream = EndlessStream(forged, tail=b"\0")
    with pytest.raises(FormatError, match=f"declares {limit + 1} bytes, over this header's limit of {limit}"):
        container.read_file(stream, "x.cae")
    assert stream.taken == len(forged)
    # the same bytes with the payload there are refused by the parser on the same grounds
    with pytest.raises(FormatError, match="over this header's limit"):
        container.unpack(forged + bytes(limit + 1) + CRC.pack(0) + chunk(END, b""))
    # one byte less is a length the reader goes on to read: here it finds the stream short
    short = head + CHUNK_HEAD.pack(LATENT, limit) + b"\0" * 100
    with pytest.raises(FormatError, match=r"truncated file: chunk b'LATN' of \d+ bytes runs past the end"):
        container.read_file(EndlessStream(short), "x.cae")


def test_limits_follow_the_header() -> None:
    rgb = make_header(channels=3)
    no_latent = make_header(components=0, mosaic_cols=0)
    assert container.chunk_limit(rgb, ALPHA) == 0
    assert container.chunk_limit(no_latent, LATENT) == 0
    assert container.chunk_limit(rgb, END) == 0
    # K = 10 in 4 columns: 12 mosaic cells of (384/2) x (256/2) int16 samples at the finest stride
    samples = 12 * 192 * 128
    assert container.chunk_limit(rgb, LATENT) == 2 * 2 * samples + container.CODESTREAM_SLACK
    assert container.chunk_limit(make_header(), ALPHA) == 2 * 300 * 200 + container.CODESTREAM_SLACK
    assert container.chunk_limit(rgb, b"note") == container.MAX_ANCILLARY_BYTES
    for header, ctype in [(rgb, ALPHA), (no_latent, LATENT)]:
        forged = container.pack(header, [])[:-12] + chunk(ctype, b"x") + chunk(END, b"")
        with pytest.raises(FormatError, match="limit of 0"):
            container.unpack(forged)
        with pytest.raises(FormatError, match="limit of 0"):
            container.read_file(EndlessStream(forged), "x.cae")


def test_ancillary_chunks_share_one_budget() -> None:
    head = valid_file()[:FIRST_CHUNK]
    half = container.MAX_ANCILLARY_BYTES // 2 + 1
    first = chunk(b"note", bytes(half))
    stream = EndlessStream(head + first + CHUNK_HEAD.pack(b"more", half), tail=b"\0")
    with pytest.raises(FormatError, match="ancillary chunks hold more than"):
        container.read_file(stream, "x.cae")
    assert stream.taken == FIRST_CHUNK + len(first) + CHUNK_HEAD.size


def test_too_many_chunks() -> None:
    names = [b"n" + bytes([97 + i // 26, 97 + i % 26]) + b"x" for i in range(container.MAX_CHUNKS + 1)]
    notes = b"".join(chunk(name, b"") for name in names)
    forged = valid_file()[:FIRST_CHUNK] + notes
    stream = EndlessStream(forged, tail=chunk(b"more", b""))
    with pytest.raises(FormatError, match="too many chunks"):
        container.read_file(stream, "x.cae")
    assert stream.taken == len(forged)


def test_every_truncation_is_refused_as_the_parser_refuses_it() -> None:
    data = valid_file()
    for cut in range(len(data)):
        with pytest.raises(FormatError) as parsed:
            container.unpack(data[:cut])
        with pytest.raises(FormatError) as read:
            container.read_file(EndlessStream(data[:cut]), "x.cae")
        assert str(read.value) == f"x.cae: {parsed.value}"


def test_a_header_only_file_of_a_huge_image_is_read_whole() -> None:
    """The 120-byte file of issue 19, item 5: 13377 x 13377 pixels and no latent."""
    huge = dataclasses.replace(
        make_header(channels=3), width=13377, height=13377, padded_width=13440, padded_height=13440
    )
    data = container.pack(dataclasses.replace(huge, components=0, mosaic_cols=0), [])
    assert len(data) == 120
    assert container.read_file(EndlessStream(data), "big.cae") == data


def test_files_that_cannot_be_read_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(CaecError, match=r"^gone\.cae: no such file$"):
        container.read_file(tmp_path / "gone.cae", "gone.cae")
    with pytest.raises(CaecError, match=r": is a directory$"):
        container.read_file(tmp_path, str(tmp_path))

    class FailingStream(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def, override]
            raise OSError(errno.EIO, "Input/output error")

    with pytest.raises(CaecError, match=r"^<stdin>: Input/output error$"):
        container.read_file(FailingStream(), "<stdin>")


def test_unreadable_file_without_the_root_capability(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # tests run as root, who may read a mode-000 file: the PermissionError is injected
    path = tmp_path / "secret.cae"
    path.write_bytes(valid_file())

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(Path, "open", refuse)
    with pytest.raises(CaecError, match=r"^secret\.cae: Permission denied$"):
        container.read_file(path, "secret.cae")


def test_the_limits_hold_the_largest_file_the_codec_writes(codec) -> None:
    """Noise at the finest step codes to the biggest latent and alpha codestreams there are;
    both must stay well inside the limits of either version (K = M here, every component
    stored), and the file must read whole in either."""
    member = codec.at(quant.STEP_MIN)[0] if isinstance(codec, FamilyCodec) else codec
    noise = np.random.default_rng(3).integers(0, 256, (131, 70, 4), dtype=np.uint8)
    data = member.packer(noise)(quant.STEP_MIN)
    box = container.parse(data)
    p = payload.params(box)
    assert box.version == 2 and p.components == p.latent_channels
    limit = v2.read_header(data)[0].chunk_limit()
    for ctype in (LATENT, ALPHA):
        assert len(box.first(ctype) or b"") < limit / 4
    assert container.read_file(EndlessStream(data), "noise.cae") == data
    # the same file as caec 0.1 wrote it: version 1's limits are per chunk type
    old = as_v1(data)
    hd = container.unpack(old).header
    for ctype in (LATENT, ALPHA):
        assert len(box.first(ctype) or b"") < container.chunk_limit(hd, ctype) / 4
    assert container.read_file(EndlessStream(old), "noise.cae") == old


# ---------------------------------------------------------------- version 2

FIRST_CHUNK_V2 = 30  # of make_header_v2's file


def valid_v2() -> bytes:
    return v2.pack(make_header_v2(), CHUNKS_V2)


def test_v2_file_is_read_exactly_from_a_path_and_a_stream(tmp_path: Path) -> None:
    data = valid_v2()
    path = tmp_path / "x.cae"
    path.write_bytes(data)
    assert container.read_file(path, "x.cae") == data
    stream = EndlessStream(data)
    assert container.read_file(stream, "<stdin>") == data
    assert stream.taken == len(data)


def test_a_v2_pipe_is_read_to_its_end() -> None:
    data = v2.pack(make_header_v2(), [CHUNKS_V2[0], (LATENT, os.urandom(300_000)), (ALPHA, b"alpha")])
    read_end, write_end = os.pipe()

    def write() -> None:
        with os.fdopen(write_end, "wb") as w:
            for i in range(0, len(data), 5000):
                w.write(data[i : i + 5000])
                w.flush()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        with os.fdopen(read_end, "rb") as r:
            assert container.read_file(r, "<stdin>") == data
    finally:
        writer.join()


def test_v2_trailing_data_is_refused_after_one_byte_more() -> None:
    data = valid_v2()
    stream = EndlessStream(data, tail=b"garbage")
    with pytest.raises(FormatError, match=r"^x\.cae: trailing data after the last chunk \(the file is longer"):
        container.read_file(stream, "x.cae")
    assert stream.taken == len(data) + 1
    with pytest.raises(FormatError, match="trailing"):
        container.parse(data + b"g")  # the parser agrees on the bytes


def test_v2_reads_no_further_than_its_chunk_count() -> None:
    """The header says how many chunks follow: after them one byte more is read, so a
    stream of chunks without end is refused at that byte; zeros are no chunk type at all."""
    head = raw_header_v2({**RAW_V2, "count": 5})
    empty = raw_chunk_v2(b"note", b"")
    stream = EndlessStream(head, tail=empty)
    with pytest.raises(FormatError, match=r"^x\.cae: trailing data after the last chunk"):
        container.read_file(stream, "x.cae")
    assert stream.taken == len(head) + 5 * len(empty) + 1
    stream = EndlessStream(head, tail=b"\0")
    with pytest.raises(FormatError, match=r"^x\.cae: invalid chunk type b'\\x00\\x00\\x00\\x00'$"):
        container.read_file(stream, "x.cae")
    assert stream.taken == v2.MAX_HEADER_BYTES  # the type and length came with the header's read
    most = raw_header_v2({**RAW_V2, "count": v2.MAX_CHUNKS})
    stream = EndlessStream(most, tail=empty)
    with pytest.raises(FormatError, match="trailing data after the last chunk"):
        container.read_file(stream, "x.cae")
    assert stream.taken == len(most) + v2.MAX_CHUNKS * len(empty) + 1
    # more than the format allows is refused in the header, before any chunk
    stream = EndlessStream(raw_header_v2({**RAW_V2, "count": v2.MAX_CHUNKS + 1}), tail=b"\0")
    with pytest.raises(FormatError, match="4097 chunks, more than 4096"):
        container.read_file(stream, "x.cae")
    assert stream.taken == v2.MAX_HEADER_BYTES


def test_v2_header_is_read_in_one_piece_of_at_most_49_bytes() -> None:
    """The longest header there is (every varint 5 bytes, the image count of a several-image
    file included, magic and CRC too) is what the reader takes before it parses one; a varint
    that never ends is refused there."""
    assert v2.MAX_HEADER_BYTES == 49
    stream = EndlessStream(MAGIC + bytes([2, 0, 1]), tail=b"\x80")
    with pytest.raises(FormatError, match=r"^x\.cae: malformed model number: a uvarint of more than 5 bytes$"):
        container.read_file(stream, "x.cae")
    assert stream.taken == v2.MAX_HEADER_BYTES
    longest = raw_header_v2(
        {
            **RAW_V2,
            "flags": v2.FLAG_STACK,
            **{f: leb128(2**32 - 1) for f in ("model", "width", "height", "images", "count")},
        }
    )
    assert len(longest) == v2.MAX_HEADER_BYTES


def test_v2_a_length_over_the_limit_is_refused_unread() -> None:
    limit = make_header_v2().chunk_limit()
    head = valid_v2()[: FIRST_CHUNK_V2 + 22]  # the header and PARM
    forged = head + LATENT + leb128(limit + 1)
    stream = EndlessStream(forged, tail=b"\0")
    with pytest.raises(FormatError, match=f"declares {limit + 1} bytes, over this header's limit of {limit}"):
        container.read_file(stream, "x.cae")
    assert stream.taken == len(forged)
    # the same bytes with the payload there are refused by the parser on the same grounds
    with pytest.raises(FormatError, match=f"^chunk LATN declares {limit + 1} bytes, over this header's limit"):
        container.parse(forged + bytes(limit + 1) + CRC.pack(0) + raw_chunk_v2(ALPHA, b"alpha"))
    # the PARM before it counts too: what is left of the limit is a length the reader goes on
    # to read (here it finds the stream short), one byte more is refused unread
    left = limit - len(parm())
    with pytest.raises(FormatError, match=f"more than this header's limit of {limit} bytes in all"):
        container.read_file(EndlessStream(head + LATENT + leb128(left + 1), tail=b"\0"), "x.cae")
    short = head + LATENT + leb128(left) + b"\0" * 100
    with pytest.raises(FormatError, match=r"^x\.cae: truncated file: it ends inside its chunks$"):
        container.read_file(EndlessStream(short), "x.cae")


@pytest.mark.parametrize(
    "length, needle",
    [
        (leb128(5, 2), "a uvarint in a longer form than needed"),
        (b"\xff" * 5 + b"\x01", "a uvarint of more than 5 bytes"),
        (leb128(2**32), "4294967296 is above 4294967295"),
    ],
)
def test_v2_malformed_lengths_are_refused_unread(length: bytes, needle: str) -> None:
    head = valid_v2()[: FIRST_CHUNK_V2 + 22]
    stream = EndlessStream(head + b"note" + length, tail=b"\0")
    with pytest.raises(FormatError, match=f"^x\\.cae: malformed length of chunk b'note': {needle}$"):
        container.read_file(stream, "x.cae")
    assert stream.taken <= len(head) + 4 + 5
    with pytest.raises(FormatError, match=f"^malformed length of chunk note: {needle}$"):
        container.parse(head + b"note" + length + bytes(10))


def test_v2_ancillary_chunks_share_one_budget_and_icc_has_its_own() -> None:
    """Ancillary chunks (lower-case types) hold at most 16 MiB together and an ICC profile at
    most 1 MiB, checked from the length before the payload is read, as in version 1."""
    values = {**RAW_V2, "width": 4000, "height": 4000, "channels": 1, "count": 3}
    head = raw_header_v2(values) + raw_chunk_v2(PARAMS, parm())
    half = v2.MAX_ANCILLARY_BYTES // 2 + 1
    first = raw_chunk_v2(b"note", bytes(half))
    stream = EndlessStream(head + first + b"more" + leb128(half), tail=b"\0")
    with pytest.raises(FormatError, match=r"^x\.cae: ancillary chunks hold more than 16777216 bytes$"):
        container.read_file(stream, "x.cae")
    assert stream.taken == len(head) + len(first) + 4 + len(leb128(half))
    with pytest.raises(FormatError, match=r"^ancillary chunks hold more than 16777216 bytes$"):
        container.parse(head + first + raw_chunk_v2(b"more", bytes(half)))
    # a codec's critical chunks are not ancillary: two of that size are within the limits
    both = head + raw_chunk_v2(b"CODE", bytes(half)) + raw_chunk_v2(b"CODE", bytes(half))
    assert len(container.parse(both).all(b"CODE")) == 2
    icc = head + b"iccp" + leb128(v2.MAX_ICC_BYTES + 1)
    stream = EndlessStream(icc, tail=b"\0")
    with pytest.raises(FormatError, match="chunk iccp declares 1048577 bytes, over this header's limit of 1048576"):
        container.read_file(stream, "x.cae")
    assert stream.taken == len(icc)


def test_v2_limits_follow_the_header() -> None:
    """One limit for every chunk and for all of them together: twice the raw samples of the
    file's images, plus 1 MiB; a several-image file's header says how many images."""
    assert make_header_v2(channels=1).chunk_limit() == 2 * 300 * 200 + v2.CHUNK_SLACK
    assert make_header_v2(width=1, height=1).chunk_limit() == 2 * 4 + v2.CHUNK_SLACK
    stack = make_header_v2(width=28, height=28, channels=1, flags=v2.FLAG_STACK, images=1000)
    assert stack.chunk_limit() == 2 * 28 * 28 * 1000 + v2.CHUNK_SLACK
    big = make_header_v2(width=1 << 16, height=1 << 16)
    assert big.chunk_limit() == 2 * big.channels * 2**32 + v2.CHUNK_SLACK
    # many chunks each within the limit: refused once they add up past it, unread
    values = {**RAW_V2, "width": 1, "height": 1, "count": 4096}
    many = raw_header_v2(values) + b"".join(
        b"CODE" + leb128(v2.CHUNK_SLACK // 2) + bytes(v2.CHUNK_SLACK // 2) + CRC.pack(0) for _ in range(2)
    )
    stream = EndlessStream(many + b"CODE" + leb128(v2.CHUNK_SLACK // 2), tail=b"\0")
    with pytest.raises(FormatError, match="in all"):
        container.read_file(stream, "x.cae")
    assert stream.taken < 3 * v2.CHUNK_SLACK
    tiny = raw_header_v2({**RAW_V2, "width": 1, "height": 1, "count": 2}) + raw_chunk_v2(PARAMS, parm())
    over = v2.CHUNK_SLACK + 2 * 4 + 1
    for ctype in (LATENT, ALPHA, b"note", b"iccp"):
        forged = tiny + ctype + leb128(over)
        with pytest.raises(FormatError, match="over this header's limit"):
            container.read_file(EndlessStream(forged, tail=b"\0"), "x.cae")


def test_v2_every_truncation_is_refused_as_the_parser_refuses_it() -> None:
    """Not progressive: every cut is refused by both; in the header with the same words
    (the same code reads it), in the chunks as a truncated file."""
    data = valid_v2()
    for cut in range(len(data)):
        with pytest.raises(FormatError) as parsed:
            container.parse(data[:cut])
        with pytest.raises(FormatError) as read:
            container.read_file(EndlessStream(data[:cut]), "x.cae")
        if cut < FIRST_CHUNK_V2:
            assert str(read.value) == f"x.cae: {parsed.value}"
        else:
            assert str(parsed.value).startswith("truncated file: "), cut
            assert str(read.value) == "x.cae: truncated file: it ends inside its chunks", cut


def test_a_cut_progressive_file_reads_as_far_as_it_goes() -> None:
    """The container's progressive files (no caec codec writes them yet): a stream that ends
    after any whole chunk, or inside one, is read to its end, and parse keeps the whole chunks."""
    header = make_header_v2(codec="rnn", flags=v2.FLAG_PROGRESSIVE)
    chunks = [(b"PASS", bytes([i]) * 20) for i in range(4)]
    data = v2.pack(header, chunks)
    for cut in range(FIRST_CHUNK_V2, len(data) + 1):
        assert container.read_file(EndlessStream(data[:cut]), "x.cae") == data[:cut]
        box = container.parse(data[:cut])
        assert box.complete == (cut == len(data)) and box.chunks == chunks[: len(box.chunks)]


def test_a_header_only_v2_file_of_a_huge_image_is_read_whole() -> None:
    """Issue 19, item 5's file in version 2: 13377 x 13377 pixels and no latent, 52 bytes."""
    params = payload.CaeParams(128, 1.0, 4, 192, 0, 0, 13440, 13440).pack()
    data = v2.pack(make_header_v2(width=13377, height=13377, channels=3), [(PARAMS, params)])
    assert len(data) == 52
    assert container.read_file(EndlessStream(data), "big.cae") == data
    assert payload.check(container.parse(data), 16, 192).padded_width == 13440


def test_v2_forged_file_reads_as_it_parses() -> None:
    """What read_file accepts it gives back whole, for the parser to refuse or accept."""
    for forged in (forged_v2(flags=4), forged_v2(codec=0), forged_v2([*CHUNKS_V2, (b"L\0TN", b"")])):
        with pytest.raises(FormatError) as parsed:
            container.parse(forged)
        try:
            assert container.read_file(EndlessStream(forged), "x.cae") == forged
        except FormatError as read:
            assert str(read) == f"x.cae: {parsed.value}"
