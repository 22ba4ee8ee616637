"""The deep autoencoder: an encoder of sigmoid layers down to the code and its mirror image.

Architecture ``mnist-dae`` (cae_codec.nn.registry): config ``sizes`` (784, ..., code) and
``linear_code`` (the code layer linear, as Hinton & Salakhutdinov's 30-unit code; sigmoid
otherwise, as the design's 196-unit code). Every other unit is logistic, the output too: pixels
are intensities in [0, 1], trained on binary cross-entropy.

The network also holds the code's quantization range, per code unit (``code_lo``,
``code_hi``, fitted on training codes after training): the codec divides it into 2**bits
levels, so the range is part of the weights (and of their hash) like the layers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn as nn

from cae_codec.nn.registry import register_architecture

ARCHITECTURE = "mnist-dae"
MAX_UNITS = 1 << 14


@dataclass(frozen=True)
class DaeConfig:
    sizes: tuple[int, ...] = (784, 1000, 500, 196)
    linear_code: bool = False

    def __post_init__(self) -> None:
        if len(self.sizes) < 2 or not all(0 < s <= MAX_UNITS for s in self.sizes):
            raise ValueError(f"layer sizes must be 2 or more in 1..{MAX_UNITS}, got {self.sizes}")

    @property
    def code(self) -> int:
        return self.sizes[-1]


@register_architecture(ARCHITECTURE)
class DeepAutoencoder(nn.Module):
    def __init__(self, config: DaeConfig) -> None:
        super().__init__()
        self.config = config
        pairs = list(zip(config.sizes[:-1], config.sizes[1:], strict=True))
        self.encoder = nn.ModuleList(nn.Linear(a, b) for a, b in pairs)
        self.decoder = nn.ModuleList(nn.Linear(b, a) for a, b in reversed(pairs))
        self.register_buffer("code_lo", torch.zeros(config.code))
        self.register_buffer("code_hi", torch.ones(config.code))

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> DeepAutoencoder:
        return cls(DaeConfig(sizes=tuple(int(s) for s in config["sizes"]), linear_code=bool(config["linear_code"])))

    def config_dict(self) -> dict[str, Any]:
        return asdict(self.config)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 784) intensities in [0, 1] -> (B, code)."""
        last = len(self.encoder) - 1
        for i, layer in enumerate(self.encoder):
            x = layer(x)
            if i < last or not self.config.linear_code:
                x = torch.sigmoid(x)
        return x

    def decode_logits(self, code: torch.Tensor) -> torch.Tensor:
        x = code
        last = len(self.decoder) - 1
        for i, layer in enumerate(self.decoder):
            x = layer(x)
            if i < last:
                x = torch.sigmoid(x)
        return x

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        """(B, code) -> (B, 784) intensities in [0, 1]."""
        return torch.sigmoid(self.decode_logits(code))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))
