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

import bisect
import copy
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from cae_codec import container, contract, registry, runtime, zoo
from cae_codec.cae import payload
from cae_codec.cae.config import ENCODER_PART, CAEConfig, decoder_part
from cae_codec.cae.family import ModelFamily
from cae_codec.container import ALPHA, ICC, LATENT, Box, v2
from cae_codec.contract import CodecInfo
from cae_codec.errors import FormatError, ModelError
from cae_codec.modelfiles import check_weights_hash, file_key, read_checked, read_model_info
from cae_codec.ratecontrol import Knob
from cae_codec.stages import j2k, pca, quant
from cae_codec.stages.color import rgb_to_ycbcr, ycbcr_to_rgb
from cae_codec.stages.tiling import TILE, padded_size, tile_origins

if TYPE_CHECKING:
    import torch

    from cae_codec.weights import Model

# torch is imported only where the network runs in it (a GPU, --refine, weights without
# inference graphs): on the CPU the graphs run in ONNX Runtime (cae_codec.runtime), and a
# process that encodes or decodes one small image should not spend seconds importing torch.

CODEC_ID = "cae-pca-j2k"
# tiles a network call takes; an image of at most ONE_CALL_TILES tiles goes in one call: a Kodak
# image's 24 ran 1.16x faster so than in calls of 16 and 8 (ONNX Runtime, 2 threads), while
# calls of 32 on a 100-megapixel photo took its encode's peak memory from 1107 to 1221 MiB
BATCH_TILES = 16
ONE_CALL_TILES = 32
PCA_MEAN, PCA_BASIS = "pca.mean", "pca.basis"  # cae_codec.weights' names of the CAE's PCA tensors
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


@dataclass(frozen=True)
class ModelFacts:
    """What the codec needs of its weights besides the network, read without torch."""

    name: str
    path: Path | None  # None: a network loaded by the caller
    weights_hash: bytes
    config: CAEConfig
    pca_mean: np.ndarray  # (M,) float32
    pca_basis: np.ndarray  # (M, M) float32; column k is the k-th principal direction

    @property
    def stride(self) -> int:
        return self.config.stride

    @property
    def latent_channels(self) -> int:
        return int(self.pca_mean.size)

    def parts(self) -> list[str]:
        """The inference graphs (cae_codec.runtime) that run this model."""
        return [ENCODER_PART, *(decoder_part(b) for b in range(1 + len(self.config.decoder_bands)))]

    def band_of(self, step: float) -> int:
        return bisect.bisect_right(self.config.decoder_bands, step)

    @classmethod
    def of_file(cls, path: Path) -> ModelFacts:
        """From the weights file, its tensors checked against the hash it records; kept for the
        process, as its graphs are (cae_codec.runtime): reading and hashing the whole file took
        ~0.02 s of every ``cae_codec.encode`` and ``decode`` call (docs/benchmark.md)."""
        key = file_key(path)
        facts = _FACTS.get(key)
        if facts is None:
            checked = read_checked(path, (PCA_MEAN, PCA_BASIS))
            facts = _FACTS[key] = cls(
                name=path.name.removesuffix(".safetensors"),
                path=path,
                weights_hash=checked.weights_hash,
                config=_cae_config(path, checked.info.architecture, checked.info.config),
                pca_mean=_read_only(checked.tensors[PCA_MEAN].astype(np.float32)),
                pca_basis=_read_only(checked.tensors[PCA_BASIS].astype(np.float32)),
            )
        return facts

    @classmethod
    def of_model(cls, model: Model) -> ModelFacts:
        return cls(
            name=model.name,
            path=None,
            weights_hash=model.weights_hash,
            config=_cae_config(Path(model.name), model.architecture, model.config),
            pca_mean=model.pca_mean.detach().cpu().float().numpy(),
            pca_basis=model.pca_basis.detach().cpu().float().numpy(),
        )


# ModelFacts.of_file's, by (resolved path, mtime, size): shared by every codec of the process
_FACTS: dict[tuple[str, int, int], ModelFacts] = {}


def _read_only(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False  # shared by every codec of the process that loads the file
    return a


def _cae_config(where: Path, architecture: str, config: dict[str, Any]) -> CAEConfig:
    if architecture != "cae-gdn":
        raise ModelError(f"weights {where} are a {architecture} network, not a model of the CAE + PCA codec")
    try:
        return CAEConfig(**config)
    except (TypeError, ValueError) as e:
        raise ModelError(f"weights {where} are not a caec model: {e}") from None


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
        import torch

        # TF32 would change the encoder's output between GPU generations; full fp32 keeps
        # the integers as close to a CPU encode as the hardware allows
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False


def _has_graphs(path: Path) -> bool:
    """Whether the weights file ``path`` lies beside all its inference graphs."""
    try:
        config = _cae_config(path, (info := read_model_info(path)).architecture, info.config)
    except ModelError:
        return False  # not readable here: the torch loader says what is wrong with it
    bands = len(config.decoder_bands)
    return runtime.has_graphs(path, [ENCODER_PART, *(decoder_part(b) for b in range(1 + bands))])


def model_number(name: str, weights_hash: bytes) -> int:
    """The zoo's number of the model ``name`` for the file header, 0 when the zoo does not ship
    these very weights (a model of the user's is found by its hash)."""
    shipped = zoo.catalogue().models.get(name)
    return shipped.number if shipped is not None and shipped.weights_hash == weights_hash else 0


class CaePcaJ2kCodec:
    """One model of the codec. On the CPU its networks run as inference graphs in ONNX Runtime
    when the weights have them (cae_codec.runtime; the shipped models do), else, and on any
    other device, in torch; torch is imported only then, or when something asks for the
    network itself (``net``, ``model``: refinement, training tools)."""

    codec_id = CODEC_ID
    info: ClassVar[CodecInfo] = registry.get(CODEC_ID)
    knob: ClassVar[Knob] = STEP_KNOB
    # wavelet levels for the latent mosaic; an attribute so experiments can vary it
    latent_levels = j2k.LATENT_LEVELS
    deadzone = quant.DEADZONE

    @property
    def name(self) -> str:
        return self.facts.name

    def __init__(
        self,
        model: Model | str | os.PathLike[str],
        device: str | torch.device = "cpu",
        batch_tiles: int | None = None,
        refine: int = 0,
    ) -> None:
        """``model``: a loaded model (run in torch), or its weights file (run by its graphs
        where :func:`runtime.use_graphs` says so and it has them, else loaded into torch).
        ``batch_tiles``: tiles a network call takes (None: all of an image of at most
        ONE_CALL_TILES tiles, else BATCH_TILES)."""
        self.device_name = str(device)
        self.batch_tiles = batch_tiles
        self.refine = refine  # encode --refine: gradient steps on each file's latent (finish)
        self._model: Model | None = None
        self._torch: tuple[Any, Any, Any] | None = None  # the network, PCA mean and basis on the device
        self._graphs: dict[str, runtime.Graph] | None = None  # None: the network runs in torch
        if isinstance(model, (str, os.PathLike)):
            path = Path(model)
            if runtime.use_graphs(self.device_name) and _has_graphs(path):
                self.facts = ModelFacts.of_file(path)
                self._graphs = {}
            elif runtime.choice() == "onnx":
                raise ModelError(
                    f"weights {path} have no inference graphs, which ${runtime.RUNTIME_ENV}=onnx asks for: "
                    f"export them (python -m cae_codec.nn.graphs {path})"
                )
            else:
                from cae_codec.weights import load_model

                model = load_model(path)
        if self._graphs is None:
            assert not isinstance(model, (str, os.PathLike))
            self._model = model
            self.facts = ModelFacts.of_model(model)
            self._torch_state()
        self.number = model_number(self.facts.name, self.facts.weights_hash)

    @property
    def backend(self) -> str:
        """What runs the network: 'onnx' (the inference graphs) or 'torch'."""
        return "torch" if self._graphs is None else "onnx"

    # ---------------------------------------------------------------- torch, when asked for
    @property
    def model(self) -> Model:
        """The loaded model (network in torch); loaded on first use when the graphs run."""
        if self._model is None:
            from cae_codec.weights import load_model

            assert self.facts.path is not None
            self._model = load_model(self.facts.path)
        return self._model

    @property
    def device(self) -> torch.device:
        import torch

        return torch.device(self.device_name)

    def _torch_state(self) -> tuple[Any, Any, Any]:
        if self._torch is None:
            import torch

            device, model = self.device, self.model
            # Module.to moves in place and loaded models are cached and shared: a codec on another
            # device gets its own copy, or a CPU codec would pull a GPU codec's weights back
            net = model.network if device.type == "cpu" else copy.deepcopy(model.network)
            # channels_last lets oneDNN / cuDNN pick their fastest convolutions (~25% on CPU)
            net = net.to(device, memory_format=torch.channels_last)  # type: ignore[call-overload]
            self._torch = (net, model.pca_mean.to(device), model.pca_basis.to(device))
            _device_context(device)
        return self._torch

    @property
    def net(self) -> Any:
        """The network in torch, on the codec's device."""
        return self._torch_state()[0]

    @property
    def mean(self) -> torch.Tensor:
        return self._torch_state()[1]  # type: ignore[no-any-return]

    @property
    def basis(self) -> torch.Tensor:
        return self._torch_state()[2]  # type: ignore[no-any-return]

    def _graph(self, part: str) -> runtime.Graph:
        """An inference graph, loaded on first use: a decoder of a rate band no file asks for
        costs nothing."""
        assert self._graphs is not None and self.facts.path is not None
        graph = self._graphs.get(part)
        if graph is None:
            graph = runtime.load_graph(self.facts.path, part, self.facts.weights_hash)
            if graph is None:
                raise ModelError(f"weights {self.facts.path} lost their graph {part!r} while in use")
            self._graphs[part] = graph
        return graph

    # ---------------------------------------------------------------- encode
    def analyse(self, img: np.ndarray, icc_profile: bytes | None = None) -> Analysis:
        """The image through the encoder; ``icc_profile`` (the source's colour profile, if any)
        goes into every file packed from the result."""
        icc = contract.check_photo(img, icc_profile)
        h, w, c = img.shape
        ph, pw = padded_size(h, w)
        colour = 3 if c >= 3 else 1
        s = self.facts.stride
        m = self.facts.latent_channels
        z = np.empty((m, ph // s, pw // s), dtype=np.float32)
        origins = tile_origins(ph, pw)
        per_call = self._per_call(len(origins))
        for i in range(0, len(origins), per_call):
            batch = origins[i : i + per_call]
            tiles = np.stack([_edge_tile(img, y, x, colour) for y, x in batch])
            z_np = self._encode_tiles(tiles, colour)
            for (ty, tx), zt in zip(batch, z_np, strict=True):
                z[:, ty // s : (ty + TILE) // s, tx // s : (tx + TILE) // s] = zt
        alpha = j2k.encode_plane(np.ascontiguousarray(img[:, :, -1]), j2k.ALPHA_LEVELS) if c in (2, 4) else None
        return Analysis(z=z, height=h, width=w, channels=c, padded=(ph, pw), alpha_chunk=alpha, icc_profile=icc)

    def _per_call(self, tiles: int) -> int:
        """Tiles a network call takes for an image of ``tiles`` tiles."""
        if self.batch_tiles is not None:
            return self.batch_tiles
        return tiles if tiles <= ONE_CALL_TILES else BATCH_TILES

    def _encode_tiles(self, tiles: np.ndarray, colour: int) -> np.ndarray:
        """uint8 tiles (B, colour, TILE, TILE) -> their PCA components (B, M, TILE/s, TILE/s)."""
        if self._graphs is None:
            return self._encode_tiles_torch(tiles, colour)
        x = tiles.astype(np.float32)
        x /= np.float32(255.0)  # in place: the division of before, without a second copy
        # grey: the encoder's chroma planes are neutral
        x = rgb_to_ycbcr(x) if colour == 3 else np.concatenate([x, np.full_like(x, 0.5), np.full_like(x, 0.5)], 1)
        y = self._graph(ENCODER_PART)(x)
        return pca.rotate_np(y, self.facts.pca_mean, self.facts.pca_basis)

    def _encode_tiles_torch(self, tiles: np.ndarray, colour: int) -> np.ndarray:
        import torch

        net, mean, basis = self._torch_state()
        with torch.inference_mode():
            x_t = torch.from_numpy(tiles).to(self.device).float() / 255.0
            if colour == 3:
                x_t = rgb_to_ycbcr(x_t)
            else:
                x_t = torch.cat([x_t, torch.full_like(x_t, 0.5), torch.full_like(x_t, 0.5)], dim=1)
            y_t = net.encode(x_t).float()
            return pca.rotate(y_t, mean, basis).cpu().numpy()  # type: ignore[no-any-return]

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
            weights_hash=self.facts.weights_hash[: v2.HASH_BYTES],
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
            self.facts.name,
            self.facts.weights_hash[: len(box.weights_hash)],
        )
        p = payload.check(box, self.facts.stride, self.facts.latent_channels)
        if p.tile != TILE:
            raise FormatError(f"tiles of {p.tile} pixels; this model codes tiles of {TILE}")
        return p

    def decode(self, box: Box, progress: Callable[[int], None] | None = None) -> np.ndarray:
        p = self.check_model(box)
        s = self.facts.stride
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
        step = np.float32(p.step)
        origins = tile_origins(p.padded_height, p.padded_width)
        t = TILE // s
        # Without a latent (K = 0) every tile's decoder input is the PCA mean, so every batch of
        # a size is the same tensor: it is decoded once per batch size and its tiles reused,
        # position for position, which gives exactly the pixels decoding each batch would (a
        # huge header-only file: seconds instead of minutes).
        decoded_by_size: dict[int, np.ndarray] = {}
        per_call = self._per_call(len(origins))
        for i in range(0, len(origins), per_call):
            batch = origins[i : i + per_call]
            tiles = decoded_by_size.get(len(batch)) if k == 0 else None
            if tiles is None:
                zq = np.stack([q[:, y // s : y // s + t, x // s : x // s + t] for y, x in batch])
                tiles = self._synthesize(zq, float(step), colour)
                if k == 0:
                    decoded_by_size[len(batch)] = tiles
            for (ty, tx), tile in zip(batch, tiles, strict=True):
                region = out[ty : ty + TILE, tx : tx + TILE, :colour]
                region[...] = tile[: region.shape[0], : region.shape[1]]
            if progress:
                progress(len(batch))
        return out

    def _synthesize(self, zq: np.ndarray, step: float, colour: int) -> np.ndarray:
        """uint8 (B, TILE, TILE, colour) tiles from their quantized components (B, K, t, t)."""
        if self._graphs is None:
            return self._synthesize_torch(zq, step, colour)
        k = zq.shape[1]
        y = pca.unrotate_np(quant.dequantize(zq, step), self.facts.pca_mean, self.facts.pca_basis[:, :k])
        x = self._graph(decoder_part(self.facts.band_of(step)))(y)
        x = ycbcr_to_rgb(x) if colour == 3 else x[:, :1]
        # float32 throughout and round half to even, as torch's path computes it; in place (x
        # is this call's own array): no temporary copies of the batch
        np.clip(x, 0, 1, out=x)
        x *= np.float32(255.0)
        np.rint(x, out=x)
        return x.astype(np.uint8).transpose(0, 2, 3, 1)

    def _synthesize_torch(self, zq: np.ndarray, step: float, colour: int) -> np.ndarray:
        import torch

        net, mean, basis = self._torch_state()
        with torch.inference_mode():
            z_t = torch.from_numpy(quant.dequantize(zq, step)).to(self.device)
            y_t = pca.unrotate(z_t, mean, basis[:, : zq.shape[1]])
            x_t = net.decode(y_t, step).float()
            x_t = ycbcr_to_rgb(x_t) if colour == 3 else x_t[:, :1]
            return (  # type: ignore[no-any-return]
                (x_t.clamp(0, 1) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
            )


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
    from cae_codec.cae.refine import refine_latent

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
        device: str | torch.device,
        load: Callable[[str], CaePcaJ2kCodec] | None = None,
        refine: int = 0,
    ) -> None:
        """``load`` makes a member's codec from its model name; by default from the weights
        file the family names (zoo.member_path), on ``device``."""
        self.family = family
        self.device_name = str(device)
        self.refine = refine
        self.members = FamilyMembers(family, load or self._load_member)

    def _load_member(self, name: str) -> CaePcaJ2kCodec:
        return CaePcaJ2kCodec(zoo.member_path(self.family, name), self.device_name)

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
