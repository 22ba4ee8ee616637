"""The convolutional autoencoder: stride-2 convolution units down, transposed ones up.

After Cheng et al. 2018: symmetric conv/deconv pairs, stride 2, feature maps from the last
encoder layer. The non-linearity is GDN/IGDN (Balle et al. 2017) rather than the paper's
PReLU: it gaussianizes the latent at the cost of a 1x1 convolution per layer, which the
learned-compression literature found worth more than extra filters. The rate proxy learned
in training is a density of the noisy latent per channel (``density``: a zero-mean Laplace,
or Balle's non-parametric factorized model); it is used only by the training loss.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn as nn

from cae_codec.nn.density import DENSITIES
from cae_codec.nn.layers import GDN
from cae_codec.nn.registry import register_architecture


@dataclass(frozen=True)
class CAEConfig:
    in_channels: int = 3
    hidden: int = 64
    latent: int = 96
    stages: int = 4
    kernel: int = 5
    density: str = "laplace"

    def __post_init__(self) -> None:
        if self.density not in DENSITIES:
            raise ValueError(f"CAE config density={self.density!r} is not one of {', '.join(DENSITIES)}")
        # configs come from weights files: bound them before anything is allocated
        limits = {"in_channels": 4, "hidden": 1024, "latent": 4096, "stages": 6, "kernel": 11}
        for name, top in limits.items():
            value = getattr(self, name)
            if not isinstance(value, int) or not 1 <= value <= top:
                raise ValueError(f"CAE config {name}={value!r} outside 1..{top}")

    @property
    def stride(self) -> int:
        """How many input pixels one latent sample covers along each axis."""
        return 2**self.stages


def _down(cin: int, cout: int, k: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=2, padding=k // 2)


def _up(cin: int, cout: int, k: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, k, stride=2, padding=k // 2, output_padding=1)


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
        c, n, m, k = config.in_channels, config.hidden, config.latent, config.kernel
        enc: list[nn.Module] = []
        dec: list[nn.Module] = []
        for i in range(config.stages):
            last = i == config.stages - 1
            enc.append(_down(c if i == 0 else n, m if last else n, k))
            if not last:
                enc.append(GDN(n))
        for i in range(config.stages):
            last = i == config.stages - 1
            dec.append(_up(m if i == 0 else n, c if last else n, k))
            if not last:
                dec.append(GDN(n, inverse=True))
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(*dec)
        self.density = DENSITIES[config.density](m)
        self._register_load_state_dict_pre_hook(_rename_v1_keys)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> CAE:
        return cls(CAEConfig(**config))

    def config_dict(self) -> dict[str, Any]:
        return asdict(self.config)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        # the network sees centred input; 0.5 is the mid value of every YCbCr channel in [0,1]
        return self.encoder(x - 0.5)  # type: ignore[no-any-return]

    def decode(self, y: torch.Tensor) -> torch.Tensor:
        return self.decoder(y) + 0.5  # type: ignore[no-any-return]

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
        return self.decode(y_noisy), self.rate_bits(y_noisy.float(), step)


def macs_per_pixel(config: CAEConfig) -> float:
    """Multiply-accumulates per input pixel for encoder + decoder (for the model card)."""
    c, n, m, k = config.in_channels, config.hidden, config.latent, config.kernel
    total = 0.0
    for i in range(config.stages):
        cin = c if i == 0 else n
        cout = m if i == config.stages - 1 else n
        total += 2 * cin * cout * k * k / 4 ** (i + 1)
    return total
