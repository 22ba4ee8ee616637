"""The ``comcnn`` codec: image -> ComCNN -> compact image (half size, 8 bits) -> the inner
codec (JPEG by default; JPEG 2000, WebP or AVIF for a model trained with it), the standard
codestream stored as is in its chunk (cae_codec.comcnn.payload); decoding: inner decode ->
bicubic x2 -> RecCNN -> cropped to the image.

The rate knob is the inner codec's own (JPEG, WebP and AVIF quality; JPEG 2000's target PSNR);
--quality 1..100 maps onto it (cae_codec.comcnn.frames), --bpp / --size search it through the
shared rate control. The inner codec is the model's: each RecCNN learned one codec's errors, so
a model is made for one inner codec (`caec train comcnn --inner`) and refuses another's files.
ComCNN runs once per image (``analyse``), every knob value reuses its compact image.

- Odd sides are padded by repeating the last row or column up to even, and the decoder crops.
- Grey images go through the colour networks as three equal planes; the compact image stored is
  its luma, a grey JPEG, and the decoded image is the luma of RecCNN's output.
- Alpha is stored losslessly in its own chunk (lossless JPEG 2000, as the CAE codec does).
- Both networks run in tiles with margins wider than their receptive fields, so memory stays
  bounded on any image size and each tile's centre is what a whole-image pass computes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch.nn.utils.fusion import fuse_conv_bn_eval

from cae_codec import contract, registry
from cae_codec.comcnn import frames, inner, payload
from cae_codec.comcnn.network import ARCHITECTURE, ComRecPair, RecCNN, upscale
from cae_codec.container import ALPHA, ICC, Box, v2
from cae_codec.contract import CodecInfo, Progress
from cae_codec.errors import CaecError, FormatError, ModelError
from cae_codec.modelfiles import check_weights_hash
from cae_codec.ratecontrol import Knob
from cae_codec.stages import j2k
from cae_codec.weights import Model

TILE = payload.TILE  # compact pixels a side per network pass
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # JPEG's (BT.601) luma of RGB


def model_number(model: Model) -> int:
    """The zoo's number of these very weights for the header, 0 when the zoo does not ship them."""
    from cae_codec import zoo

    shipped = zoo.catalogue().models.get(model.name)
    return shipped.number if shipped is not None and shipped.weights_hash == model.weights_hash else 0


@dataclass
class Analysis:
    compact: np.ndarray  # (h/2, w/2, 1 or 3) uint8: what JPEG codes
    height: int
    width: int
    channels: int
    alpha_chunk: bytes | None
    icc_profile: bytes | None


def _tiles(height: int, width: int) -> list[tuple[int, int, int, int]]:
    """(y0, y1, x0, x1) compact-image tiles covering height x width."""
    return [
        (y, min(y + TILE, height), x, min(x + TILE, width))
        for y in range(0, height, TILE)
        for x in range(0, width, TILE)
    ]


def _as_luma(rgb: np.ndarray) -> np.ndarray:
    """(h, w, 3) float RGB in [0, 1] -> (h, w, 1) uint8 luma."""
    y = rgb @ LUMA
    return np.clip(np.round(y * 255), 0, 255).astype(np.uint8)[:, :, None]


def fused_rec(rec: RecCNN) -> torch.nn.Module:
    """RecCNN for inference: each batch normalization folded into the convolution before it (the
    same function with one pass over the activations fewer per layer: decode ~15% faster)."""
    layers: list[torch.nn.Module] = []
    body = list(rec.body)
    i = 0
    while i < len(body):
        layer = body[i]
        if isinstance(layer, torch.nn.Conv2d) and i + 1 < len(body) and isinstance(body[i + 1], torch.nn.BatchNorm2d):
            layers.append(fuse_conv_bn_eval(layer, body[i + 1]))  # type: ignore[arg-type]
            i += 2
        else:
            layers.append(layer)
            i += 1
    fused = copy.deepcopy(rec)
    fused.body = torch.nn.Sequential(*layers)
    return fused.eval()


class ComCnnCodec:
    info: ClassVar[CodecInfo] = registry.get(payload.CODEC)
    inner: ClassVar[frames.InnerInfo] = frames.INNER_CODECS["jpeg"]
    knob: ClassVar[Knob] = Knob("JPEG quality", 1, 100, integer=True)

    def __init__(self, model: Model, device: torch.device) -> None:
        if model.architecture != ARCHITECTURE:
            raise ModelError(f"weights {model.name!r} are a {model.architecture} network, not a comcnn model")
        if payload.model_inner(model.config) != self.inner.name:
            raise ModelError(f"weights {model.name!r} are for inner codec {payload.model_inner(model.config)}")
        self.model = model
        self.net: ComRecPair = model.network  # type: ignore[assignment]
        self.net.eval()
        self.device = device
        self.net.to(device)
        self.rec = fused_rec(self.net.rec).to(device)
        self.number = model_number(model)
        # wider than RecCNN's receptive field plus the bicubic kernel's reach, in compact pixels
        self.rec_margin = (self.net.config.rec_layers + 4) // 2 + 2

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def label(self) -> str:
        """The evaluation's name of this codec with its inner codec (tables and plots)."""
        return f"ComCNN+{self.inner.label.replace(' ', '')}+RecCNN"

    # -- encoding

    @torch.inference_mode()
    def compact_image(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 with H, W even -> ComCNN's (H/2, W/2, 3) float image in [0, 1]."""
        h2, w2 = rgb.shape[0] // 2, rgb.shape[1] // 2
        out = np.empty((h2, w2, 3), dtype=np.float32)
        m = payload.COM_MARGIN
        for y0, y1, x0, x1 in _tiles(h2, w2):
            ya, yb, xa, xb = max(y0 - m, 0), min(y1 + m, h2), max(x0 - m, 0), min(x1 + m, w2)
            crop = rgb[2 * ya : 2 * yb, 2 * xa : 2 * xb]
            x = torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1))).float().div(255)[None]
            c = self.net.compact(x.to(self.device))[0].clamp(0, 1).permute(1, 2, 0).cpu().numpy()
            out[y0:y1, x0:x1] = c[y0 - ya : y1 - ya, x0 - xa : x1 - xa]
        return out

    def analyse(self, image: np.ndarray, icc_profile: bytes | None = None) -> Analysis:
        icc = contract.check_photo(image, icc_profile)
        h, w, c = image.shape
        rgb = image[:, :, :1].repeat(3, axis=2) if c in (1, 2) else image[:, :, :3]
        rgb = np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        compact = self.compact_image(rgb)
        stored = _as_luma(compact) if c in (1, 2) else np.clip(np.round(compact * 255), 0, 255).astype(np.uint8)
        alpha = j2k.encode_plane(np.ascontiguousarray(image[:, :, -1]), j2k.ALPHA_LEVELS) if c in (2, 4) else None
        return Analysis(stored, h, w, c, alpha, icc)

    def file(self, a: Analysis, codestream: bytes) -> bytes:
        header = v2.HeaderV2(
            payload.CODEC,
            a.width,
            a.height,
            a.channels,
            weights_hash=self.model.weights_hash[: v2.HASH_BYTES],
            model_number=self.number,
        )
        chunks: list[tuple[bytes, bytes]] = []
        if a.icc_profile is not None:
            chunks.append((ICC, a.icc_profile))
        chunks.append((self.inner.chunk, codestream))
        if a.alpha_chunk is not None:
            chunks.append((ALPHA, a.alpha_chunk))
        return v2.pack(header, chunks)

    def pack(self, analysis: Analysis, knob: float, quality: int = 0) -> bytes:
        return self.file(analysis, inner.encode(analysis.compact, knob, self.inner.name))

    def knob_for_quality(self, quality: int) -> float:
        return self.inner.knob_for_quality(quality)

    def finish(self, image: np.ndarray, analysis: Any, data: bytes, budget: int | None) -> bytes:
        return data

    # -- decoding

    def decoded_compact(self, box: Box) -> np.ndarray:
        """The inner chunk decoded: (h/2, w/2, 1 or 3) uint8, checked against the header."""
        found, _ = payload.check(box)
        # the inner codec first: "trained for another codec" says more than "other weights"
        payload.check_model(found, self.name, self.model.config)
        check_weights_hash(box.model, box.weights_hash, self.name, self.model.weights_hash[: len(box.weights_hash)])
        w2, h2 = payload.compact_size(box.width, box.height)
        cc = payload.compact_channels(box.channels)
        chunk = found.chunk.decode()
        try:
            compact = inner.decode(box.first(found.chunk) or b"", cc, found.name)
        except CaecError as e:
            raise FormatError(f"corrupt {chunk} chunk: {e}") from None
        if compact.shape != (h2, w2, cc):
            raise FormatError(f"the {chunk} chunk decodes to {compact.shape}, not the compact image's {(h2, w2, cc)}")
        return compact

    @torch.inference_mode()
    def reconstruct(self, compact: np.ndarray, progress: Progress | None = None) -> np.ndarray:
        """(h, w, 1 or 3) uint8 compact image -> (2h, 2w, 3) float RGB in [0, 1]."""
        h2, w2 = compact.shape[:2]
        rgb = compact.repeat(3, axis=2) if compact.shape[2] == 1 else compact
        out = np.empty((2 * h2, 2 * w2, 3), dtype=np.float32)
        m = self.rec_margin
        for i, (y0, y1, x0, x1) in enumerate(_tiles(h2, w2)):
            ya, yb, xa, xb = max(y0 - m, 0), min(y1 + m, h2), max(x0 - m, 0), min(x1 + m, w2)
            x = torch.from_numpy(np.ascontiguousarray(rgb[ya:yb, xa:xb].transpose(2, 0, 1))).float().div(255)[None]
            r = self.rec(upscale(x.to(self.device)))[0].permute(1, 2, 0).cpu().numpy()
            oy, ox = 2 * (y0 - ya), 2 * (x0 - xa)
            out[2 * y0 : 2 * y1, 2 * x0 : 2 * x1] = r[oy : oy + 2 * (y1 - y0), ox : ox + 2 * (x1 - x0)]
            if progress is not None:
                progress(i + 1)
        return out

    def decode(self, box: Box, progress: Progress | None = None) -> np.ndarray:
        compact = self.decoded_compact(box)
        rec = self.reconstruct(compact, progress)[: box.height, : box.width]
        out = np.empty((box.height, box.width, box.channels), dtype=np.uint8)
        if box.channels in (1, 2):
            out[:, :, :1] = _as_luma(np.clip(rec, 0, 1))
        else:
            out[:, :, :3] = np.clip(np.round(rec * 255), 0, 255).astype(np.uint8)
        if box.channels in (2, 4):
            out[:, :, -1] = j2k.decode_plane(
                box.first(ALPHA) or b"", (box.height, box.width), np.dtype(np.uint8), "alpha"
            )
        return out


def _variant(name: str) -> type[ComCnnCodec]:
    """ComCnnCodec with inner codec ``name``: its rate knob is that codec's (a class attribute,
    as the codec contract has it)."""
    if name == "jpeg":
        return ComCnnCodec
    info = frames.INNER_CODECS[name]
    knob = inner.codec(name).knob
    return type(f"ComCnn{info.label.replace(' ', '')}Codec", (ComCnnCodec,), {"inner": info, "knob": knob})


CODEC_CLASSES = {name: _variant(name) for name in frames.INNER_CODECS}


def for_model(model: Model, device: torch.device) -> ComCnnCodec:
    """The codec of a comcnn model, with the inner codec it was trained for."""
    name = payload.model_inner(model.config)
    if name not in CODEC_CLASSES:
        raise ModelError(f"weights {model.name!r} name an unknown inner codec {name!r}")
    return CODEC_CLASSES[name](model, device)
