"""Reading images users hand us and writing the ones we give back.

Whatever Pillow opens is accepted; the codec sees one of four layouts (L, LA, RGB, RGBA)
as uint8 (H, W, C). EXIF orientation is applied, 16-bit input is reduced to 8 bits with
a warning, palettes are expanded, and only the first frame of an animation is used.
"""

from __future__ import annotations

import io
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from cae_codec.errors import ImageError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif", ".ppm", ".pgm"}
Warn = Callable[[str], None]


def _warn(msg: str) -> None:
    print(f"caec: warning: {msg}", file=sys.stderr)


def _to_8bit(im: Image.Image, name: str, warn: Warn) -> Image.Image:
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "I;16N"):
        warn(f"{name}: {im.mode} samples reduced to 8 bits")
        arr = np.asarray(im, dtype=np.float64)
        peak = 65535.0 if im.mode.startswith("I;16") or arr.max() > 255 else 255.0
        return Image.fromarray(np.clip(np.rint(arr * (255.0 / peak)), 0, 255).astype(np.uint8), "L")
    if im.mode == "F":
        warn(f"{name}: float samples clipped to [0, 255] and rounded")
        return Image.fromarray(np.clip(np.rint(np.asarray(im)), 0, 255).astype(np.uint8), "L")
    return im


def open_image(source: Path | bytes, name: str | None = None, warn: Warn = _warn) -> np.ndarray:
    """Decode an image file to uint8 (H, W, C) with C in {1, 2, 3, 4}."""
    label = name or (str(source) if isinstance(source, Path) else "<stdin>")
    try:
        im = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
        if getattr(im, "n_frames", 1) > 1:
            warn(f"{label}: animated image, only the first frame is coded")
        im.seek(0)
        im = ImageOps.exif_transpose(im)
        im.load()
    except FileNotFoundError:
        raise ImageError(f"{label}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{label}: is a directory") from None
    except UnidentifiedImageError:
        raise ImageError(f"{label}: not an image Pillow can read") from None
    except Image.DecompressionBombError as e:
        raise ImageError(f"{label}: {e}") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{label}: cannot decode image ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    im = _to_8bit(im, label, warn)
    has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
    if im.mode in ("L", "1"):
        target = "L"
    elif im.mode in ("LA", "La"):
        target = "LA"
    elif has_alpha:
        target = "RGBA"
    else:
        target = "RGB"  # CMYK, YCbCr, P, RGBX, HSV, LAB...
    arr = np.array(im.convert(target), dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


def read_image_rgb8(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 for training: grey is replicated, alpha dropped."""
    arr = open_image(path, warn=lambda m: None)
    if arr.shape[2] in (1, 2):
        arr = np.repeat(arr[:, :, :1], 3, axis=2)
    return np.ascontiguousarray(arr[:, :, :3])


def image_to_bytes(arr: np.ndarray, fmt: str = "PNG") -> bytes:
    """Encode (H, W, C) uint8 to an image file in memory (PNG unless ``fmt`` says otherwise)."""
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[arr.shape[2]]
    im = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr, mode)
    if fmt.upper() in ("JPEG", "JPG", "BMP") and mode in ("LA", "RGBA"):
        im = im.convert("L" if mode == "LA" else "RGB")
    buf = io.BytesIO()
    try:
        im.save(buf, format=fmt)
    except (KeyError, ValueError, OSError) as e:
        raise ImageError(f"cannot write {fmt} image: {e}") from None
    return buf.getvalue()


def format_for_path(path: Path) -> str:
    ext = path.suffix.lower()
    return {
        ".png": "PNG",
        ".jpg": "JPEG",
        ".jpeg": "JPEG",
        ".tif": "TIFF",
        ".tiff": "TIFF",
        ".bmp": "BMP",
        ".webp": "WEBP",
        ".ppm": "PPM",
        ".pgm": "PPM",
    }.get(ext, "PNG")
