"""Library API: ``encode(array) -> bytes`` and ``decode(bytes) -> array``, beside the CLI."""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cae_codec import container, j2k, zoo
from cae_codec.errors import CaecError, FormatError, ModelError
from cae_codec.family import read_family
from cae_codec.imageio import DEFAULT_MAX_PIXELS, ImageMeta, check_pixel_limit
from cae_codec.modelfiles import ModelInfo, check_weights_hash, read_model_info
from cae_codec.quant import QUALITY_MAX, QUALITY_MIN, REFINE_MAX
from cae_codec.zoo import list_models as list_models  # `caec models`, part of the library API

if TYPE_CHECKING:
    import torch

    from cae_codec.codec import Codec

# torch, the codec and the weights loader are imported inside the functions that need them:
# importing torch takes seconds, and `caec info` or a malformed .cae file (which fails in the
# container checks) should not wait for it.

# the catalogue's default (a model family: each --quality is served by the member trained for it)
DEFAULT_MODEL = os.environ.get("CAEC_MODEL") or zoo.default_model(j2k.PAYLOAD_CODEC)


def pick_device(name: str = "auto") -> torch.device:
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise CaecError("--device cuda asked for, but torch sees no CUDA device")
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise CaecError(f"unknown device {name!r} (use auto, cpu or cuda)")


def get_codec(model: str | os.PathLike[str] = DEFAULT_MODEL, device: str = "auto") -> Codec:
    """The codec for a model name, a .safetensors path, or a model family's name or file."""
    from cae_codec.codec import CaePcaJ2kCodec, FamilyCodec
    from cae_codec.weights import load_model

    dev = pick_device(device)
    found = zoo.resolve(model)
    if found.kind == "model":
        return CaePcaJ2kCodec(load_model(found.path), dev)
    # members load when a quality, a rate or a file first needs them
    return FamilyCodec(read_family(found.path), dev)


# bpp above this is no compression at all (8-bit RGBA is 32 bpp): a caller's mistake
BPP_MAX = 64.0


def _as_hwc(image: object) -> np.ndarray:
    try:
        arr = np.asarray(image)
    except (TypeError, ValueError) as e:  # ragged nested lists, objects numpy cannot convert
        raise CaecError(f"encode() takes a uint8 array, got {type(image).__name__} ({e})") from None
    if arr.dtype != np.uint8:
        raise CaecError(f"encode() takes uint8 pixels, got {arr.dtype}")
    shape = arr.shape
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or not 1 <= arr.shape[2] <= 4:
        raise CaecError(f"encode() takes an (H, W) or (H, W, C) array with C in 1..4, got shape {shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise CaecError(f"encode() got an image with no pixels (shape {shape})")
    return arr


# The checks below take Any: they exist for the values a caller passes against the annotations.


def _is_int(value: Any) -> bool:
    # bool is an int to Python, never a quality or a step count to a caller who meant one
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_rate(quality: Any, bpp: Any) -> tuple[int | None, float | None]:
    """``quality`` and ``bpp`` as the codec takes them, or one CaecError saying what is wrong."""
    if quality is not None and bpp is not None:
        raise CaecError("give quality or bpp, not both")
    if quality is not None:
        if not _is_int(quality) or not QUALITY_MIN <= quality <= QUALITY_MAX:
            raise CaecError(f"quality must be an int in {QUALITY_MIN}..{QUALITY_MAX}, got {quality!r}")
        return int(quality), None
    if bpp is not None:
        real = isinstance(bpp, numbers.Real) and not isinstance(bpp, bool)
        if not real or not math.isfinite(bpp) or not 0 < bpp < BPP_MAX:
            raise CaecError(f"bpp must be a finite number in (0, {BPP_MAX:g}), got {bpp!r}")
        return None, float(bpp)
    return None, None


def _check_model(model: Any) -> None:
    if not isinstance(model, (str, os.PathLike)):
        raise CaecError(f"model must be a name or a path, got {model!r}")


def _check_options(device: Any, max_pixels: Any) -> None:
    if not isinstance(device, str):
        raise CaecError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    if max_pixels is not None and (not _is_int(max_pixels) or max_pixels < 1):
        raise CaecError(f"max_pixels must be a positive int or None, got {max_pixels!r}")


def _as_bytes(data: Any) -> bytes:
    """Any bytes-like object (bytes, bytearray, memoryview, a numpy buffer) as bytes, copied
    only when it is not bytes already; the container parser slices and compares bytes."""
    if isinstance(data, bytes):
        return data
    try:
        return memoryview(data).tobytes()
    except TypeError:
        raise CaecError(f"expected the bytes of a .cae file (a bytes-like object), got {type(data).__name__}") from None


def _as_profile(profile: Any, channels: int) -> bytes | None:
    """``icc_profile`` as bytes (None or empty: no profile), or one CaecError saying why the
    file cannot carry it."""
    if profile is None:
        return None
    try:
        raw = memoryview(profile).tobytes()
    except TypeError:
        raise CaecError(f"icc_profile must be the bytes of an ICC profile, got {type(profile).__name__}") from None
    problem = container.icc_profile_problem(raw, channels) if raw else None
    if problem:
        raise CaecError(f"icc_profile: {problem}")
    return raw or None


def encode(
    image: np.ndarray,
    quality: int | None = None,
    bpp: float | None = None,
    model: str | os.PathLike[str] = DEFAULT_MODEL,
    device: str = "auto",
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    refine: int = 0,
    icc_profile: bytes | bytearray | memoryview | None = None,
) -> bytes:
    """Compress a uint8 (H, W) or (H, W, C) array, C in 1..4 (grey, grey+alpha, RGB, RGBA).

    ``refine`` > 0 refines the latent by that many gradient steps through the decoder
    (cae_codec.refine): smaller files at equal quality, slower encoding, same decoding.

    Images above ``max_pixels`` (default: Pillow's decompression-bomb limit, which decode
    applies too) are refused unless it is None.

    ``icc_profile``, the source's ICC colour profile (imageio.open_image_meta reads it), is
    stored in the file and given back by decode_with_meta; its bytes count against ``bpp``.
    """
    quality, bpp = _check_rate(quality, bpp)
    if not _is_int(refine) or not 0 <= refine <= REFINE_MAX:
        raise CaecError(f"refine must be an int in 0..{REFINE_MAX}, got {refine!r}")
    _check_model(model)
    _check_options(device, max_pixels)
    arr = _as_hwc(image)
    check_pixel_limit(arr.shape[1], arr.shape[0], max_pixels, "image")
    profile = _as_profile(icc_profile, arr.shape[2])
    return get_codec(model, device).encode(arr, quality=quality, bpp=bpp, refine=int(refine), icc_profile=profile)


def decode(
    data: bytes | bytearray | memoryview,
    model: str | os.PathLike[str] | None = None,
    device: str = "auto",
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Decompress .cae bytes to uint8 (H, W, C); the model is the one the file names unless given.

    A file whose header declares more than ``max_pixels`` pixels is refused before anything
    is allocated for it (None: no limit, for genuinely huge images).
    """
    return decode_with_meta(data, model, device, max_pixels)[0]


def decode_with_meta(
    data: bytes | bytearray | memoryview,
    model: str | os.PathLike[str] | None = None,
    device: str = "auto",
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, ImageMeta]:
    """decode, and what the file carries besides the pixels: the source's ICC profile
    (ImageMeta.icc_profile, None when the file has none), for image_to_bytes(icc_profile=).

    ``progress(n)`` is called as each batch of n tiles is decoded (the header's padded size
    over its tile size, squared, in all), for a progress bar on long decodes."""
    if model is not None:
        _check_model(model)
    _check_options(device, max_pixels)
    box = container.unpack(_as_bytes(data))
    check_pixel_limit(box.header.width, box.header.height, max_pixels, "decoded image")
    path = _decoder_weights(box.header.model, model)
    _precheck(box, read_model_info(path))
    from cae_codec.codec import CODECS
    from cae_codec.weights import load_model

    codec_cls = CODECS.get(box.header.codec)
    if codec_cls is None:
        raise FormatError(f"unknown codec {box.header.codec!r} (this caec knows {', '.join(CODECS)})")
    weights = load_model(path)
    codec = codec_cls(weights, pick_device(device))
    return codec.decode(box, progress), ImageMeta(icc_profile=box.chunks.get(container.ICC))


def _decoder_weights(file_model: str, model: str | os.PathLike[str] | None) -> Path:
    """The weights to decode with: the model the file names, or the one given (a family: its
    member that the file names)."""
    if model is None:
        return zoo.resolve_model(file_model, name_only=True)
    found = zoo.resolve(model)
    if found.kind == "model":
        return found.path
    family = read_family(found.path)
    if all(m.model != file_model for m in family.members):
        members = ", ".join(m.model for m in family.members)
        raise ModelError(
            f"file was encoded with model {file_model!r}, not a member of family {family.name!r} ({members})"
        )
    return zoo.member_path(family, file_model)


def _precheck(box: container.Container, model: ModelInfo) -> None:
    """Refuse a wrong model or a malformed payload before torch is imported (it takes seconds)."""
    hd = box.header
    if hd.codec != j2k.PAYLOAD_CODEC:
        return  # another pipeline: its own checks run after loading
    if model.weights_hash is not None:
        check_weights_hash(hd.model, hd.weights_hash, model.path.name.removesuffix(".safetensors"), model.weights_hash)
    try:
        stride = 2 ** int(model.config["stages"])
        latent = int(model.config["latent"])
    except (KeyError, TypeError, ValueError):
        return  # not a CAE config: the codec's own checks after loading apply
    if hd.latent_channels != latent:
        raise FormatError(f"header declares {hd.latent_channels} latent channels, the model has {latent}")
    j2k.check_payload(box, stride)


def info(data: bytes | bytearray | memoryview) -> dict[str, Any]:
    """Header fields and chunk sizes of a .cae file, without decoding the image."""
    data = _as_bytes(data)
    box = container.unpack(data)
    hd = box.header
    fields = asdict(hd)
    fields["weights_hash"] = hd.weights_hash.hex()
    fields["format_version"] = container.FORMAT_VERSION
    fields["file_bytes"] = len(data)
    fields["bpp"] = 8 * len(data) / (hd.width * hd.height)
    fields["chunks"] = {t.decode(): len(p) for t, p in box.chunks.items()}
    return fields
