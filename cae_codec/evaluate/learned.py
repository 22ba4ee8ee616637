"""Any registered codec behind the evaluation's codec interface (a codec may bring its own
adapter: the default codec's is cae_codec.cae.evaluation)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from cae_codec import __version__, container, contract
from cae_codec.errors import CaecError
from cae_codec.evaluate.classic import ImageCodec
from cae_codec.evaluate.metrics import as_rgb8
from cae_codec.modelfiles import read_model_info
from cae_codec.ratecontrol import SharedEncode, SharedWork
from cae_codec.zoo import resolve_model


def _weights_hash(model: str) -> str:
    """The recorded weights hash (hex) of the model file ``model`` names, '' when none is found."""
    try:
        return (read_model_info(resolve_model(model)).weights_hash or b"").hex()
    except CaecError:
        return ""


class ContractCodec(ImageCodec):
    """Any registered codec behind the evaluation's interface: its per-image analysis is
    shared work, run once and charged to every rate (cae_codec.ratecontrol), each try of the
    rate search a ``pack`` at a knob value."""

    suffix = ".cae"

    def __init__(self, codec: contract.Codec, model: str | None = None) -> None:
        """``model``: the model ``CODEC@MODEL`` named, put in the label (two models of one codec
        in one report must not share it)."""
        self.codec = codec
        # a codec's own label when it has one (comcnn names its inner codec), else its registry label
        label = getattr(codec, "label", codec.info.label)
        self.name = self.label = f"{label} ({model})" if model else label  # type: ignore[misc]
        self.knob = codec.knob  # type: ignore[misc]
        self._analyses: dict[int, Any] = {}

    def describe(self) -> dict[str, Any]:
        return {
            "codec": self.label,  # a codec's own label (comcnn names its inner codec)
            "library": "caec",
            "version": f"caec {__version__}",
            "codec id": self.codec.info.id,
            "model": self.codec.name,
            # the report names the weights by their hash beside the model's name
            "weights_hash": _weights_hash(self.codec.name),
            "torch": torch.__version__,
            "knob": self.knob.name,
            "settings": {},
        }

    def prepare(self, img: np.ndarray) -> Callable[[float], bytes]:
        shared = SharedWork()

        def encode(knob: float) -> bytes:
            analysis = shared.get("analysis", lambda: self.codec.analyse(img))
            self._analyses[id(img)] = analysis
            return self.codec.pack(analysis, knob)

        return SharedEncode(encode, shared)

    def encode(self, img: np.ndarray, knob: float) -> bytes:
        return self.prepare(img)(knob)

    def finish(self, img: np.ndarray, data: bytes, budget_bytes: int) -> bytes:
        analysis = self._analyses.pop(id(img), None)
        if analysis is None:
            analysis = self.codec.analyse(img)
        return self.codec.finish(img, analysis, data, budget_bytes)

    def decode(self, data: bytes) -> np.ndarray:
        return as_rgb8(self.codec.decode(container.parse(data)))

    def prefix_decodes(self, full: bytes) -> list[tuple[np.ndarray, float]] | None:
        """A progressive codec's file decoded once, pass after pass: the image after each pass
        (what the file's first k passes decode to) and the decoding time up to it; None for
        other codecs. The evaluation reads every rate of one file from this one decode."""
        decode_passes = getattr(self.codec, "decode_passes", None)
        if decode_passes is None or not self.codec.info.capabilities.progressive:
            return None
        steps = decode_passes(container.parse(full))
        out: list[tuple[np.ndarray, float]] = []
        seconds = 0.0
        while True:
            t0 = time.perf_counter()
            img = next(steps, None)
            seconds += time.perf_counter() - t0
            if img is None:
                return out
            out.append((as_rgb8(img), seconds))
