"""The default codec behind the evaluation's codec interface (compare, bdrate).

The CAE runs once per image (``analyse``), by each family member when a step of the search
first needs it; each try of the rate search only re-quantizes and re-packs (``pack``), the same
two steps ``caec encode --bpp`` searches over, with the same knob (log of the quantization
step). Files are whole .cae files, header included.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import imagecodecs
import numpy as np
import torch

from cae_codec import __version__, container
from cae_codec.cae.codec import STEP_KNOB, CaePcaJ2kCodec, Codec, FamilyCodec, member_of, plain_codecs, refined_file
from cae_codec.evaluate.classic import ImageCodec
from cae_codec.evaluate.metrics import as_rgb8
from cae_codec.ratecontrol import SharedEncode, SharedWork


class CaecCodec(ImageCodec):
    name, label, suffix = "caec", "caec", ".cae"
    knob = STEP_KNOB  # the knob `caec encode --bpp` searches

    def __init__(self, codec: Codec, refine: int = 0) -> None:
        self.codec = codec
        self.refine = refine

    def describe(self) -> dict[str, Any]:
        models = [c.model for c in plain_codecs(self.codec)]
        return {
            "codec": self.label,
            "library": "caec",
            "version": f"caec {__version__}",
            "model": self.codec.name,
            # a family: its members' hashes and architectures, in the family's order
            "weights_hash": ",".join(m.weights_hash.hex() for m in models),
            "architecture": ",".join(sorted({m.architecture for m in models})),
            "torch": torch.__version__,
            "device": self.codec.device_name,
            # what ran the network: torch, or the inference graphs in ONNX Runtime (cae_codec.runtime)
            "runtime": ",".join(sorted({c.backend for c in plain_codecs(self.codec)})),
            "latent coder": imagecodecs.jpeg2k_version(),
            "knob": self.knob.name,
            "settings": {"tile": 128, "refine": self.refine},
        }

    def prepare(self, img: np.ndarray) -> Callable[[float], bytes]:
        """Packs ``img`` at any step; a member's analysis is shared work, run on first need."""
        shared = SharedWork()

        def encode(step: float) -> bytes:
            member, member_step = _member_at(self.codec, step)
            return member.pack(shared.get(member.name, lambda: member.analyse(img)), member_step)

        return SharedEncode(encode, shared)

    def encode(self, img: np.ndarray, knob: float) -> bytes:
        return self.prepare(img)(knob)

    def finish(self, img: np.ndarray, data: bytes, budget_bytes: int) -> bytes:
        """With ``refine``: the chosen file again from a latent refined at its step, searched
        again within the budget (what ``caec encode --bpp --refine`` does)."""
        if not self.refine:
            return data
        member = member_of(self.codec, container.parse(data))
        return refined_file(member, member.analyse(img), img, data, budget_bytes, self.refine)

    def decode(self, data: bytes) -> np.ndarray:
        return as_rgb8(self.codec.decode(container.parse(data)))


def _member_at(codec: Codec, step: float) -> tuple[CaePcaJ2kCodec, float]:
    """The single-model codec that packs at the nominal ``step``, and the step it quantizes with."""
    return codec.at(step) if isinstance(codec, FamilyCodec) else (codec, step)
