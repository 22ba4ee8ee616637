"""Reading images users hand us and writing the ones we give back.

Whatever Pillow opens is accepted; the codec sees one of four layouts (L, LA, RGB, RGBA)
as uint8 (H, W, C). EXIF orientation is applied, 16-bit input is reduced to 8 bits with
a warning, palettes are expanded, a colour key (PNG tRNS) becomes an alpha channel, and only
the first frame of an animation is used. Of the metadata, the ICC profile is kept
(open_image_meta, image_to_bytes); EXIF other than the orientation is dropped with a warning.
"""

from __future__ import annotations

import contextlib
import io
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from cae_codec.container import icc_profile_problem
from cae_codec.errors import ImageError

# what an output's suffix says it is; Pillow writes each of these
OUTPUT_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
    ".webp": "WEBP",
    ".gif": "GIF",
    ".ppm": "PPM",
    ".pgm": "PPM",
}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif", ".ppm", ".pgm"}
Warn = Callable[[str], None]

# Pillow warns above Image.MAX_IMAGE_PIXELS and refuses twice that as a decompression bomb.
# caec refuses at the same point, both when reading an image and when decoding a .cae
# file, unless the caller lifts the limit (max_pixels=None, --no-pixel-limit).
DEFAULT_MAX_PIXELS: int | None = 2 * Image.MAX_IMAGE_PIXELS if Image.MAX_IMAGE_PIXELS else None
LIFT_LIMIT = "--no-pixel-limit (max_pixels=None in the Python API) lifts the limit"
# rows are converted to numpy a band of about this many bytes at a time (see _to_array)
BAND_BYTES = 16 << 20
MODES_16BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_PILLOW_LIMIT = threading.Lock()
EXIF_ORIENTATION = 0x0112
# Pillow unpacks 2- and 4-bit grey to 0..255 but leaves a tRNS key in the file's units
_LOW_BIT_GREY_SCALE = {"L;2": 85, "L;4": 17}
ColourKey = int | tuple[int, int, int]
# output formats whose Pillow writer embeds an ICC profile (save's icc_profile=)
ICC_FORMATS = ("PNG", "JPEG", "JPG", "WEBP", "TIFF")


@dataclass(frozen=True)
class ImageMeta:
    """What caec keeps of an image besides its pixels."""

    icc_profile: bytes | None = None  # the ICC colour profile, as the file embedded it


def _warn(msg: str) -> None:
    print(f"caec: warning: {msg}", file=sys.stderr)


def check_pixel_limit(width: int, height: int, max_pixels: int | None, label: str) -> None:
    """Refuse an image of more than ``max_pixels`` pixels (None: no limit) before it is allocated."""
    if max_pixels is not None and width * height > max_pixels:
        raise ImageError(
            f"{label}: {width}x{height} is {width * height} pixels, more than the limit of {max_pixels} "
            f"(a decompression bomb?); {LIFT_LIMIT}"
        )


@contextlib.contextmanager
def _pillow_pixel_limit(max_pixels: int | None) -> Iterator[None]:
    """Pillow's own decompression-bomb checks, which several plugins repeat while loading,
    set to refuse above ``max_pixels`` (None: off) for the duration.

    Pillow reads the limit from a module global, so it is swapped under a lock and restored.
    """
    with _PILLOW_LIMIT:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None if max_pixels is None else -(-max_pixels // 2)
        try:
            with warnings.catch_warnings():
                # the warning threshold is half the limit: real photos of that size are fine
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _source_bits(im: Image.Image) -> int:
    """16 if the file stores 16-bit samples (Pillow silently keeps the high byte of 16-bit
    RGB(A) PNGs), else 8; decided from the raw modes of the tiles before loading."""
    for tile in getattr(im, "tile", None) or []:
        rawmode = tile.args[0] if isinstance(tile.args, tuple) and tile.args else tile.args
        if isinstance(rawmode, str) and ";16" in rawmode:
            return 16
    return 8


def _scale_to_8bit(im: Image.Image, label: str, warn: Warn) -> Callable[[Image.Image], Image.Image]:
    """A per-band conversion of >8-bit grey or float samples to 8-bit L (identity otherwise)."""
    if im.mode in MODES_16BIT:
        warn(f"{label}: {im.mode} samples reduced to 8 bits")
        _, top = im.getextrema()
        peak = 65535.0 if im.mode.startswith("I;16") or float(top) > 255 else 255.0  # type: ignore[arg-type]

        def scale(band: Image.Image) -> Image.Image:
            arr = np.asarray(band, dtype=np.float64)
            return Image.fromarray(np.clip(np.rint(arr * (255.0 / peak)), 0, 255).astype(np.uint8), "L")

        return scale
    if im.mode == "F":
        warn(f"{label}: float samples clipped to [0, 255] and rounded")
        return lambda band: Image.fromarray(np.clip(np.rint(np.asarray(band)), 0, 255).astype(np.uint8), "L")
    return lambda band: band


def _colour_key(im: Image.Image, label: str, warn: Warn) -> ColourKey | None:
    """The grey value or RGB triple that the file marks transparent (PNG tRNS), in the units of
    Pillow's pixels; None if there is none. Palette transparency is Pillow's convert's job."""
    key = im.info.get("transparency")
    if key is None or im.mode not in ("1", "L", "I;16", "I", "RGB"):
        return None
    if im.mode == "RGB":
        if not (isinstance(key, tuple) and len(key) == 3 and all(isinstance(v, int) for v in key)):
            return None
        if _source_bits(im) == 16:
            # the key is a 16-bit triple, and Pillow keeps only the high byte of each sample:
            # which pixels match it exactly cannot be told any more
            warn(f"{label}: the colour key (tRNS) of a 16-bit RGB image is not applied")
            return None
        return key
    if not isinstance(key, int):
        return None
    rawmodes = [t.args for t in getattr(im, "tile", None) or [] if isinstance(t.args, str)]
    return key * _LOW_BIT_GREY_SCALE.get(rawmodes[0], 1) if im.mode == "L" and rawmodes else key


def _key_alpha(band: Image.Image, key: ColourKey) -> np.ndarray:
    """Alpha for a band of the source image: 0 where a pixel equals the colour ``key``, else 255."""
    # bilevel pixels are booleans to numpy; Pillow's key for them is 0 or 255
    pixels = np.asarray(band.convert("L") if band.mode == "1" else band)
    hit = np.all(pixels == np.asarray(key), axis=2) if pixels.ndim == 3 else pixels == key
    return np.where(hit, 0, 255).astype(np.uint8)


def _target_mode(im: Image.Image, key: ColourKey | None = None) -> str:
    if im.mode in ("L", "1", *MODES_16BIT, "F"):
        return "L" if key is None else "LA"
    if im.mode in ("LA", "La", "I;16A"):
        return "LA"
    if im.mode in ("RGBA", "RGBa", "PA") or (im.mode == "P" and "transparency" in im.info):
        return "RGBA"
    return "RGB" if key is None else "RGBA"  # CMYK, YCbCr, P, RGBX, HSV, LAB...


def _to_array(
    im: Image.Image, target: str, to_8bit: Callable[[Image.Image], Image.Image], key: ColourKey | None = None
) -> np.ndarray:
    """The loaded image as uint8 (H, W, len(target)), converted a band of rows at a time;
    with a colour ``key`` the last channel of ``target`` is the alpha made from it.

    Converting in one go would hold Pillow's pixels (4 bytes a pixel even for RGB), the
    converted copy and the bytes numpy is handed all at once; band by band the peak is
    Pillow's pixels plus the result.
    """
    width, height = im.size
    channels = len(target)
    out = np.empty((height, width, channels), dtype=np.uint8)
    rows = max(1, BAND_BYTES // (4 * width))
    colour = target if key is None else target[:-1]
    for y in range(0, height, rows):
        source = im.crop((0, y, width, min(height, y + rows)))
        band = to_8bit(source).convert(colour)
        out[y : y + band.height, :, : len(colour)] = np.asarray(band).reshape(band.height, width, len(colour))
        if key is not None:
            # from the source samples: 16-bit grey matches its key before it is scaled
            out[y : y + band.height, :, -1] = _key_alpha(source, key)
    return out


def _kept_meta(im: Image.Image, target: str, label: str, warn: Warn) -> ImageMeta:
    """The metadata of ``im`` that caec carries, read before orientation is applied; a warning
    for what it drops."""
    if set(im.getexif()) - {EXIF_ORIENTATION}:
        warn(f"{label}: EXIF metadata other than the orientation is not kept")
    profile = im.info.get("icc_profile") or None
    if profile is not None:
        problem = icc_profile_problem(profile, len(target))
        if problem:
            warn(f"{label}: {problem}; not kept")
            profile = None
    return ImageMeta(icc_profile=profile)


def open_image(
    source: Path | bytes,
    name: str | None = None,
    warn: Warn = _warn,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Decode an image file to uint8 (H, W, C) with C in {1, 2, 3, 4}; its metadata is ignored
    (open_image_meta keeps what caec carries).

    An image of more than ``max_pixels`` pixels is refused before its pixels are decoded.
    """
    return _open(source, name, warn, max_pixels, keep_meta=False)[0]


def open_image_meta(
    source: Path | bytes,
    name: str | None = None,
    warn: Warn = _warn,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> tuple[np.ndarray, ImageMeta]:
    """open_image, and the metadata caec carries into a .cae file (the ICC profile).

    A profile that cannot be carried (over the format's limit, malformed, or for another
    colour space than the pixels are coded in, as a CMYK profile) and EXIF other than the
    orientation are dropped with a warning each.
    """
    return _open(source, name, warn, max_pixels, keep_meta=True)


def _open(
    source: Path | bytes, name: str | None, warn: Warn, max_pixels: int | None, keep_meta: bool
) -> tuple[np.ndarray, ImageMeta]:
    label = name or (str(source) if isinstance(source, Path) else "<stdin>")
    try:
        with (
            _pillow_pixel_limit(max_pixels),
            Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im,
        ):
            check_pixel_limit(im.width, im.height, max_pixels, label)
            if getattr(im, "n_frames", 1) > 1:
                warn(f"{label}: animated image, only the first frame is coded")
            im.seek(0)
            if _source_bits(im) == 16 and im.mode not in MODES_16BIT:
                warn(f"{label}: 16-bit samples reduced to 8 bits")
            # before loading, which drops the tiles that tell the sample depth
            key = _colour_key(im, label, warn)
            im.load()
            target = _target_mode(im, key)
            meta = _kept_meta(im, target, label, warn) if keep_meta else ImageMeta()
            # in place: without an Orientation tag the default would return a full copy
            ImageOps.exif_transpose(im, in_place=True)
            return _to_array(im, target, _scale_to_8bit(im, label, warn), key), meta
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"{label}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{label}: is a directory") from None
    except UnidentifiedImageError:
        raise ImageError(f"{label}: not an image Pillow can read") from None
    except Image.DecompressionBombError as e:
        raise ImageError(f"{label}: {e} {LIFT_LIMIT}") from None
    except Exception as e:
        # Pillow's decoders fail on hostile files in many ways (OSError, SyntaxError,
        # struct.error, IndexError, ...): whatever it is, this file cannot be read
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ImageError(f"{label}: cannot decode image ({detail})") from None


def read_image_rgb8(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 for training: grey is replicated, alpha dropped."""
    arr = open_image(path, warn=lambda m: None)
    if arr.shape[2] in (1, 2):
        arr = np.repeat(arr[:, :, :1], 3, axis=2)
    return np.ascontiguousarray(arr[:, :, :3])


def image_to_bytes(
    arr: np.ndarray,
    fmt: str = "PNG",
    icc_profile: bytes | None = None,
    warn: Warn = _warn,
    quality: int | None = None,
    lossless: bool = False,
) -> bytes:
    """Encode (H, W, C) uint8 to an image file in memory (PNG unless ``fmt`` says otherwise),
    with ``icc_profile`` embedded where the format holds one (PNG, JPEG, WebP, TIFF; other
    formats are written without it, with a warning). ``quality`` (1..100) is the JPEG or
    WebP quality, ``lossless`` makes WebP lossless; other formats are lossless anyway."""
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[arr.shape[2]]
    options: dict[str, object] = {}
    if fmt.upper() in ("JPEG", "JPG", "WEBP") and quality is not None:
        options["quality"] = int(quality)
    if fmt.upper() == "WEBP" and lossless:
        options["lossless"] = True
        options["quality"] = 100  # for lossless WebP, the effort spent on a smaller file
        options["exact"] = True  # keep the colour under fully transparent pixels too
    if icc_profile:
        problem = icc_profile_problem(icc_profile, arr.shape[2])
        if problem:
            raise ImageError(f"cannot write {fmt} image: {problem}")
        if fmt.upper() in ICC_FORMATS:
            options["icc_profile"] = bytes(icc_profile)
        else:
            warn(f"{fmt} cannot hold an ICC profile: the image is written without it")
    im = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr, mode)
    if fmt.upper() in ("JPEG", "JPG", "BMP") and mode in ("LA", "RGBA"):
        im = im.convert("L" if mode == "LA" else "RGB")
    buf = io.BytesIO()
    try:
        im.save(buf, format=fmt, **options)
    except (KeyError, ValueError, OSError) as e:
        raise ImageError(f"cannot write {fmt} image: {e}") from None
    return buf.getvalue()
