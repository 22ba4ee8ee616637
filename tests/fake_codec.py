"""A codec made for the tests of the house: one module and one registry entry, nothing else.

``fake-bits`` keeps the top ``k`` bits of every sample (its knob, 1..8; --quality is k) and
deflates them; it has no weights. Its files may hold several images (one ``BITS`` chunk
each), which the registry, the container and the CLI must handle without knowing it.
"""

from __future__ import annotations

import sys
import zlib
from typing import Any, ClassVar

import numpy as np

from cae_codec.container import Box, v2
from cae_codec.contract import Capabilities, CodecInfo, QualityScale
from cae_codec.errors import FormatError
from cae_codec.modelfiles import ModelInfo
from cae_codec.ratecontrol import Knob

ID = "fake-bits"
NUMBER = 250  # not a number the format gives out: the tests add it for the time of a test
INFO = CodecInfo(
    id=ID,
    label="fake bits",
    paper="the tests",
    summary="top bits of each sample, deflated",
    module=__name__,
    quality=QualityScale(1, 8, 6),
    capabilities=Capabilities(several_images=True, learned=False),
)
BITS = b"BITS"


class FakeBits:
    info: ClassVar[CodecInfo] = INFO
    knob: ClassVar[Knob] = Knob("bits kept", 1, 8, integer=True)
    name = "no model"

    def analyse(self, image: np.ndarray, icc_profile: bytes | None = None) -> np.ndarray:
        return image

    def pack(self, analysis: np.ndarray, knob: float, quality: int = 0) -> bytes:
        return pack_images([analysis], int(knob))

    def knob_for_quality(self, quality: int) -> float:
        return float(quality)

    def finish(self, image: np.ndarray, analysis: Any, data: bytes, budget: int | None) -> bytes:
        return data

    def decode(self, box: Box, progress: Any = None) -> np.ndarray:
        kept = check(box)
        h, w, c = box.height, box.width, box.channels
        images = [np.frombuffer(zlib.decompress(p), np.uint8).reshape(h, w, c) << (8 - kept) for p in box.all(BITS)]
        return np.stack(images) if box.stack else images[0]


def pack_images(images: list[np.ndarray], kept: int) -> bytes:
    h, w, c = images[0].shape
    header = v2.HeaderV2(ID, w, h, c, flags=v2.FLAG_STACK if len(images) > 1 else 0, images=len(images))
    chunks = [(v2.PARAMS, bytes([kept]))] + [(BITS, zlib.compress((im >> (8 - kept)).tobytes(), 9)) for im in images]
    return v2.pack(header, chunks)


def load(model: Any, device: str = "auto") -> FakeBits:
    return FakeBits()


def check(box: Box) -> int:
    params = box.first(v2.PARAMS)
    if params is None or len(params) != 1 or not 1 <= params[0] <= 8:
        raise FormatError("fake-bits: bad PARM")
    if len(box.all(BITS)) != box.images:
        raise FormatError(f"fake-bits: {len(box.all(BITS))} images where the header says {box.images}")
    return params[0]


def precheck(box: Box, model: ModelInfo | None) -> None:
    check(box)


def describe(box: Box) -> dict[str, Any]:
    return {"bits_kept": check(box), "images": len(box.all(BITS))}


def summary(fields: dict[str, Any]) -> str:
    return f"{fields['bits_kept']} bits kept"


# the registry finds the torch-free payload functions as PACKAGE.payload: here, this module
payload = sys.modules[__name__]
