"""What an image carries besides its pixels: the ICC profile (kept in the ancillary chunk
`iccp`), other EXIF (dropped with a warning) and a PNG colour key (tRNS, kept as alpha)."""

from __future__ import annotations

import functools
import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from cae_codec import container
from cae_codec.container import ICC, MAX_ICC_BYTES, v2
from cae_codec.errors import CaecError, FormatError, ImageError
from cae_codec.imageio import image_to_bytes, open_image, open_image_meta
from tests.conftest import as_v1, rewrite_v2, smooth_image


@functools.cache
def srgb_profile() -> bytes:
    # once: lcms stamps each profile it writes with the time
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def grey_profile() -> bytes:
    """A GRAY-space profile: the sRGB one with its header's colour space rewritten (the
    header is all that caec and PNG writers look at)."""
    rgb = srgb_profile()
    return rgb[:16] + b"GRAY" + rgb[20:]


def png_bytes(im: Image.Image, **options: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG", **options)
    return buf.getvalue()


def raw_png(width: int, height: int, depth: int, colour_type: int, rows: list[bytes], trns: bytes) -> bytes:
    """A PNG written chunk by chunk, for the bit depths Pillow does not write (2-bit grey)."""

    def chunk(ctype: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", zlib.crc32(ctype + data))

    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    idat = zlib.compress(b"".join(b"\0" + row for row in rows))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"tRNS", trns) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def without_chunk(data: bytes, ctype: bytes) -> bytes:
    """The .cae file with chunk ``ctype`` cut out, byte for byte otherwise (but for a
    version-2 header's chunk count and CRC)."""
    if container.parse(data).version == v2.VERSION:
        old = v2.unpack(data)
        assert ctype in {t for t, _ in old.chunks}, f"no {ctype!r} chunk"
        return v2.pack(old.header, [(t, p) for t, p in old.chunks if t != ctype])
    _, pos = container.read_header(data)
    while pos < len(data):
        found, length = container.CHUNK_HEAD.unpack_from(data, pos)
        end = pos + container.CHUNK_HEAD.size + length + container.CRC.size
        if found == ctype:
            return data[:pos] + data[end:]
        pos = end
    raise AssertionError(f"no {ctype!r} chunk")


# ------------------------------------------------------------------ reading images


def test_open_image_meta_keeps_the_icc_profile(rng) -> None:
    img = smooth_image(rng, 12, 10, 3)
    arr, meta = open_image_meta(png_bytes(Image.fromarray(img), icc_profile=srgb_profile()), warn=pytest.fail)
    assert np.array_equal(arr, img)
    assert meta.icc_profile == srgb_profile()
    _, meta = open_image_meta(png_bytes(Image.fromarray(img)), warn=pytest.fail)
    assert meta.icc_profile is None


def test_a_profile_for_another_colour_space_is_dropped_with_a_warning(rng) -> None:
    warnings: list[str] = []
    grey = Image.fromarray(smooth_image(rng, 8, 8, 1)[:, :, 0])
    _, meta = open_image_meta(png_bytes(grey, icc_profile=srgb_profile()), name="g.png", warn=warnings.append)
    assert meta.icc_profile is None
    assert warnings == ["g.png: ICC profile for 'RGB' data cannot describe a grey image; not kept"]
    _, meta = open_image_meta(png_bytes(grey, icc_profile=grey_profile()), warn=pytest.fail)
    assert meta.icc_profile == grey_profile()


def test_exif_other_than_orientation_is_one_warning(rng) -> None:
    def jpeg(**tags: int | str) -> bytes:
        exif = Image.Exif()
        for tag, value in tags.items():
            exif[int(tag.removeprefix("t"), 16)] = value
        buf = io.BytesIO()
        Image.fromarray(smooth_image(rng, 8, 8, 3)).save(buf, "JPEG", exif=exif.tobytes())
        return buf.getvalue()

    warnings: list[str] = []
    open_image_meta(jpeg(t0112=1, t010F="Camera maker", t0131="Some editor"), name="p.jpg", warn=warnings.append)
    assert warnings == ["p.jpg: EXIF metadata other than the orientation is not kept"]
    open_image_meta(jpeg(t0112=6), warn=pytest.fail)  # orientation alone is applied, so nothing is lost
    # open_image keeps no metadata at all and says nothing about it (training, evaluation)
    open_image(jpeg(t010F="Camera maker"), warn=pytest.fail)


@pytest.mark.parametrize("bits", [8, 16])
def test_grey_colour_key_becomes_alpha(rng, bits: int) -> None:
    grey = smooth_image(rng, 20, 30, 1)[:, :, 0]
    key = int(grey[3, 4])
    if bits == 8:
        data = png_bytes(Image.fromarray(grey), transparency=key)
        expected_grey = grey
    else:
        wide = grey.astype(np.uint16) * 257
        wide[0, 0] = key * 257 + 1  # equal to the key in its high byte only: stays opaque
        data = png_bytes(Image.fromarray(wide), transparency=key * 257)
        expected_grey = grey.copy()
        expected_grey[0, 0] = round((key * 257 + 1) * 255 / 65535)
    arr = open_image(data, warn=lambda m: None)
    assert arr.shape == (20, 30, 2)
    assert np.array_equal(arr[:, :, 0], expected_grey)
    mask = grey == key
    mask[0, 0] = bits == 8 and mask[0, 0]
    assert mask.sum() >= 1
    assert np.array_equal(arr[:, :, 1], np.where(mask, 0, 255))


def test_rgb_colour_key_becomes_alpha(rng) -> None:
    rgb = smooth_image(rng, 20, 30, 3)
    key = tuple(int(v) for v in rgb[5, 6])
    rgb[5, 7] = (key[0], key[1], (key[2] + 1) % 256)  # two samples of three match: opaque
    arr = open_image(png_bytes(Image.fromarray(rgb), transparency=key), warn=pytest.fail)
    mask = np.all(rgb == np.array(key, dtype=np.uint8), axis=2)
    assert arr.shape == (20, 30, 4) and mask[5, 6] and not mask[5, 7]
    assert np.array_equal(arr[:, :, :3], rgb)
    assert np.array_equal(arr[:, :, 3], np.where(mask, 0, 255))


@pytest.mark.parametrize(
    "depth, packed, key, alpha",
    [
        # four pixels 0, 1, 2, 3 (Pillow reads 0, 85, 170, 255), key 2
        (2, bytes([0b00011011]), 2, [255, 255, 0, 255]),
        # four pixels 0, 15, 5, 10, key 5
        (4, bytes([0x0F, 0x5A]), 5, [255, 255, 0, 255]),
        # four pixels 1, 0, 1, 0, key 1
        (1, bytes([0b10100000]), 1, [0, 255, 0, 255]),
    ],
)
def test_low_bit_depth_grey_colour_key(depth: int, packed: bytes, key: int, alpha: list[int]) -> None:
    # the key is in the file's units, the pixels Pillow hands over are scaled to 0..255
    arr = open_image(raw_png(4, 1, depth, 0, [packed], struct.pack(">H", key)), warn=pytest.fail)
    assert arr.shape == (1, 4, 2)
    assert arr[0, :, 1].tolist() == alpha


def test_16_bit_rgb_colour_key_is_a_warning() -> None:
    # Pillow keeps only the high byte of 16-bit RGB: the 16-bit key cannot be matched exactly
    row = struct.pack(">6H", 0x1234, 5, 6, 0x1235, 5, 6)
    warnings: list[str] = []
    arr = open_image(raw_png(2, 1, 16, 2, [row], struct.pack(">3H", 0x1234, 5, 6)), name="w", warn=warnings.append)
    assert arr.shape == (1, 2, 3)
    assert "w: the colour key (tRNS) of a 16-bit RGB image is not applied" in warnings


# ------------------------------------------------------------------ writing images


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "TIFF"])
def test_image_to_bytes_embeds_the_profile(rng, fmt: str) -> None:
    img = smooth_image(rng, 8, 8, 4)
    with Image.open(io.BytesIO(image_to_bytes(img, fmt, icc_profile=srgb_profile(), warn=pytest.fail))) as im:
        assert im.info.get("icc_profile") == srgb_profile()
    with Image.open(io.BytesIO(image_to_bytes(img[:, :, :1], fmt, icc_profile=grey_profile()))) as im:
        assert im.info.get("icc_profile") == grey_profile()
    with Image.open(io.BytesIO(image_to_bytes(img, fmt))) as im:
        assert not im.info.get("icc_profile")


def test_image_to_bytes_says_when_the_format_cannot_hold_the_profile(rng) -> None:
    img = smooth_image(rng, 8, 8, 3)
    warnings: list[str] = []
    assert image_to_bytes(img, "BMP", icc_profile=srgb_profile(), warn=warnings.append)[:2] == b"BM"
    assert warnings == ["BMP cannot hold an ICC profile: the image is written without it"]
    with pytest.raises(ImageError, match="cannot describe a grey image"):
        image_to_bytes(img[:, :, :1], "PNG", icc_profile=srgb_profile())


# ------------------------------------------------------------------ the container


def test_iccp_is_ancillary_and_bounded() -> None:
    assert ICC[:1].islower() and ICC not in container.KNOWN_CRITICAL
    assert container.icc_profile_problem(srgb_profile(), 3) is None
    assert container.icc_profile_problem(srgb_profile() + bytes(MAX_ICC_BYTES), 3) is not None
    assert "not an ICC profile" in (container.icc_profile_problem(b"x" * 200, 3) or "")
    assert "cannot describe a grey image" in (container.icc_profile_problem(srgb_profile(), 2) or "")
    assert container.icc_profile_problem(grey_profile(), 1) is None


def _header(channels: int = 3) -> container.Header:
    return container.Header(
        channels=channels,
        width=20,
        height=10,
        tile=128,
        padded_width=128,
        padded_height=128,
        codec="cae-pca-j2k",
        model="m",
        weights_hash=bytes(16),
        step=1.0,
        quality=0,
        latent_channels=8,
        components=0,
        mosaic_cols=0,
    )


def test_version_1_unpack_keeps_the_profile_and_refuses_a_bad_one() -> None:
    box = container.unpack(container.pack(_header(), [(ICC, srgb_profile())]))
    assert box.chunks[ICC] == srgb_profile()
    with pytest.raises(FormatError, match="iccp: not an ICC profile"):
        container.unpack(container.pack(_header(), [(ICC, b"not a profile")]))
    with pytest.raises(FormatError, match="iccp: ICC profile for 'RGB' data cannot describe a grey image"):
        container.unpack(container.pack(_header(channels=1), [(ICC, srgb_profile())]))
    # a declared length over the limit is refused from the chunk's 8 header bytes, before its
    # payload, by unpack and by the stream reader alike
    good = container.pack(_header(), [])
    end = len(good) - container.CHUNK_HEAD.size - container.CRC.size
    forged = good[:end] + container.CHUNK_HEAD.pack(ICC, MAX_ICC_BYTES + 1)
    limit = f"declares {MAX_ICC_BYTES + 1} bytes, over this header's limit of {MAX_ICC_BYTES}"
    with pytest.raises(FormatError, match=limit):
        container.unpack(forged)
    with pytest.raises(FormatError, match=limit):
        container.read_file(io.BytesIO(forged + bytes(MAX_ICC_BYTES + 5)), "f.cae")


def test_parse_keeps_the_profile_and_refuses_a_bad_one(codec, rng) -> None:
    data = codec.encode(smooth_image(rng, 10, 20, 3), icc_profile=srgb_profile())
    assert container.parse(data).all(ICC) == [srgb_profile()]
    others = [(t, p) for t, p in container.parse(data).chunks if t not in (v2.PARAMS, ICC)]
    with pytest.raises(FormatError, match="iccp: not an ICC profile"):
        container.parse(rewrite_v2(data, [(ICC, b"not a profile"), *others]))
    with pytest.raises(FormatError, match="iccp: ICC profile for 'RGB' data cannot describe a grey image"):
        container.parse(rewrite_v2(data, channels=1))


# ------------------------------------------------------------------ the codec


def test_profile_travels_in_the_file_and_nothing_else_changes(codec, rng) -> None:
    img = smooth_image(rng, 40, 50, 3)
    plain = codec.encode(img, quality=6)
    tagged = codec.encode(img, quality=6, icc_profile=srgb_profile())
    assert container.parse(plain).first(ICC) is None
    assert container.parse(tagged).all(ICC) == [srgb_profile()]
    # the profile is the only difference: a file without one is byte for byte what it was
    assert without_chunk(tagged, ICC) == plain
    with pytest.raises(CaecError, match="cannot describe a grey image"):
        codec.encode(img[:, :, :1], quality=6, icc_profile=srgb_profile())


def test_profile_bytes_count_against_the_bpp_target(codec, rng) -> None:
    img = smooth_image(rng, 128, 128, 3)
    bpp = 0.75
    budget = int(bpp * 128 * 128 / 8)
    plain = codec.encode(img, bpp=bpp)
    tagged = codec.encode(img, bpp=bpp, icc_profile=srgb_profile())
    # the search filled the budget closely enough that adding the profile afterwards would overshoot it
    assert len(plain) + len(srgb_profile()) > budget
    assert len(tagged) <= budget
    assert container.parse(tagged).first(ICC) == srgb_profile()


def test_refined_files_keep_the_profile(codec, rng) -> None:
    img = smooth_image(rng, 64, 64, 3)
    for kwargs in ({"quality": 6}, {"bpp": 3.0}):
        data = codec.encode(img, refine=1, icc_profile=srgb_profile(), **kwargs)
        assert container.parse(data).first(ICC) == srgb_profile()


def test_colour_key_alpha_survives_the_codec_exactly(codec, rng, tmp_path: Path) -> None:
    from cae_codec.api import decode

    rgb = smooth_image(rng, 24, 40, 3)
    rgb[:8, :8] = (10, 200, 30)
    arr = open_image(png_bytes(Image.fromarray(rgb), transparency=(10, 200, 30)), warn=pytest.fail)
    out = decode(codec.encode(arr, quality=6), device="cpu")
    assert out.shape == (24, 40, 4)
    assert np.array_equal(out[:, :, 3], np.where(np.all(rgb == (10, 200, 30), axis=2), 0, 255))


# ------------------------------------------------------------------ the library API


def test_library_round_trip_gives_the_profile_back(rng) -> None:
    import cae_codec
    from cae_codec import api

    img = smooth_image(rng, 40, 50, 3)
    data = cae_codec.encode(img, quality=6, device="cpu", icc_profile=bytearray(srgb_profile()))
    pixels, meta = cae_codec.decode_with_meta(memoryview(data), device="cpu")
    assert meta.icc_profile == srgb_profile()
    assert np.array_equal(pixels, api.decode(data, device="cpu"))
    assert api.info(data)["chunks"]["iccp"] == len(srgb_profile())
    # written back out, a viewer sees the same profile
    with Image.open(io.BytesIO(image_to_bytes(pixels, "PNG", icc_profile=meta.icc_profile))) as im:
        assert im.info["icc_profile"] == srgb_profile()
    # a file without the chunk (every file made before it existed) decodes to the same pixels
    old = without_chunk(data, ICC)
    pixels_old, meta_old = api.decode_with_meta(old, device="cpu")
    assert meta_old.icc_profile is None
    assert np.array_equal(pixels_old, pixels)
    # and a version-1 file gives its profile back as well
    pixels_v1, meta_v1 = api.decode_with_meta(as_v1(data), device="cpu")
    assert meta_v1.icc_profile == srgb_profile() and np.array_equal(pixels_v1, pixels)
    assert api.decode_with_meta(as_v1(old), device="cpu")[1].icc_profile is None


@pytest.mark.parametrize(
    "profile, message",
    [
        ("sRGB", "icc_profile must be the bytes of an ICC profile, got str"),
        (b"x" * 300, "icc_profile: not an ICC profile"),
        (grey_profile(), "icc_profile: ICC profile for 'GRAY' data cannot describe an RGB image"),
    ],
)
def test_library_refuses_a_profile_the_file_cannot_carry(rng, profile: object, message: str) -> None:
    from cae_codec import api

    with pytest.raises(CaecError) as err:
        api.encode(smooth_image(rng, 8, 8, 3), device="cpu", icc_profile=profile)  # type: ignore[arg-type]
    assert str(err.value).startswith(message)
