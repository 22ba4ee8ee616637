"""Encode-time refinement of the latent (``caec encode --refine N``).

The encoder is amortized: one forward pass guesses, for any image, the latent its decoder
was trained to receive. For one image at one step a better set of integers exists, and the
encoder can look for it: ``N`` iterations of Adam on the PCA components of each tile,
through the fixed decoder of the step's band, minimizing the training objective
(distortion in RGB plus the model's own rate estimate). Rounding is made differentiable by
stochastic Gumbel annealing (Yang, Bamler and Mandt, "Improving Inference for Neural Image
Compression", NeurIPS 2020): each value is a random soft mix of its two nearest lattice
points, drawn harder towards one of them as the temperature falls.

Only the choice of integers changes: the decoder, the format and every decoder that reads
the file are the same, so a refined file decodes anywhere an ordinary one does. Tiles are
decoded independently, so each batch of tiles is refined on its own, which bounds memory
and is the same optimization as over the whole image (Adam works per coordinate).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar

import numpy as np
import torch

from cae_codec.stages import pca
from cae_codec.stages.color import ycbcr_to_rgb
from cae_codec.stages.quant import REFINE_MAX
from cae_codec.stages.tiling import TILE, tile_origins


class Refinable(Protocol):
    """What refinement needs of a codec (the CAE's CaePcaJ2kCodec is one): its network on its
    device, the stored PCA rotation, the encoder's dead zone and the model's stride."""

    deadzone: float

    @property
    def net(self) -> Any: ...  # its decoders(), band_of(step) and rate_bits(y, step)

    @property
    def device(self) -> torch.device: ...

    @property
    def basis(self) -> torch.Tensor: ...

    @property
    def mean(self) -> torch.Tensor: ...

    @property
    def model(self) -> Any: ...  # .stride


class Latent(Protocol):
    """What refinement needs of an image's analysis (the codec's Analysis dataclass)."""

    z: np.ndarray
    channels: int
    padded: tuple[int, int]


LatentT = TypeVar("LatentT", bound=Latent)

# tiles refined together: speed is the same from 4 to 24 on a CPU, and the autograd
# activations of a batch (about 20 MiB a tile) are what refinement adds to peak memory
BATCH_TILES = 8


@dataclass(frozen=True)
class RefineSettings:
    """How the search runs; the defaults won on Kodak (docs/experiments.md, "Encode-time
    refinement", `research/refine_sweep.py`)."""

    # Adam's step, in quantization steps: each component moves about 1% of a step per iteration
    learning_rate: float = 0.01
    # weight of the squared 8-bit error (per pixel and channel) against bits per pixel, times
    # 1 / step^2: half the training lambda (0.013). At the full lambda the refined files grew
    # 4-21% in rate, as the model's density underestimates what extra non-zeros cost JPEG 2000
    distortion_weight: float = 0.0065
    # soft-rounding temperature, annealed geometrically from start to end
    tau_start: float = 0.5
    tau_end: float = 0.025


@contextmanager
def frozen_network(net: torch.nn.Module) -> Iterator[None]:
    """Gradients for the latent only: the (shared, cached) network keeps its flags."""
    flags = [p.requires_grad for p in net.parameters()]
    try:
        for p in net.parameters():
            p.requires_grad_(False)
        yield
    finally:
        for p, f in zip(net.parameters(), flags, strict=True):
            p.requires_grad_(f)


def soft_round(u: torch.Tensor, tau: float, uniform: torch.Tensor) -> torch.Tensor:
    """A random soft mix of floor(u) and floor(u) + 1, weighted by closeness at temperature
    ``tau`` (the SGA relaxation); as ``tau`` falls it becomes plain rounding. ``uniform`` is
    (2, *u.shape) noise in [0, 1), turned into the Gumbel noise of the two choices."""
    f = torch.floor(u)
    r = u - f
    eps = 1e-5
    logit_floor = -torch.atanh(r.clamp(eps - 1, 1 - eps)) / tau
    logit_ceil = -torch.atanh((1 - r).clamp(eps - 1, 1 - eps)) / tau
    gumbel = -torch.log(-torch.log(uniform.clamp(1e-10, 1 - 1e-7)))
    w_ceil = torch.sigmoid((logit_ceil + gumbel[1]) - (logit_floor + gumbel[0]))
    return f + w_ceil


def relaxed_quantize(z: torch.Tensor, step: float, deadzone: float, tau: float, uniform: torch.Tensor) -> torch.Tensor:
    """The relaxed counterpart of :func:`quant.quantize_dequantize` with its dead zone: the dead
    zone's quantizer is rounding of |z|/step shrunk by ``deadzone``, so that is what is relaxed."""
    v = z / step
    shrunk = torch.sign(v) * torch.relu(v.abs() - deadzone)
    return soft_round(shrunk, tau, uniform) * step


def refine_latent(
    codec: Refinable,
    a: LatentT,
    img: np.ndarray,
    step: float,
    iterations: int,
    seed: int = 0,
    settings: RefineSettings = RefineSettings(),  # frozen: one shared default is safe
    in_place: bool = False,
) -> LatentT:
    """``a`` with its PCA components refined for quantization at ``step`` (``img`` is the
    image ``a`` was analysed from). Seeded, so the same machine makes the same file.
    ``in_place`` overwrites ``a``'s components instead of copying them: for callers done with
    ``a``, it saves a second float latent (3 bytes a pixel with 192 maps)."""
    if not 0 <= iterations <= REFINE_MAX:
        raise ValueError(f"refine iterations must be 0..{REFINE_MAX}, got {iterations}")
    if iterations == 0 or a.z.shape[0] == 0:
        return a
    step = float(np.float32(step))
    net, device = codec.net, codec.device
    s = codec.model.stride
    t = TILE // s
    colour = 3 if a.channels >= 3 else 1
    decoder = net.decoders()[net.band_of(step)]  # type: ignore[operator]
    basis, mean = codec.basis, codec.mean.view(1, -1, 1, 1)
    # each tile is read before it is written and tiles do not overlap, so in place is safe
    z_out = a.z if in_place else a.z.copy()
    origins = tile_origins(*a.padded)
    weight = settings.distortion_weight / step**2 * 255.0**2
    with frozen_network(net), torch.enable_grad():
        for first in range(0, len(origins), BATCH_TILES):
            batch = origins[first : first + BATCH_TILES]
            target, mask = tile_targets(img, batch, colour, device)
            z0 = np.stack([a.z[:, y // s : y // s + t, x // s : x // s + t] for y, x in batch])
            z = torch.from_numpy(z0).to(device).requires_grad_(True)
            opt = torch.optim.Adam([z], lr=settings.learning_rate * step)
            # one random stream per tile, so that the file does not depend on the batching
            streams = [
                torch.Generator(device=device).manual_seed(seed * 1_000_003 + first + j) for j in range(len(batch))
            ]
            for i in range(iterations):
                tau = settings.tau_start * (settings.tau_end / settings.tau_start) ** (i / max(iterations - 1, 1))
                uniform = torch.stack([torch.rand((2, *z.shape[1:]), generator=g, device=device) for g in streams], 1)
                z_hat = relaxed_quantize(z, step, codec.deadzone, tau, uniform)
                y_hat = pca.unrotate(z_hat, mean, basis)
                x = decoder(y_hat.contiguous(memory_format=torch.channels_last)) + 0.5
                x = (ycbcr_to_rgb(x.float()) if colour == 3 else x[:, :1].float()).clamp(0, 1)
                sq_err = (((x - target) ** 2) * mask).sum() / colour
                # the rate of the unrounded latent: the density's mass of the bin around it
                y = pca.unrotate(z, mean, basis)
                bits = net.rate_bits(y, step).sum()  # type: ignore[operator]
                # per tile, not per batch, so that each tile's gradient is the same in any batch
                loss = (weight * sq_err + bits) / (TILE * TILE)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            z_new = z.detach().cpu().numpy()
            for (y0, x0), zt in zip(batch, z_new, strict=True):
                z_out[:, y0 // s : y0 // s + t, x0 // s : x0 // s + t] = zt
    return replace(a, z=z_out)  # type: ignore[type-var]  # Latent is always a dataclass here (Analysis)


def tile_targets(
    img: np.ndarray, batch: list[tuple[int, int]], colour: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """The tiles' pixels in [0,1] and a mask of those inside the image: what lies past the
    border is padding that the decoder's output is cropped from, so it costs nothing."""
    target = np.zeros((len(batch), colour, TILE, TILE), dtype=np.float32)
    mask = np.zeros((len(batch), 1, TILE, TILE), dtype=np.float32)
    for i, (y, x) in enumerate(batch):
        tile = img[y : y + TILE, x : x + TILE, :colour]
        th, tw = tile.shape[:2]
        target[i, :, :th, :tw] = tile.transpose(2, 0, 1) / 255.0
        mask[i, :, :th, :tw] = 1.0
    return torch.from_numpy(target).to(device), torch.from_numpy(mask).to(device)
