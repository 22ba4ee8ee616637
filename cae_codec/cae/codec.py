"""The CAE + PCA + quantization + JPEG2000 pipeline (codec id ``cae-pca-j2k``).

encode: uint8 image -> YCbCr [0,1] -> edge-pad to 128x128 tiles -> CAE encoder (tiles in
batches) -> latent planes (M, H/s, W/s) -> PCA rotation (stored with the weights) ->
uniform quantization -> lossless JPEG2000 of the component mosaic -> container (version 2;
the payload: cae_codec.cae.payload). decode inverts each step; tiles are decoded
independently, exactly as they were trained.

Both classes implement the codec contract (cae_codec.contract): the rate knob is the
quantization step, searched on a log scale.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from cae_codec import container, contract, registry, zoo
from cae_codec.cae import payload
from cae_codec.cae.family import ModelFamily
from cae_codec.cae.refine import refine_latent
from cae_codec.container import ALPHA, ICC, LATENT, Box, v2
from cae_codec.contract import CodecInfo
from cae_codec.errors import CaecError, FormatError, ModelError
from cae_codec.modelfiles import check_weights_hash
from cae_codec.ratecontrol import Knob
from cae_codec.stages import j2k, pca, quant
from cae_codec.stages.color import rgb_to_ycbcr, ycbcr_to_rgb
from cae_codec.stages.tiling import TILE, padded_size, tile_origins
from cae_codec.weights import Model, load_model

CODEC_ID = "cae-pca-j2k"
BATCH_TILES = 16
# the rate control's axis: the quantization step, coarse steps giving small files
STEP_KNOB = Knob(
    "quantization step",
    quant.STEP_MIN,
    quant.STEP_MAX,
    rate_increases=False,
    log=True,
    steps=12,
    # caec's rate control is this very search: a point's encode time counts all of it
    charge_whole_search=True,
)


@dataclass
class Analysis:
    """What the encoder computes once per image; quantizing and packing reuse it per rate."""

    z: np.ndarray  # (M, h, w) float32 PCA components, descending variance
    height: int
    width: int
    channels: int
    padded: tuple[int, int]
    alpha_chunk: bytes | None
    icc_profile: bytes | None = None  # carried into every file packed from it (chunk iccp)


def _edge_tile(img: np.ndarray, y: int, x: int, colour: int) -> np.ndarray:
    """(colour, TILE, TILE) view of the tile at (y, x), edge-replicated past the image border.

    Cut from the image itself so that encoding never holds a padded copy of the whole image.
    """
    tile = img[y : y + TILE, x : x + TILE, :colour]
    th, tw = tile.shape[:2]
    if th < TILE or tw < TILE:
        tile = np.pad(tile, ((0, TILE - th), (0, TILE - tw), (0, 0)), mode="edge")
    return tile.transpose(2, 0, 1)


def _device_context(device: torch.device) -> None:
    if device.type == "cuda":
        # TF32 would change the encoder's output between GPU generations; full fp32 keeps
        # the integers as close to a CPU encode as the hardware allows
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False


def model_number(model: Model) -> int:
    """The zoo's number of ``model`` for the file header, 0 when the zoo does not ship these
    very weights (a model of the user's is found by its hash)."""
    shipped = zoo.catalogue().models.get(model.name)
    return shipped.number if shipped is not None and shipped.weights_hash == model.weights_hash else 0


class CaePcaJ2kCodec:
    codec_id = CODEC_ID
    info: ClassVar[CodecInfo] = registry.get(CODEC_ID)
    knob: ClassVar[Knob] = STEP_KNOB
    # wavelet levels for the latent mosaic; an attribute so experiments can vary it
    latent_levels = j2k.LATENT_LEVELS
    deadzone = quant.DEADZONE

    @property
    def name(self) -> str:
        return self.model.name

    def __init__(self, model: Model, device: torch.device, batch_tiles: int = BATCH_TILES, refine: int = 0) -> None:
        self.model = model
        self.device = device
        self.batch_tiles = batch_tiles
        self.refine = refine  # encode --refine: gradient steps on each file's latent (finish)
        self.number = model_number(model)
        # Module.to moves in place and loaded models are cached and shared: a codec on another
        # device gets its own copy, or a CPU codec would pull a GPU codec's weights back
        net = model.network if device.type == "cpu" else copy.deepcopy(model.network)
        # channels_last lets oneDNN / cuDNN pick their fastest convolutions (~25% on CPU)
        self.net = net.to(device, memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.mean = model.pca_mean.to(device)
        self.basis = model.pca_basis.to(device)
        _device_context(device)

    # ---------------------------------------------------------------- encode
    @torch.inference_mode()
    def analyse(self, img: np.ndarray, icc_profile: bytes | None = None) -> Analysis:
        """The image through the encoder; ``icc_profile`` (the source's colour profile, if any)
        goes into every file packed from the result."""
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] not in (1, 2, 3, 4):
            raise CaecError(f"expected a uint8 (H, W, 1..4) image, got {img.dtype} {img.shape}")
        h, w, c = img.shape
        if h == 0 or w == 0:
            raise CaecError("image has no pixels")
        icc = bytes(icc_profile) if icc_profile else None
        if icc is not None and (problem := container.icc_profile_problem(icc, c)):
            raise CaecError(problem)
        ph, pw = padded_size(h, w)
        colour = 3 if c >= 3 else 1
        s = self.model.stride
        m = self.model.latent_channels
        z = np.empty((m, ph // s, pw // s), dtype=np.float32)
        origins = tile_origins(ph, pw)
        for i in range(0, len(origins), self.batch_tiles):
            batch = origins[i : i + self.batch_tiles]
            tiles = np.stack([_edge_tile(img, y, x, colour) for y, x in batch])
            x_t = torch.from_numpy(tiles).to(self.device).float() / 255.0
            if colour == 3:
                x_t = rgb_to_ycbcr(x_t)
            else:
                x_t = torch.cat([x_t, torch.full_like(x_t, 0.5), torch.full_like(x_t, 0.5)], dim=1)
            y_t = self.net.encode(x_t).float()  # type: ignore[operator]
            z_t = pca.rotate(y_t, self.mean, self.basis)
            z_np = z_t.cpu().numpy()
            for (ty, tx), zt in zip(batch, z_np, strict=True):
                z[:, ty // s : (ty + TILE) // s, tx // s : (tx + TILE) // s] = zt
        alpha = j2k.encode_plane(np.ascontiguousarray(img[:, :, -1]), j2k.ALPHA_LEVELS) if c in (2, 4) else None
        return Analysis(z=z, height=h, width=w, channels=c, padded=(ph, pw), alpha_chunk=alpha, icc_profile=icc)

    def pack(self, a: Analysis, step: float, quality: int = 0) -> bytes:
        step = float(np.float32(step))  # the header stores float32: quantize with exactly that value
        m_all, ph_l, pw_l = a.z.shape
        k = stored_components(a.z, step, self.deadzone)
        cols = j2k.mosaic_columns(k, ph_l, pw_l)
        params = payload.CaeParams(TILE, step, quality, m_all, k, cols, a.padded[1], a.padded[0])
        chunks: list[tuple[bytes, bytes]] = [(v2.PARAMS, params.pack())]
        # in every file the --bpp search tries, so the profile's bytes count against the budget
        if a.icc_profile is not None:
            chunks.append((ICC, a.icc_profile))
        if k:
            # quantized plane by plane straight into its mosaic cell: no float temporaries the
            # size of the latent, and no second int16 copy of it
            mosaic = j2k.build_mosaic(
                k, cols, ph_l, pw_l, lambda m: self.quantize_plane(a.z[m], step), np.dtype(np.int16)
            )
            chunks.append((LATENT, j2k.encode_plane(mosaic, self.latent_levels)))
        if a.alpha_chunk is not None:
            chunks.append((ALPHA, a.alpha_chunk))
        header = v2.HeaderV2(
            codec=CODEC_ID,
            width=a.width,
            height=a.height,
            channels=a.channels,
            weights_hash=self.model.weights_hash[: v2.HASH_BYTES],
            model_number=self.number,
        )
        return v2.pack(header, chunks)

    def knob_for_quality(self, quality: int) -> float:
        return quant.step_for_quality(quality)

    def finish(self, img: np.ndarray, a: Analysis, data: bytes, budget: int | None) -> bytes:
        """With ``refine``: the file made again from a latent refined at its step."""
        if not self.refine:
            return data
        return refined_file(self, a, img, data, budget, self.refine)

    def quantize_plane(self, plane: np.ndarray, step: float) -> np.ndarray:
        """One component's integers; a method so experiments can vary the quantizer
        (research/headroom.py --checks isolated)."""
        return quant.quantize(plane, step, self.deadzone)

    def encode(
        self,
        img: np.ndarray,
        quality: int | None = None,
        bpp: float | None = None,
        refine: int = 0,
        icc_profile: bytes | None = None,
        size: int | None = None,
    ) -> bytes:
        return _encode_refined(self, img, quality, bpp, size, refine, icc_profile)

    def packer(self, img: np.ndarray) -> Callable[[float], bytes]:
        """Runs the encoder once; the result packs the image at any quantization step."""
        a = self.analyse(img)
        return lambda step: self.pack(a, step)

    # ---------------------------------------------------------------- decode
    def check_model(self, box: Box) -> payload.CaeParams:
        """The file's parameters, once the file is known to be of these weights and layout."""
        check_weights_hash(
            box.model,
            box.weights_hash,
            self.model.name,
            self.model.weights_hash[: len(box.weights_hash)],
        )
        p = payload.check(box, self.model.stride, self.model.latent_channels)
        if p.tile != TILE:
            raise FormatError(f"tiles of {p.tile} pixels; this model codes tiles of {TILE}")
        return p

    @torch.inference_mode()
    def decode(self, box: Box, progress: Callable[[int], None] | None = None) -> np.ndarray:
        p = self.check_model(box)
        s = self.model.stride
        q = payload.read_components(box, p, p.padded_height // s, p.padded_width // s)
        k = p.components
        colour = 3 if box.channels >= 3 else 1
        # the output is filled in place, tiles cropped at the border, alpha in its own channel:
        # no padded, concatenated or contiguous copy of the whole image is ever made
        out = np.empty((box.height, box.width, box.channels), dtype=np.uint8)
        if box.channels in (2, 4):
            out[:, :, -1] = j2k.decode_plane(
                box.first(ALPHA) or b"", (box.height, box.width), np.dtype(np.uint8), "alpha"
            )
        basis_k = self.basis[:, :k]
        step = np.float32(p.step)
        origins = tile_origins(p.padded_height, p.padded_width)
        t = TILE // s
        # Without a latent (K = 0) every tile's decoder input is the PCA mean, so every batch of
        # a size is the same tensor: it is decoded once per batch size and its tiles reused,
        # position for position, which gives exactly the pixels decoding each batch would (a
        # huge header-only file: seconds instead of minutes).
        decoded_by_size: dict[int, np.ndarray] = {}
        for i in range(0, len(origins), self.batch_tiles):
            batch = origins[i : i + self.batch_tiles]
            tiles = decoded_by_size.get(len(batch)) if k == 0 else None
            if tiles is None:
                zq = np.stack([q[:, y // s : y // s + t, x // s : x // s + t] for y, x in batch])
                tiles = self._synthesize(zq, basis_k, float(step), colour)
                if k == 0:
                    decoded_by_size[len(batch)] = tiles
            for (ty, tx), tile in zip(batch, tiles, strict=True):
                region = out[ty : ty + TILE, tx : tx + TILE, :colour]
                region[...] = tile[: region.shape[0], : region.shape[1]]
            if progress:
                progress(len(batch))
        return out

    def _synthesize(self, zq: np.ndarray, basis_k: torch.Tensor, step: float, colour: int) -> np.ndarray:
        """uint8 (B, TILE, TILE, colour) tiles from their quantized components (B, K, t, t)."""
        z_t = torch.from_numpy(quant.dequantize(zq, step)).to(self.device)
        y_t = pca.unrotate(z_t, self.mean, basis_k)
        x_t = self.net.decode(y_t, step).float()  # type: ignore[operator]
        x_t = ycbcr_to_rgb(x_t) if colour == 3 else x_t[:, :1]
        return (x_t.clamp(0, 1) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def stored_components(z: np.ndarray, step: float, deadzone: float) -> int:
    """How many leading components of ``z`` (M, h, w) a file stores at ``step``: trailing
    components that quantize to all zeros are left out."""
    # quantize() is monotonic in |z|, so a component has a non-zero integer exactly when its
    # largest magnitude quantizes to one; plane by plane, no temporary the size of the latent
    peaks = np.array([np.abs(plane).max() for plane in z], dtype=np.float32)
    nonzero = np.flatnonzero(quant.quantize(peaks, step, deadzone))
    return int(nonzero[-1]) + 1 if nonzero.size else 0


def _encode_refined(
    codec: CaePcaJ2kCodec | FamilyCodec,
    img: np.ndarray,
    quality: int | None,
    bpp: float | None,
    size: int | None,
    refine: int,
    icc_profile: bytes | None,
) -> bytes:
    """contract.encode, with ``refine`` gradient steps on the chosen file's latent."""
    saved = codec.refine
    codec.refine = refine
    try:
        return contract.encode(codec, img, quality=quality, bpp=bpp, size=size, icc_profile=icc_profile)
    finally:
        codec.refine = saved


def refined_file(
    member: CaePcaJ2kCodec, a: Analysis, img: np.ndarray, data: bytes, budget: int | None, iterations: int
) -> bytes:
    """``data`` (a file ``member`` made from ``img``, analysed as ``a``) made again from a
    latent refined at its step (cae_codec.cae.refine). With a ``budget`` in bytes the step is
    searched again within it, since refinement moves the rate a little; else the step stays.
    ``a`` is refined in place (no second copy of a huge latent): callers hand it over."""
    p = payload.params(container.parse(data))
    r = refine_latent(member, a, img, p.step, iterations, in_place=True)
    if budget is None:
        return member.pack(r, p.step, p.quality)
    return contract.within_budget(lambda step: member.pack(r, step), member.knob, budget, a.height, a.width)


def member_of(codec: Codec, box: Box) -> CaePcaJ2kCodec:
    """The single-model codec behind a file ``codec`` made: itself, or the family member
    that made it."""
    if not isinstance(codec, FamilyCodec):
        return codec
    return codec.members[codec.member_name(box)]


class FamilyAnalysis:
    """An image as each member of a family (or any single-model codec) sees it; a member's
    encoder runs on first use only."""

    def __init__(self, img: np.ndarray, icc_profile: bytes | None = None) -> None:
        self.image = img
        self.icc_profile = icc_profile
        self._by_member: dict[str, Analysis] = {}
        self.height, self.width = img.shape[:2]

    def of(self, member: CaePcaJ2kCodec) -> Analysis:
        if member.name not in self._by_member:
            self._by_member[member.name] = member.analyse(self.image, self.icc_profile)
        return self._by_member[member.name]


class FamilyMembers(Mapping[str, CaePcaJ2kCodec]):
    """A family's member codecs by model name, in the family's order; a member's weights are
    loaded the first time it is looked up. Listing the names loads nothing, so a quality or a
    file that one member serves needs that member alone (a missing member that no file or
    quality asks for is no error), and a run pays for the weights it uses only."""

    def __init__(self, family: ModelFamily, load: Callable[[str], CaePcaJ2kCodec]) -> None:
        self.family = family
        self._load = load
        self._names = [m.model for m in family.members]
        self._loaded: dict[str, CaePcaJ2kCodec] = {}

    def __getitem__(self, name: str) -> CaePcaJ2kCodec:
        codec = self._loaded.get(name)
        if codec is None:
            if name not in self._names:
                raise KeyError(name)
            try:
                codec = self._load(name)
            except ModelError as e:
                raise ModelError(f"model family {self.family.name!r}, member {name!r}: {e}") from None
            self._loaded[name] = codec
        return codec

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:  # Mapping's would load the member to answer
        return name in self._names


class FamilyCodec:
    """A model family (cae_codec.cae.family) behind the codec's interface.

    A nominal step (from --quality, or tried by the --bpp bisection) picks the member and is
    scaled by its gain; the member writes an ordinary file under its own name and step, so
    decoding needs the member only. ``members`` loads each member on first use (FamilyMembers).
    """

    codec_id = CODEC_ID
    info: ClassVar[CodecInfo] = registry.get(CODEC_ID)
    knob: ClassVar[Knob] = STEP_KNOB

    def __init__(
        self,
        family: ModelFamily,
        device: torch.device,
        load: Callable[[str], CaePcaJ2kCodec] | None = None,
        refine: int = 0,
    ) -> None:
        """``load`` makes a member's codec from its model name; by default from the weights
        file the family names (zoo.member_path), on ``device``."""
        self.family = family
        self.device = device
        self.refine = refine
        self.members = FamilyMembers(family, load or self._load_member)

    def _load_member(self, name: str) -> CaePcaJ2kCodec:
        return CaePcaJ2kCodec(load_model(zoo.member_path(self.family, name)), self.device)

    def member_name(self, box: Box) -> str:
        """The member that made ``box``: the one it names (version 1), or whose weights its
        hash begins (version 2), read from the weights' headers without loading them."""
        name = box.model or zoo.member_by_hash(self.family, box.weights_hash)
        if name is None or name not in self.members:
            made_by = f"model {name!r}" if name else f"weights {box.weights_hash.hex()[:12]}"
            raise ModelError(
                f"file was encoded with {made_by}, which is not a member of "
                f"family {self.family.name!r} ({', '.join(self.members)})"
            )
        return name

    @property
    def name(self) -> str:
        return self.family.name

    def analyse(self, img: np.ndarray, icc_profile: bytes | None = None) -> FamilyAnalysis:
        return FamilyAnalysis(img, icc_profile)

    def at(self, step: float) -> tuple[CaePcaJ2kCodec, float]:
        """The member's codec that serves the nominal ``step``, and the step it quantizes with."""
        member = self.family.member_for(step)
        return self.members[member.model], step * member.step_gain

    def pack(self, a: FamilyAnalysis, step: float, quality: int = 0) -> bytes:
        member, member_step = self.at(step)
        return member.pack(a.of(member), member_step, quality)

    def packer(self, img: np.ndarray) -> Callable[[float], bytes]:
        """Runs each member's encoder when first needed; the result packs at any nominal step."""
        a = self.analyse(img)
        return lambda step: self.pack(a, step)

    def knob_for_quality(self, quality: int) -> float:
        return quant.step_for_quality(quality)

    def finish(self, img: np.ndarray, a: FamilyAnalysis, data: bytes, budget: int | None) -> bytes:
        if not self.refine:
            return data
        member = member_of(self, container.parse(data))
        return refined_file(member, a.of(member), img, data, budget, self.refine)

    def encode(
        self,
        img: np.ndarray,
        quality: int | None = None,
        bpp: float | None = None,
        refine: int = 0,
        icc_profile: bytes | None = None,
        size: int | None = None,
    ) -> bytes:
        return _encode_refined(self, img, quality, bpp, size, refine, icc_profile)

    def decode(self, box: Box, progress: Callable[[int], None] | None = None) -> np.ndarray:
        return self.members[self.member_name(box)].decode(box, progress)


Codec = CaePcaJ2kCodec | FamilyCodec


def plain_codecs(codec: Codec) -> list[CaePcaJ2kCodec]:
    """The single-model codecs behind ``codec``: itself, or a family's members in order (all
    of them loaded)."""
    return list(codec.members.values()) if isinstance(codec, FamilyCodec) else [codec]
