"""container.read_file: a .cae file read from a path or a stream no further than its chunks
explain, refused from its first bytes when they cannot start one (issue 19, item 4)."""

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

from cae_codec import container, quant
from cae_codec.codec import FamilyCodec
from cae_codec.container import ALPHA, CHUNK_HEAD, CRC, END, LATENT, MAGIC
from cae_codec.errors import CaecError, FormatError
from tests.conftest import REPO
from tests.test_container import make_header
from tools.fuzz import EndlessStream

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
    both must stay well inside the limits (K = M here, every component stored)."""
    member = codec.at(quant.STEP_MIN)[0] if isinstance(codec, FamilyCodec) else codec
    noise = np.random.default_rng(3).integers(0, 256, (131, 70, 4), dtype=np.uint8)
    data = member.packer(noise)(quant.STEP_MIN)
    box = container.unpack(data)
    assert box.header.components == box.header.latent_channels
    for ctype in (LATENT, ALPHA):
        assert len(box.chunks[ctype]) < container.chunk_limit(box.header, ctype) / 4
    assert container.read_file(EndlessStream(data), "noise.cae") == data
