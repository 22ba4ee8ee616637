"""The convolutional autoencoder: stride-2 convolution units down, transposed ones up.

After Cheng et al. 2018: symmetric conv/deconv pairs, stride 2, feature maps from the last
encoder layer. The non-linearity is GDN/IGDN (Balle et al. 2017) rather than the paper's
PReLU: it gaussianizes the latent at the cost of a 1x1 convolution per layer, which the
learned-compression literature found worth more than extra filters. The rate proxy learned
in training is a density of the noisy latent per channel (``density``: a zero-mean Laplace,
or Balle's non-parametric factorized model); it is used only by the training loss.

A model may carry one decoder per rate band (``decoder_bands``: the quantization steps where
one band ends and the next begins). The encoder and the bitstream are shared; the decoder
of the band that holds a file's step (which its header records) reconstructs it, so each
decoder specialises in the error that rounding at its steps makes.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import asdict
from typing import Any

import torch
import torch.nn as nn

from cae_codec.cae.config import ENCODER_PART, CAEConfig, decoder_part
from cae_codec.nn.density import DENSITIES
from cae_codec.nn.layers import GDN, UpConv
from cae_codec.nn.registry import register_architecture
from cae_codec.stages.tiling import TILE


def _down(cin: int, cout: int, k: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=2, padding=k // 2)


def _up(cin: int, cout: int, k: int, last: bool) -> UpConv:
    # the image layer's few output channels run faster as a sub-pixel convolution (nn/layers.py)
    return UpConv(cin, cout, k, subpixel=last)


def _stack(config: CAEConfig, decoder: bool) -> nn.Sequential:
    """The encoder (stride-2 convolutions, GDN between) or its mirror, the decoder."""
    chain = config.decoder_widths[::-1] if decoder else config.widths
    layers: list[nn.Module] = []
    for i, (cin, cout) in enumerate(itertools.pairwise(chain)):
        last = i == config.stages - 1
        layers.append(_up(cin, cout, config.kernel, last) if decoder else _down(cin, cout, config.kernel))
        if i < config.stages - 1:
            layers.append(GDN(cout, inverse=decoder))
    return nn.Sequential(*layers)


def _rename_v1_keys(state: dict[str, Any], prefix: str, *args: Any) -> None:
    # cae-gdn-v1 was saved before the densities moved into their own module
    old = prefix + "log_scale"
    if old in state:
        state[prefix + "density.log_scale"] = state.pop(old)


@register_architecture("cae-gdn")
class CAE(nn.Module):
    """x in [0,1] (B, C, H, W), H and W multiples of ``config.stride`` -> latent (B, M, H/s, W/s)."""

    def __init__(self, config: CAEConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = _stack(config, decoder=False)
        self.decoder = _stack(config, decoder=True)  # band 0; the parameter names of single-decoder weights
        self.band_decoders = nn.ModuleList(_stack(config, decoder=True) for _ in config.decoder_bands)
        self.density = DENSITIES[config.density](config.latent)
        self._register_load_state_dict_pre_hook(_rename_v1_keys)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> CAE:
        return cls(CAEConfig(**config))

    def config_dict(self) -> dict[str, Any]:
        d = asdict(self.config)
        for name in ("hidden", "decoder_hidden"):
            if isinstance(d[name], tuple):
                d[name] = list(d[name])
        if d["decoder_hidden"] is None:
            del d["decoder_hidden"]  # mirrored decoders' configs read as they did before
        if not d["decoder_bands"]:
            del d["decoder_bands"]  # single-decoder configs read as they did before bands existed
        else:
            d["decoder_bands"] = list(d["decoder_bands"])
        return d

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        # the network sees centred input; 0.5 is the mid value of every YCbCr channel in [0,1]
        return self.encoder(x - 0.5)  # type: ignore[no-any-return]

    def band_of(self, step: float) -> int:
        return bisect.bisect_right(self.config.decoder_bands, step)

    def decoders(self) -> list[nn.Module]:
        return [self.decoder, *self.band_decoders]

    def decode(self, y: torch.Tensor, step: torch.Tensor | float | None = None) -> torch.Tensor:
        """Latent -> image. ``step`` (a float, or (B,1,1,1) per sample) picks the band's decoder;
        a banded model needs it, a single-decoder model ignores it."""
        if not self.config.decoder_bands:
            return self.decoder(y) + 0.5  # type: ignore[no-any-return]
        if step is None:
            raise ValueError("this model has a decoder per rate band: decode() needs the quantization step")
        if not isinstance(step, torch.Tensor) or step.numel() == 1:
            return self.decoders()[self.band_of(float(step))](y) + 0.5  # type: ignore[no-any-return]
        bands = torch.bucketize(step.view(-1), torch.tensor(self.config.decoder_bands, device=step.device), right=True)
        out: torch.Tensor | None = None
        for i, dec in enumerate(self.decoders()):
            rows = torch.nonzero(bands == i).view(-1)
            if rows.numel():
                part = dec(y[rows])
                if out is None:
                    out = part.new_empty((y.shape[0], *part.shape[1:]))
                out[rows] = part
        assert out is not None
        return out + 0.5

    def inference_parts(self) -> dict[str, tuple[nn.Module, tuple[int, ...]]]:
        return inference_parts(self)

    def rate_bits(self, y_noisy: torch.Tensor, step: torch.Tensor | float = 1.0) -> torch.Tensor:
        """Bits per sample (B,) to code ``y_noisy`` in bins ``step`` wide (a float, or a
        (B,1,1,1) tensor when a batch mixes steps)."""
        return self.density(y_noisy, step)  # type: ignore[no-any-return]

    def forward(
        self, x: torch.Tensor, noise: torch.Tensor, step: torch.Tensor | float = 1.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Training pass. ``noise`` is uniform in [-0.5, 0.5) with the latent's shape; scaled by
        ``step`` it stands in for rounding to multiples of ``step``. Passed in rather than drawn
        here so that the trainer's seeded generator alone decides every random number."""
        y = self.encode(x)
        y_noisy = y + noise * step
        return self.decode(y_noisy, step), self.rate_bits(y_noisy.float(), step)


class _EncoderPart(nn.Module):
    """The encoder's graph: YCbCr tiles in [0,1] (B, C, TILE, TILE) -> latent (B, M, TILE/s, TILE/s)."""

    def __init__(self, net: CAE) -> None:
        super().__init__()
        self.net = net  # the attribute name makes the graph's tensor names the weights file's (net.*)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.encode(x)


class _DecoderPart(nn.Module):
    """One band's decoder as a graph: latent (B, M, TILE/s, TILE/s) -> YCbCr tiles, unclipped."""

    def __init__(self, net: CAE, band: int) -> None:
        super().__init__()
        self.net = net
        self.band = band

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        # the layers as torch runs them for decoding: the image layer in its sub-pixel form,
        # the others as ConvTranspose, which ran 1.2x faster in ONNX Runtime than all of them
        # sub-pixel, at the runtime's settings (research/runtime_speed.py, docs/benchmark.md)
        return self.net.decoders()[self.band](y) + 0.5  # type: ignore[no-any-return]


def inference_parts(net: CAE) -> dict[str, tuple[nn.Module, tuple[int, ...]]]:
    """What a CPU runtime runs of ``net`` (cae_codec.nn.onnx exports it): graph name ->
    (module, an example input shape); the batch dimension is free, tiles are TILE square."""
    c, s = net.config, net.config.stride
    parts: dict[str, tuple[nn.Module, tuple[int, ...]]] = {
        ENCODER_PART: (_EncoderPart(net), (2, c.in_channels, TILE, TILE))
    }
    for band in range(1 + len(c.decoder_bands)):
        parts[decoder_part(band)] = (_DecoderPart(net, band), (2, c.latent, TILE // s, TILE // s))
    return parts


def macs_per_pixel(config: CAEConfig) -> float:
    """Multiply-accumulates per input pixel for encoder + decoder (for the model card)."""
    k = config.kernel
    return sum(
        w[i] * w[i + 1] * k * k / 4 ** (i + 1)
        for w in (config.widths, config.decoder_widths)
        for i in range(config.stages)
    )
