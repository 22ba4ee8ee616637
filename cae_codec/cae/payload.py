"""The ``cae-pca-j2k`` payload, without torch: its parameters, the checks a file passes before
the model is loaded, and what ``caec info`` shows.

Version 2 files carry the parameters in their ``PARM`` chunk (PARAMS_STRUCT, big-endian):
tile side, quantization step (float32), quality (0: the step was chosen otherwise, e.g. by
--bpp), latent channels M, stored components K, mosaic columns. The padded size is the image
size rounded up to whole tiles. Version 1 files have the same fields in their fixed header.
Then ``LATN``, the K components' integers as one lossless JPEG 2000 mosaic (absent when K is
0), and ``ALPH``, the alpha plane, for grey + alpha and RGBA images.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from cae_codec.container import ALPHA, LATENT, Box
from cae_codec.container.v2 import PARAMS
from cae_codec.errors import FormatError
from cae_codec.modelfiles import ModelInfo, precheck_weights
from cae_codec.stages import j2k
from cae_codec.stages.tiling import TILE

PARAMS_STRUCT = struct.Struct(">HfBHHH")
MAX_LATENT_CHANNELS = 4096
STEP_LIMIT = 1e6  # steps at or above are malformed (also as version 1 has it)


@dataclass(frozen=True)
class CaeParams:
    tile: int
    step: float
    quality: int
    latent_channels: int
    components: int
    mosaic_cols: int
    padded_width: int
    padded_height: int

    def pack(self) -> bytes:
        return PARAMS_STRUCT.pack(
            self.tile, self.step, self.quality, self.latent_channels, self.components, self.mosaic_cols
        )

    def validate(self) -> None:
        def bad(msg: str) -> FormatError:
            return FormatError(f"malformed parameters: {msg}")

        if not self.tile:
            raise bad("tile of 0 pixels")
        if not (0 < self.step < STEP_LIMIT):  # also refuses NaN
            raise bad(f"quantization step {self.step}")
        if not 0 < self.latent_channels <= MAX_LATENT_CHANNELS or not 0 <= self.components <= self.latent_channels:
            raise bad(f"{self.components} of {self.latent_channels} components")
        if self.components and not 0 < self.mosaic_cols <= self.components:
            raise bad(f"mosaic of {self.mosaic_cols} columns for {self.components} components")
        if not self.components and self.mosaic_cols:
            raise bad(f"mosaic of {self.mosaic_cols} columns without components")


def padded(side: int, tile: int) -> int:
    return math.ceil(side / tile) * tile


def params(box: Box) -> CaeParams:
    """The parameters of a ``cae-pca-j2k`` file of either container version."""
    if box.v1_header is not None:
        hd = box.v1_header
        p = CaeParams(
            hd.tile,
            hd.step,
            hd.quality,
            hd.latent_channels,
            hd.components,
            hd.mosaic_cols,
            hd.padded_width,
            hd.padded_height,
        )
        p.validate()
        return p
    raw = box.first(PARAMS)
    if raw is None or box.chunks[0][0] != PARAMS:
        raise FormatError("missing PARM chunk (the codec's parameters)")
    if len(box.all(PARAMS)) != 1:
        raise FormatError("more than one PARM chunk")
    if len(raw) != PARAMS_STRUCT.size:
        raise FormatError(f"PARM chunk of {len(raw)} bytes, not {PARAMS_STRUCT.size}")
    tile, step, quality, latent, components, cols = PARAMS_STRUCT.unpack(raw)
    p = CaeParams(
        tile, step, quality, latent, components, cols, padded(box.width, tile or 1), padded(box.height, tile or 1)
    )
    p.validate()
    return p


def check_chunks(box: Box) -> None:
    """Chunk types and multiplicity: PARM once first (version 2), LATN and ALPH at most once,
    ancillary chunks anywhere."""
    seen: set[bytes] = set()
    for ctype, _ in box.chunks:
        if ctype in (LATENT, ALPHA, PARAMS) and ctype in seen:
            raise FormatError(f"duplicate chunk {ctype.decode()}")
        if ctype[:1].isupper() and ctype not in (LATENT, ALPHA, PARAMS):
            raise FormatError(f"unknown critical chunk {ctype.decode()} for cae-pca-j2k (file needs a newer caec)")
        seen.add(ctype)


def read_components(box: Box, p: CaeParams, plane_h: int, plane_w: int) -> np.ndarray:
    """The stored components as int16 (K, plane_h, plane_w); K may be 0."""
    if not p.components:
        return np.zeros((0, plane_h, plane_w), dtype=np.int16)
    shape = j2k.latent_mosaic_shape(p.components, p.mosaic_cols, plane_h, plane_w)
    latent = box.first(LATENT)
    assert latent is not None  # check() ran
    return j2k.from_mosaic(
        j2k.decode_plane(latent, shape, np.dtype(np.int16), "latent"), p.components, plane_h, plane_w
    )


def check(box: Box, stride: int | None = None, latent_channels: int | None = None) -> CaeParams:
    """Every check of a payload that needs no network: parameters, chunks present, codestream
    shapes (with the model's ``stride`` and ``latent_channels`` when known). Runs before the
    model loads, so a malformed file is refused without importing torch."""
    if box.flags:  # this codec writes neither progressive nor several-image files
        raise FormatError(f"flags {box.flags:#x} do not apply to cae-pca-j2k files")
    check_chunks(box)
    p = params(box)
    if p.tile != TILE:
        raise FormatError(f"tiles of {p.tile} pixels; cae-pca-j2k codes tiles of {TILE}")
    if latent_channels is not None and p.latent_channels != latent_channels:
        raise FormatError(f"file declares {p.latent_channels} latent channels, the model has {latent_channels}")
    if stride is not None:
        if p.padded_height % stride or p.padded_width % stride:
            raise FormatError(
                f"padded size {p.padded_width}x{p.padded_height} does not fit the model's stride {stride}"
            )
        if p.components:
            if box.first(LATENT) is None:
                raise FormatError("missing latent chunk")
            shape = j2k.latent_mosaic_shape(
                p.components, p.mosaic_cols, p.padded_height // stride, p.padded_width // stride
            )
            j2k.check_plane(box.first(LATENT) or b"", shape, np.dtype(np.int16), "latent")
        elif box.first(LATENT) is not None:
            raise FormatError("a latent chunk in a file without components")
    if box.channels in (2, 4):
        alpha = box.first(ALPHA)
        if alpha is None:
            raise FormatError("missing alpha chunk")
        j2k.check_plane(alpha, (box.height, box.width), np.dtype(np.uint8), "alpha")
    elif box.first(ALPHA) is not None:
        raise FormatError("an alpha chunk in a file without alpha")
    return p


def describe(box: Box) -> dict[str, Any]:
    """The payload's fields for ``caec info``."""
    p = params(box)
    return {
        "tile": p.tile,
        "padded_width": p.padded_width,
        "padded_height": p.padded_height,
        "step": p.step,
        "quality": p.quality,
        "latent_channels": p.latent_channels,
        "components": p.components,
        "mosaic_cols": p.mosaic_cols,
        # what decode's progress(n) counts to: one unit a tile
        "decode_steps": (p.padded_width // p.tile) * (p.padded_height // p.tile),
    }


def precheck(box: Box, model: ModelInfo) -> None:
    """Refuse a wrong model or a malformed payload before torch is imported (it takes
    seconds): the weights hash, and every check the model's config allows."""
    precheck_weights(box.model, box.weights_hash, model)
    try:
        stride = 2 ** int(model.config["stages"])
        latent = int(model.config["latent"])
    except (KeyError, TypeError, ValueError):
        check(box)  # not a CAE config: the codec refuses it when it loads
        return
    check(box, stride, latent)


def summary(fields: dict[str, Any]) -> str:
    """The parameters worth a word in `caec encode -v`, from :func:`describe`'s fields."""
    return f"step {fields['step']:.4g}, {fields['components']} of {fields['latent_channels']} components"
