"""Library API: ``encode(array) -> bytes`` and ``decode(bytes) -> array``, beside the CLI.

Every codec of the registry (cae_codec.registry) goes through these: ``encode(..., codec=ID)``
writes a file of that codec, ``decode`` reads the codec a file names.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cae_codec import container, registry, zoo
from cae_codec.cae.family import read_family
from cae_codec.container import Box
from cae_codec.errors import CaecError, ModelError
from cae_codec.imageio import DEFAULT_MAX_PIXELS, ImageMeta, check_pixel_limit
from cae_codec.modelfiles import read_model_info
from cae_codec.registry import DEFAULT_CODEC
from cae_codec.stages.quant import REFINE_MAX
from cae_codec.zoo import list_models as list_models  # `caec models`, part of the library API

if TYPE_CHECKING:
    import torch

    from cae_codec.contract import Codec

# torch, the codec and the weights loader are imported inside the functions that need them:
# importing torch takes seconds, and `caec info` or a malformed .cae file (which fails in the
# container checks) should not wait for it.

# the catalogue's default (a model family: each --quality is served by the member trained for it)
DEFAULT_MODEL = os.environ.get("CAEC_MODEL") or zoo.default_model(DEFAULT_CODEC)


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


def get_codec(
    model: str | os.PathLike[str] | None = None, device: str = "auto", codec: str = DEFAULT_CODEC, **options: Any
) -> Codec:
    """``codec`` loaded with ``model`` (a model name, a weights path, a model family's name or
    file; None: the codec's default, $CAEC_MODEL for the default codec) on ``device``;
    ``options`` are the codec's own (the default codec's ``refine``)."""
    info = registry.get(codec)
    if model is None:
        model = DEFAULT_MODEL if info.id == DEFAULT_CODEC else info.default_model
    try:
        return registry.package(info.id).load(model, device, **options)  # type: ignore[no-any-return]
    except TypeError as e:
        raise CaecError(f"codec {info.id} does not take the options {', '.join(options)} ({e})") from None


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


def _check_rate(
    quality: Any, bpp: Any, size: Any = None, codec: str = DEFAULT_CODEC
) -> tuple[int | None, float | None, int | None]:
    """``quality``, ``bpp`` and ``size`` as the codec takes them, or one CaecError saying what
    is wrong."""
    if sum(v is not None for v in (quality, bpp, size)) > 1:
        raise CaecError("give one of quality, bpp and size")
    if size is not None:
        if not _is_int(size) or size < 1:
            raise CaecError(f"size must be a positive int (bytes), got {size!r}")
        return None, None, int(size)
    scale = registry.get(codec).quality
    if quality is not None:
        if not _is_int(quality) or not scale.lo <= quality <= scale.hi:
            raise CaecError(f"quality must be an int in {scale.lo}..{scale.hi}, got {quality!r}")
        return int(quality), None, None
    if bpp is not None:
        real = isinstance(bpp, numbers.Real) and not isinstance(bpp, bool)
        if not real or not math.isfinite(bpp) or not 0 < bpp < BPP_MAX:
            raise CaecError(f"bpp must be a finite number in (0, {BPP_MAX:g}), got {bpp!r}")
        return None, float(bpp), None
    return None, None, None


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
    model: str | os.PathLike[str] | None = None,
    device: str = "auto",
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    refine: int = 0,
    icc_profile: bytes | bytearray | memoryview | None = None,
    size: int | None = None,
    codec: str = DEFAULT_CODEC,
) -> bytes:
    """Compress a uint8 (H, W) or (H, W, C) array, C in 1..4 (grey, grey+alpha, RGB, RGBA),
    to a file of ``codec`` (cae_codec.registry): at ``quality``, or the largest file within
    ``bpp`` bits per pixel or ``size`` bytes (header included).

    ``refine`` > 0 refines the latent by that many gradient steps through the decoder
    (cae_codec.cae.refine): smaller files at equal quality, slower encoding, same decoding.

    Images above ``max_pixels`` (default: Pillow's decompression-bomb limit, which decode
    applies too) are refused unless it is None.

    ``icc_profile``, the source's ICC colour profile (imageio.open_image_meta reads it), is
    stored in the file and given back by decode_with_meta; its bytes count against ``bpp``.
    """
    if not isinstance(codec, str):
        raise CaecError(f"codec must be a codec id, got {codec!r}")
    info = registry.get(codec)
    quality, bpp, size = _check_rate(quality, bpp, size, info.id)
    if not _is_int(refine) or not 0 <= refine <= REFINE_MAX:
        raise CaecError(f"refine must be an int in 0..{REFINE_MAX}, got {refine!r}")
    if model is not None:  # None: the codec's default model (for the default codec, $CAEC_MODEL's)
        _check_model(model)
    _check_options(device, max_pixels)
    arr = _as_hwc(image)
    check_pixel_limit(arr.shape[1], arr.shape[0], max_pixels, "image")
    profile = _as_profile(icc_profile, arr.shape[2])
    from cae_codec import contract

    options = {"refine": int(refine)} if refine else {}
    loaded = get_codec(model, device, info.id, **options)
    return contract.encode(loaded, arr, quality=quality, bpp=bpp, size=size, icc_profile=profile)


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
    box = container.parse(_as_bytes(data))
    check_pixel_limit(box.width, box.height, max_pixels, "decoded image")
    info = registry.for_file(box.codec)
    checks = registry.payload(info.id)
    if info.capabilities.learned:
        weights = _decoder_weights(box, model)
        checks.precheck(box, read_model_info(weights))
        path: Path | None = weights
    else:  # a codec without weights
        path = None
        checks.precheck(box, None)
    codec = registry.package(info.id).load(path, device)
    return codec.decode(box, progress), ImageMeta(icc_profile=box.first(container.ICC))


def file_model(box: Box) -> zoo.Resolved:
    """The weights a file was made with: the model it names (version 1), the shipped model of
    its number, or the weights its hash begins (version 2). ``box.model`` is set to its name."""
    if box.model is not None:
        found = zoo.resolve(box.model, name_only=True)
    elif box.model_number:
        found = zoo.resolve_number(box.model_number)
    else:
        found = zoo.find_by_hash(box.weights_hash)
    box.model = found.name
    return found


def _decoder_weights(box: Box, model: str | os.PathLike[str] | None) -> Path:
    """The weights to decode with: the model the file names, or the one given (a family: its
    member that made the file)."""
    if model is None:
        return file_model(box).path
    found = zoo.resolve(model)
    if found.kind == "model":
        return found.path
    family = read_family(found.path)
    if box.model is None:  # version 2: the member whose weights the file's hash begins
        box.model = zoo.member_by_hash(family, box.weights_hash)
    if all(m.model != box.model for m in family.members):
        members = ", ".join(m.model for m in family.members)
        named = f"model {box.model!r}" if box.model else f"weights {box.weights_hash.hex()[:12]}"
        raise ModelError(f"file was encoded with {named}, not a member of family {family.name!r} ({members})")
    return zoo.member_path(family, box.model or "")


def standard_codestream(data: bytes | bytearray | memoryview, suffix: str | None = None) -> bytes:
    """The standard image codestream a .cae file carries whole, which any reader of that format
    opens (comcnn: its compact image, a JPEG or the codestream of its inner codec), checked as
    decoding checks it; one CaecError line for a codec whose files carry none, or when ``suffix``
    (of the file it is for) does not name that format."""
    box = container.parse(_as_bytes(data))
    codec_info = registry.for_file(box.codec)
    checks = registry.payload(codec_info.id)
    extract = getattr(checks, "standard_codestream", None)
    if extract is None:
        raise CaecError(f"{codec_info.id} files carry no standard codestream to extract")
    codestream: bytes = extract(box)
    suffixes = getattr(checks, "standard_suffixes", None)
    if suffix is not None and suffixes is not None:
        usual = suffixes(box)
        if suffix.lower() not in usual:
            raise CaecError(
                f"the codestream this file carries is a {usual[0]} file: name the output {' or '.join(usual)} "
                f"(got {suffix or 'no suffix'})"
            )
    return codestream


def info(data: bytes | bytearray | memoryview) -> dict[str, Any]:
    """Header fields, the codec's parameters and chunk sizes of a .cae file, without decoding
    it (and without importing torch)."""
    data = _as_bytes(data)
    box = container.parse(data)
    codec_info = registry.for_file(box.codec)
    checks = registry.payload(codec_info.id)
    fields: dict[str, Any] = {
        "format_version": box.version,
        "codec": box.codec,
        "model": box.model,
        "model_number": box.model_number,
        "weights_hash": box.weights_hash.hex(),
        "width": box.width,
        "height": box.height,
        "channels": box.channels,
    }
    if box.model is None and codec_info.capabilities.learned:
        try:
            fields["model"] = file_model(box).name
        except (ModelError, ValueError):
            fields["model"] = None  # weights this caec does not have: the file still describes itself
    fields |= checks.describe(box)
    if box.progressive:
        fields["progressive"] = True
        fields["complete"] = box.complete
        fields["chunks_declared"] = box.declared
    fields["file_bytes"] = len(data)
    fields["bpp"] = 8 * len(data) / (box.width * box.height)
    sizes: dict[str, int] = {}
    for ctype, payload in box.chunks:
        sizes[ctype.decode()] = sizes.get(ctype.decode(), 0) + len(payload)
    fields["chunks"] = sizes
    return fields
