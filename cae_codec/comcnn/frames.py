"""comcnn's inner codecs as the file format sees them, without any codec library: each one's
name, chunk type and file suffixes, and a reader of its codestream's frame (size, components,
bit depth), parsed from its headers before any decoder runs, so that a codestream of another
size or a decompression bomb (a few hundred bytes declaring 65535x65535) is refused on one line.

    jpeg      JPEG chunk, a JPEG codestream (SOI .. EOI): the SOF marker
    jpeg2000  JPCS chunk, a raw JPEG 2000 codestream (J2K): the SIZ marker
    webp      WEBP chunk, a lossy WebP file (RIFF, one VP8 key frame): the VP8 frame header
    avif      AVIF chunk, an AVIF file (ISOBMFF, one AV1 image item): ispe and pixi, and the
              AV1 sequence header in the item's data, whose maximum frame size is what the
              AV1 decoder allocates for
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from cae_codec.errors import FormatError
from cae_codec.stages import j2k


@dataclass(frozen=True)
class Frame:
    """What a codestream's headers say of the image in it."""

    process: str
    precision: int
    width: int
    height: int
    components: int
    scans: int = 1


# -- JPEG

# SOF markers of the DCT processes libjpeg-turbo decodes with Huffman coding (baseline,
# extended, progressive); lossless and arithmetic-coded frames are not what this codec writes
SOF_MARKERS = {0xC0: "baseline", 0xC1: "extended", 0xC2: "progressive"}
# what libjpeg-turbo writes is one scan (baseline) or ~10 (progressive): a codestream of many
# more can cost a decoder a pass over the image per scan
MAX_SCANS = 64


def read_jpeg(data: bytes) -> Frame:
    """The frame header of a JPEG codestream, read from its markers without decoding it."""
    if data[:2] != b"\xff\xd8":
        raise FormatError("not a JPEG codestream (no SOI marker)")
    pos, frame, scans = 2, None, 0
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            if frame is None:
                raise FormatError(f"corrupt JPEG codestream: no marker at byte {pos}")
            # entropy-coded data: skip to the next marker (0xFF00 is a stuffed byte, 0xFFD0..D7 restarts)
            nxt = data.find(b"\xff", pos)
            pos = len(data) if nxt < 0 else nxt
            continue
        marker = data[pos + 1]
        if marker == 0xFF or marker == 0x00 or 0xD0 <= marker <= 0xD7:
            pos += 2 if marker != 0xFF else 1
            continue
        if marker == 0xD9:  # EOI
            break
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if length < 2 or pos + 2 + length > len(data):
            raise FormatError("corrupt JPEG codestream: a marker segment runs past its end")
        seg = data[pos + 4 : pos + 2 + length]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if marker not in SOF_MARKERS:
                raise FormatError(f"JPEG frame type 0x{marker:02X} is not one this codec writes")
            if frame is not None:
                raise FormatError("a JPEG codestream of more than one frame")
            if len(seg) < 6:
                raise FormatError("corrupt JPEG codestream: short frame header")
            precision, height, width, ncomp = struct.unpack(">BHHB", seg[:6])
            frame = (SOF_MARKERS[marker], precision, width, height, ncomp)
        elif marker == 0xDA:
            if frame is None:
                raise FormatError("corrupt JPEG codestream: a scan before the frame header")
            scans += 1
            if scans > MAX_SCANS:
                raise FormatError(f"a JPEG codestream of more than {MAX_SCANS} scans")
        pos += 2 + length
    if frame is None:
        raise FormatError("the JPEG codestream has no frame header")
    if not scans:
        raise FormatError("the JPEG codestream has no scan")
    return Frame(*frame, scans)


# -- JPEG 2000


def read_j2k(data: bytes) -> Frame:
    """A raw JPEG 2000 codestream's SIZ marker: one tile grid, unsigned, no subsampling."""
    siz = j2k.read_siz(data)
    if siz.signed or siz.subsampled:
        raise FormatError("the JPEG 2000 codestream holds signed or subsampled samples, not an 8-bit image")
    if siz.tiles > j2k.MAX_TILES:
        raise FormatError(f"the JPEG 2000 codestream has {siz.tiles} tiles (at most {j2k.MAX_TILES} allowed)")
    return Frame("J2K", siz.precision, siz.width, siz.height, siz.components)


# -- WebP


def read_webp(data: bytes) -> Frame:
    """A lossy WebP file in the simple format libwebp writes for an opaque image: RIFF, WEBP,
    one 'VP8 ' chunk holding a key frame (RFC 9649; the VP8 frame header of RFC 6386 9.1)."""
    if len(data) < 30 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise FormatError("not a WebP file (no RIFF/WEBP header)")
    (riff_size,) = struct.unpack_from("<I", data, 4)
    if riff_size + 8 != len(data):
        raise FormatError(f"corrupt WebP file: RIFF size {riff_size + 8}, file {len(data)} bytes")
    if data[12:16] != b"VP8 ":
        kind = data[12:16].decode("latin-1")
        raise FormatError(f"a WebP file of chunk {kind!r}: this codec writes lossy 'VP8 ' files only")
    (chunk_size,) = struct.unpack_from("<I", data, 16)
    if 20 + chunk_size + (chunk_size & 1) != len(data) or chunk_size < 10:
        raise FormatError("corrupt WebP file: its VP8 chunk does not fill the file")
    tag = data[20] | data[21] << 8 | data[22] << 16
    if tag & 1:
        raise FormatError("the WebP file's VP8 frame is not a key frame")
    if data[23:26] != b"\x9d\x01\x2a":
        raise FormatError("corrupt WebP file: no VP8 start code")
    w, h = struct.unpack_from("<HH", data, 26)
    if w >> 14 or h >> 14:
        raise FormatError("the WebP file's VP8 frame asks for upscaling, which this codec never writes")
    return Frame("VP8", 8, w & 0x3FFF, h & 0x3FFF, 3)  # VP8 is always YUV 4:2:0, three components


# -- AVIF

# ISOBMFF boxes that hold other boxes on the way to the image's properties (meta is a full box)
_CONTAINERS = {b"meta": 4, b"iprp": 0, b"ipco": 0}
# AV1 OBU types a still image item holds (AV1 spec 5.3.1): sequence header, temporal delimiter,
# frame header, tile group, metadata, frame, padding
_OBU_TYPES = {1, 2, 3, 4, 5, 6, 15}


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of the boxes in data[start:end]."""
    pos = start
    while pos < end:
        if pos + 8 > end:
            raise FormatError("corrupt AVIF file: a box header runs past its end")
        size, kind = struct.unpack_from(">I4s", data, pos)
        head = 8
        if size == 1:
            if pos + 16 > end:
                raise FormatError("corrupt AVIF file: a box header runs past its end")
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            head = 16
        elif size == 0:
            size = end - pos
        if size < head or pos + size > end:
            raise FormatError(f"corrupt AVIF file: box {kind!r} runs past its end")
        yield kind, pos + head, pos + size
        pos += size


def _leb128(data: bytes, pos: int) -> tuple[int, int]:
    value = 0
    for i in range(8):
        if pos + i >= len(data):
            raise FormatError("corrupt AVIF file: an AV1 OBU size runs past its end")
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, pos + i + 1
    raise FormatError("corrupt AVIF file: an AV1 OBU size of more than 8 bytes")


class _Bits:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def read(self, n: int) -> int:
        value = 0
        for _ in range(n):
            byte = self.pos >> 3
            if byte >= len(self.data):
                raise FormatError("corrupt AVIF file: the AV1 sequence header is cut short")
            value = value << 1 | (self.data[byte] >> (7 - (self.pos & 7))) & 1
            self.pos += 1
        return value

    def uvlc(self) -> int:
        zeros = 0
        while not self.read(1):
            zeros += 1
            if zeros >= 32:
                raise FormatError("corrupt AVIF file: a bad uvlc in the AV1 sequence header")
        return self.read(zeros) + (1 << zeros) - 1


def _sequence_max_size(obu: bytes) -> tuple[int, int]:
    """The maximum frame width and height of an AV1 sequence header OBU's payload (AV1 5.5)."""
    b = _Bits(obu)
    b.read(3)  # seq_profile
    b.read(1)  # still_picture
    if b.read(1):  # reduced_still_picture_header
        b.read(5)  # seq_level_idx[0]
    else:
        decoder_model = False
        buffer_delay_bits = 0
        if b.read(1):  # timing_info_present_flag
            b.read(32)
            b.read(32)
            if b.read(1):  # equal_picture_interval
                b.uvlc()
            decoder_model = bool(b.read(1))
            if decoder_model:
                buffer_delay_bits = b.read(5) + 1
                b.read(32)
                b.read(5)
                b.read(5)
        display_delay = b.read(1)
        for _ in range(b.read(5) + 1):  # operating points
            b.read(12)
            if b.read(5) > 7:  # seq_level_idx
                b.read(1)
            if decoder_model and b.read(1):
                b.read(2 * buffer_delay_bits + 1)
            if display_delay and b.read(1):
                b.read(4)
    wbits, hbits = b.read(4) + 1, b.read(4) + 1
    return b.read(wbits) + 1, b.read(hbits) + 1


def _av1_max_size(item: bytes) -> tuple[int, int]:
    """The one sequence header's maximum frame size in an AV1 image item's OBUs."""
    pos, found = 0, None
    while pos < len(item):
        header = item[pos]
        kind, extension, has_size = (header >> 3) & 0xF, header >> 2 & 1, header >> 1 & 1
        if header & 0x80 or kind not in _OBU_TYPES or not has_size:
            raise FormatError("corrupt AVIF file: an AV1 OBU this codec never writes")
        size, start = _leb128(item, pos + 1 + extension)
        if start + size > len(item):
            raise FormatError("corrupt AVIF file: an AV1 OBU runs past its item")
        if kind == 1:
            if found is not None:
                raise FormatError("an AVIF item of more than one AV1 sequence header")
            found = _sequence_max_size(item[start : start + size])
        pos = start + size
    if found is None:
        raise FormatError("corrupt AVIF file: no AV1 sequence header")
    return found


def _item_data(data: bytes, iloc: bytes) -> bytes:
    """The data of the one item an iloc box (ISO 14496-12 8.11.3) places, of one extent."""
    if len(iloc) < 8:
        raise FormatError("corrupt AVIF file: short iloc box")
    version = iloc[0]
    sizes = iloc[4] << 8 | iloc[5]
    offset_size, length_size, base_size = sizes >> 12, sizes >> 8 & 0xF, sizes >> 4 & 0xF
    index_size = sizes & 0xF if version in (1, 2) else 0
    pos = 6
    fields = {0: "", 4: "I", 8: "Q"}
    if version > 2 or any(s not in fields for s in (offset_size, length_size, base_size, index_size)):
        raise FormatError("corrupt AVIF file: an iloc box of a kind this codec never writes")

    def take(n: int) -> int:
        nonlocal pos
        if pos + n > len(iloc):
            raise FormatError("corrupt AVIF file: short iloc box")
        value = int.from_bytes(iloc[pos : pos + n], "big") if n else 0
        pos += n
        return value

    count = take(2 if version < 2 else 4)
    if count != 1:
        raise FormatError(f"an AVIF file of {count} items: this codec writes one image item")
    take(2 if version < 2 else 4)  # item_ID
    if version in (1, 2) and take(2) & 0xF:
        raise FormatError("an AVIF item placed other than by file offset")
    take(2)  # data_reference_index
    base = take(base_size)
    if take(2) != 1:
        raise FormatError("an AVIF item of several extents: this codec writes one")
    take(index_size)
    offset, length = base + take(offset_size), take(length_size)
    if offset + length > len(data) or length == 0:
        raise FormatError("corrupt AVIF file: its image item lies outside the file")
    return data[offset : offset + length]


def read_avif(data: bytes) -> Frame:
    """An AVIF file as libavif writes one opaque still image: ftyp 'avif', one AV1 item, its
    ispe (size) and pixi (channels, bits) properties, and the AV1 sequence header in the item."""
    boxes = list(_boxes(data, 0, len(data)))
    if not boxes or boxes[0][0] != b"ftyp" or data[boxes[0][1] : boxes[0][1] + 4] != b"avif":
        raise FormatError("not an AVIF file (no ftyp box of brand 'avif')")
    found: dict[bytes, list[bytes]] = {}

    def walk(start: int, end: int) -> None:
        for kind, a, b in _boxes(data, start, end):
            if kind in _CONTAINERS:
                walk(a + _CONTAINERS[kind], b)
            else:
                found.setdefault(kind, []).append(data[a:b])

    metas = [(a, b) for kind, a, b in boxes if kind == b"meta"]
    if len(metas) != 1:
        raise FormatError("an AVIF file needs exactly one meta box")
    walk(metas[0][0] + 4, metas[0][1])  # meta is a full box: version and flags first
    for kind in (b"ispe", b"pixi", b"iloc"):
        if (n := len(found.get(kind, []))) != 1:
            raise FormatError(f"an AVIF file of {n} {kind.decode()} boxes: this codec writes one")
    ispe, pixi = found[b"ispe"][0], found[b"pixi"][0]
    if len(ispe) != 12 or len(pixi) < 5 or len(pixi) != 5 + pixi[4]:
        raise FormatError("corrupt AVIF file: malformed ispe or pixi property")
    width, height = struct.unpack_from(">II", ispe, 4)
    channels, bits = pixi[4], set(pixi[5:])
    if len(bits) != 1:
        raise FormatError("an AVIF image of mixed bit depths")
    max_w, max_h = _av1_max_size(_item_data(data, found[b"iloc"][0]))
    if (max_w, max_h) != (width, height):
        raise FormatError(f"the AVIF item's AV1 stream is up to {max_w}x{max_h}, its ispe says {width}x{height}")
    return Frame("AV1", bits.pop(), width, height, channels)


@dataclass(frozen=True)
class InnerInfo:
    """One inner codec: its name (``--inner``), the chunk that holds its codestream, the suffix
    of a plain file of it, the evaluation's wrapper of it, whether it has grey images, and its
    frame reader."""

    name: str
    label: str
    chunk: bytes
    suffixes: tuple[str, ...]  # of a plain file of it, the usual one first
    classic: str  # the name in cae_codec.evaluate.classic.CLASSIC_CODECS
    grey: bool
    read_frame: Callable[[bytes], Frame]
    # --quality q (1..100) -> the codec's knob: offset + scale * q (JPEG 2000's knob is dB of PSNR)
    quality_offset: float
    quality_scale: float
    # knob values drawn per training crop: the compact image at ~0.07-0.75 bpp of the whole
    # image on Kodak, a bit wider than the 0.1-0.6 bpp the codec is measured over
    train_range: tuple[int, int]

    def knob_for_quality(self, quality: int) -> float:
        return self.quality_offset + self.quality_scale * quality


INNER_CODECS = {
    i.name: i
    for i in (
        InnerInfo("jpeg", "JPEG", b"JPEG", (".jpg", ".jpeg", ".jpe"), "jpeg", True, read_jpeg, 0.0, 1.0, (5, 90)),
        InnerInfo(
            "jpeg2000", "JPEG 2000", b"JPCS", (".j2k", ".j2c", ".jpc"), "jpeg2000", True, read_j2k, 20.0, 0.25, (25, 41)
        ),
        InnerInfo("webp", "WebP", b"WEBP", (".webp",), "webp", False, read_webp, 0.0, 1.0, (0, 92)),
        InnerInfo("avif", "AVIF", b"AVIF", (".avif",), "avif", True, read_avif, 0.0, 1.0, (30, 90)),
    )
}
BY_CHUNK = {i.chunk: i for i in INNER_CODECS.values()}
