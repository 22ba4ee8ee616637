"""The recurrent codec loaded with its weights: an image through every pass once (``analyse``),
then a file of any number of passes (``pack``, the rate knob), and decoding of any prefix.

The image is coded at its size rounded up to multiples of 16, edge pixels repeated, and
cropped on decode. Grey images go through the network as three equal channels and come out as
the mean of the three; alpha is stored losslessly (JPEG 2000) in its own chunk before the
passes, so any prefix of the file carries it.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from cae_codec import contract, zoo
from cae_codec.container import ALPHA, ICC, Box, v2
from cae_codec.contract import CodecInfo, Progress
from cae_codec.errors import CaecError, FormatError
from cae_codec.modelfiles import check_weights_hash
from cae_codec.ratecontrol import Knob
from cae_codec.registry import get
from cae_codec.rnn import payload
from cae_codec.rnn.entropy import TABLE, EntropyModel
from cae_codec.rnn.network import RecurrentCodec
from cae_codec.stages import j2k
from cae_codec.weights import Model

BLOCK = payload.BLOCK


def model_number(model: Model) -> int:
    """The zoo's number of these very weights for the header, 0 when the zoo does not ship them."""
    shipped = zoo.catalogue().models.get(model.name)
    return shipped.number if shipped is not None and shipped.weights_hash == model.weights_hash else 0


@dataclass
class Analysis:
    height: int
    width: int
    channels: int
    bits: list[np.ndarray]  # per pass, (C, h, w) int8 ±1
    chunks: list[bytes]  # per pass, the PASS chunk's payload in the file's coding
    coding: int
    alpha_chunk: bytes | None
    icc_profile: bytes | None


def to_network(img: np.ndarray, colour: int) -> torch.Tensor:
    """(H, W, C) uint8 -> (1, 3, H16, W16) in [0, 1], padded by repeating the edges."""
    h, w = img.shape[:2]
    rgb = img[:, :, :colour].astype(np.float32) / 255.0
    if colour == 1:
        rgb = np.repeat(rgb, 3, axis=2)
    x = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None]
    ph, pw = -h % BLOCK, -w % BLOCK
    if ph or pw:
        # replicate padding needs the pad smaller than the side on reflect, not on replicate
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x


def to_pixels(recon: torch.Tensor, height: int, width: int, colour: int) -> np.ndarray:
    """Network-scale reconstruction (1, 3, H16, W16) -> (height, width, colour) uint8."""
    x = (recon[0, :, :height, :width] + 0.5).clamp(0, 1)
    if colour == 1:
        x = x.mean(dim=0, keepdim=True)
    return (x * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


class RnnCodec:
    info: ClassVar[CodecInfo] = get(payload.CODEC)
    knob: ClassVar[Knob] = Knob("passes", 1, 16, integer=True)

    def __init__(self, model: Model, device: torch.device, entropy: bool = True) -> None:
        self.model = model
        self.device = device
        net = model.network if device.type == "cpu" else copy.deepcopy(model.network)
        self.net: RecurrentCodec = net.to(device)  # type: ignore[assignment]
        self.number = model_number(model)
        self.passes = self.net.config.passes
        # the rate knob runs over this model's passes (a search never tries a pass it lacks)
        self.knob = Knob("passes", 1, max(2, self.passes), integer=True)  # type: ignore[misc]
        self.bits = self.net.config.bits
        table = model.tensors.get(TABLE)
        self.entropy = EntropyModel(table.numpy()) if table is not None and entropy else None
        if self.entropy is not None and self.entropy.channels != self.bits:
            raise CaecError(
                f"model {model.name}: its entropy table has {self.entropy.channels} channels, not {self.bits}"
            )

    @property
    def name(self) -> str:
        return self.model.name

    # ---------------------------------------------------------------- encode
    @torch.inference_mode()
    def analyse(self, img: np.ndarray, icc_profile: bytes | None = None) -> Analysis:
        """Every pass of the image through the network, each pass's bits coded."""
        icc = contract.check_photo(img, icc_profile)
        h, w, c = img.shape
        colour = 3 if c >= 3 else 1
        target = to_network(img, colour).to(self.device) - 0.5
        net = self.net
        enc = net.encoder_state(target)
        dec = None
        recon = torch.zeros_like(target)
        bits: list[np.ndarray] = []
        for t in range(self.passes):
            gain = net.gain_for(recon, t)
            residual = target - recon
            codes, enc = net.encode_step(residual if gain is None else residual * gain, enc)
            b = net.binarize(codes, False)
            if t + 1 < self.passes:  # the last pass's reconstruction is not needed to code it
                if dec is None:
                    dec = net.decoder_state(b)
                out, dec = net.decode_step(b, dec)
                recon = net.next_reconstruction(recon, out, gain)
            bits.append(b[0].to(torch.int8).cpu().numpy())
        coding = payload.RANGE if self.entropy is not None else payload.RAW
        chunks = [self._code_pass(bits, t, coding) for t in range(self.passes)]
        alpha = j2k.encode_plane(np.ascontiguousarray(img[:, :, -1]), j2k.ALPHA_LEVELS) if c in (2, 4) else None
        return Analysis(h, w, c, bits, chunks, coding, alpha, icc)

    def _code_pass(self, bits: list[np.ndarray], t: int, coding: int) -> bytes:
        if coding == payload.RAW or self.entropy is None:
            return np.packbits((bits[t] > 0).reshape(-1)).tobytes()
        return self.entropy.encode(bits[t], bits[t - 1] if t else None, bits[t - 2] if t > 1 else None, t)

    def pack(self, a: Analysis, knob: float, quality: int = 0) -> bytes:
        passes = max(1, min(round(knob), len(a.chunks)))
        chunks: list[tuple[bytes, bytes]] = [(v2.PARAMS, payload.RnnParams(a.coding, self.bits, quality).pack())]
        if a.icc_profile is not None:
            chunks.append((ICC, a.icc_profile))
        if a.alpha_chunk is not None:
            chunks.append((ALPHA, a.alpha_chunk))
        chunks += [(payload.PASS, c) for c in a.chunks[:passes]]
        header = v2.HeaderV2(
            codec=payload.CODEC,
            width=a.width,
            height=a.height,
            channels=a.channels,
            weights_hash=self.model.weights_hash[: v2.HASH_BYTES],
            model_number=self.number,
            flags=v2.FLAG_PROGRESSIVE,
        )
        return v2.pack(header, chunks)

    def knob_for_quality(self, quality: int) -> float:
        return float(min(quality, self.passes))

    def finish(self, image: np.ndarray, analysis: Analysis, data: bytes, budget: int | None) -> bytes:
        return data

    # ---------------------------------------------------------------- decode
    def check_model(self, box: Box) -> payload.RnnParams:
        hash_prefix = self.model.weights_hash[: len(box.weights_hash)]
        check_weights_hash(box.model, box.weights_hash, self.model.name, hash_prefix)
        p = payload.params(box)
        payload.check_against(p, len(box.all(payload.PASS)), self.bits, self.passes)
        if p.coding == payload.RANGE and self.entropy is None:
            raise FormatError(f"file is range-coded; model {self.model.name} has no entropy table")
        return p

    def decode(self, box: Box, progress: Progress | None = None) -> np.ndarray:
        return next(self.decode_passes(box, progress, every_pass=False))

    @torch.inference_mode()
    def decode_passes(
        self, box: Box, progress: Progress | None = None, every_pass: bool = True
    ) -> Iterator[np.ndarray]:
        """The image after each pass of the file (only after the last, unless ``every_pass``):
        the k-th is what the file's first k passes decode to, so the evaluation reads every
        rate of one file from one decode."""
        p = self.check_model(box)
        rows, cols = payload.blocks(box.height, box.width)
        shape = (self.bits, rows, cols)
        colour = 3 if box.channels >= 3 else 1
        alpha = None
        if box.channels in (2, 4):
            alpha = j2k.decode_plane(box.first(ALPHA) or b"", (box.height, box.width), np.dtype(np.uint8), "alpha")
        net = self.net
        recon = torch.zeros(1, 3, rows * BLOCK, cols * BLOCK, device=self.device)
        dec = None
        history: list[np.ndarray] = []
        for t, chunk in enumerate(box.all(payload.PASS)):
            bits = self._pass_bits(chunk, p.coding, shape, history, t)
            history = [*history[-1:], bits]
            b = torch.from_numpy(bits[None].astype(np.float32)).to(self.device)
            gain = net.gain_for(recon, t)
            if dec is None:
                dec = net.decoder_state(b)
            step_out, dec = net.decode_step(b, dec)
            recon = net.next_reconstruction(recon, step_out, gain)
            if progress is not None:
                progress(1)
            if not every_pass and t + 1 < len(box.all(payload.PASS)):
                continue
            out = np.empty((box.height, box.width, box.channels), dtype=np.uint8)
            out[:, :, :colour] = to_pixels(recon, box.height, box.width, colour)
            if alpha is not None:
                out[:, :, -1] = alpha
            yield out

    def _pass_bits(
        self, chunk: bytes, coding: int, shape: tuple[int, int, int], history: list[np.ndarray], t: int
    ) -> np.ndarray:
        """Pass ``t``'s bits (C, h, w) int8 ±1; ``history`` holds the (up to) two passes before."""
        if coding == payload.RAW:
            flat = np.unpackbits(np.frombuffer(chunk, np.uint8))
            count = math.prod(shape)
            if flat[count:].any():
                raise FormatError(f"pass {t + 1}: padding bits after the codes are not zero")
            return np.where(flat[:count].reshape(shape) > 0, 1, -1).astype(np.int8)
        assert self.entropy is not None
        prev1 = history[-1] if history else None
        prev2 = history[-2] if len(history) > 1 else None
        return self.entropy.decode(chunk, shape, prev1, prev2, t)
