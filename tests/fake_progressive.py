"""A progressive codec made for the tests of the web page, as tests/fake_codec.py is for the house.

``fake-planes`` writes each sample's bit planes, most significant first, one ``PLNE`` chunk a
plane under the progressive flag: any prefix of its chunks decodes (the planes not there yet
read as the middle of what they could be), coarse to fine. Its --quality (1..8) is the
planes kept; it has no weights.
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

ID = "fake-planes"
NUMBER = 251  # not a number the format gives out: the tests add it for the time of a test
INFO = CodecInfo(
    id=ID,
    label="fake planes",
    paper="the tests",
    summary="bit planes, most significant first, one chunk each",
    module=__name__,
    quality=QualityScale(1, 8, 4),
    capabilities=Capabilities(progressive=True, learned=False),
)
PLANE = b"PLNE"


class FakePlanes:
    info: ClassVar[CodecInfo] = INFO
    knob: ClassVar[Knob] = Knob("planes kept", 1, 8, integer=True)
    name = "no model"

    def analyse(self, image: np.ndarray, icc_profile: bytes | None = None) -> np.ndarray:
        return image

    def pack(self, analysis: np.ndarray, knob: float, quality: int = 0) -> bytes:
        h, w, c = analysis.shape
        planes = int(knob)
        header = v2.HeaderV2(ID, w, h, c, flags=v2.FLAG_PROGRESSIVE)
        chunks = [(PLANE, zlib.compress(np.packbits((analysis >> (7 - p)) & 1).tobytes(), 9)) for p in range(planes)]
        return v2.pack(header, chunks)

    def knob_for_quality(self, quality: int) -> float:
        return float(quality)

    def finish(self, image: np.ndarray, analysis: Any, data: bytes, budget: int | None) -> bytes:
        return data

    def decode(self, box: Box, progress: Any = None) -> np.ndarray:
        h, w, c = box.height, box.width, box.channels
        planes = check(box)
        out = np.zeros(h * w * c, dtype=np.uint16)
        for p, payload in enumerate(planes):
            bits = np.unpackbits(np.frombuffer(zlib.decompress(payload), np.uint8))[: h * w * c]
            out |= bits.astype(np.uint16) << (7 - p)
        missing = 8 - len(planes)
        if missing:
            out |= 1 << (missing - 1)  # the middle of the values the missing planes leave open
        return out.astype(np.uint8).reshape(h, w, c)


def load(model: Any, device: str = "auto") -> FakePlanes:
    return FakePlanes()


def check(box: Box) -> list[bytes]:
    planes = box.all(PLANE)
    if not 1 <= len(planes) <= 8 or len(planes) != len(box.chunks):
        raise FormatError("fake-planes: 1 to 8 PLNE chunks and nothing else")
    return planes


def precheck(box: Box, model: ModelInfo | None) -> None:
    check(box)


def describe(box: Box) -> dict[str, Any]:
    return {"planes": len(check(box))}


def summary(fields: dict[str, Any]) -> str:
    return f"{fields['planes']} planes"


payload = sys.modules[__name__]
