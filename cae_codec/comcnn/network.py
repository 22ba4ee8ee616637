"""ComCNN and RecCNN (Jiang et al. 2017), one module so that one weights file holds the pair.

Architecture ``comcnn`` (cae_codec.nn.registry), config ``channels`` (3: the networks are
joint over the colour channels), ``rec_layers`` and ``rec_channels`` (RecCNN's depth and width:
the paper's 20 x 64 costs ~0.67 M multiply-adds a pixel, several seconds a Kodak image on two
cores; docs/comcnn.md gives the measured choice).

- ComCNN: 3x3 conv 64 + ReLU; 3x3 stride-2 conv 64 + BN + ReLU; 3x3 conv to the image's
  channels, giving the compact image at half resolution. It predicts the compact image as a
  correction to the 2x2 mean of the input (residual learning, as RecCNN's): the network starts
  at a plain downscale instead of at noise, which is most of the point of a short CPU training.
- RecCNN: 3x3 conv + ReLU, (layers - 2) x (3x3 conv + BN + ReLU), 3x3 conv to the channels;
  its output is the residual added to the bicubic x2 upscale of the decoded compact image.

Images are RGB in [0, 1], channel-first.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from cae_codec.nn.registry import register_architecture

ARCHITECTURE = "comcnn"
COM_CHANNELS = 64


@dataclass(frozen=True)
class ComCnnConfig:
    channels: int = 3
    rec_layers: int = 10
    rec_channels: int = 32
    # the standard codec whose errors RecCNN learned (cae_codec.comcnn.frames.INNER_CODECS)
    inner: str = "jpeg"

    def __post_init__(self) -> None:
        from cae_codec.comcnn.frames import INNER_CODECS

        if self.inner not in INNER_CODECS:
            raise ValueError(f"unknown inner codec {self.inner!r} (one of {', '.join(INNER_CODECS)})")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        if not 3 <= self.rec_layers <= 64 or not 1 <= self.rec_channels <= 512:
            raise ValueError(f"RecCNN of {self.rec_layers} layers x {self.rec_channels} channels is out of range")


def _zero(layer: nn.Module) -> None:
    """A residual branch's last layer starts at zero: an untrained pair is then the 2x2 mean
    down and bicubic up, a sound codec from the first step, instead of noise added to it."""
    assert isinstance(layer, nn.Conv2d)
    nn.init.zeros_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


class ComCNN(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, COM_CHANNELS, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(COM_CHANNELS, COM_CHANNELS, 3, stride=2, padding=1),
            nn.BatchNorm2d(COM_CHANNELS),
            nn.ReLU(inplace=True),
            nn.Conv2d(COM_CHANNELS, channels, 3, padding=1),
        )
        _zero(self.body[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) with H, W even -> (B, C, H/2, W/2), not clipped."""
        return F.avg_pool2d(x, 2) + self.body(x)


class RecCNN(nn.Module):
    def __init__(self, channels: int, layers: int, width: int) -> None:
        super().__init__()
        body: list[nn.Module] = [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(layers - 2):
            body += [nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        body.append(nn.Conv2d(width, channels, 3, padding=1))
        self.body = nn.Sequential(*body)
        _zero(self.body[-1])

    def forward(self, up: torch.Tensor) -> torch.Tensor:
        """The upscaled decoded image plus the predicted residual."""
        return up + self.body(up)


def upscale(compact: torch.Tensor) -> torch.Tensor:
    """Bicubic x2, the design's upscaler between the standard codec and RecCNN."""
    return F.interpolate(compact, scale_factor=2, mode="bicubic", align_corners=False)


@register_architecture(ARCHITECTURE)
class ComRecPair(nn.Module):
    def __init__(self, config: ComCnnConfig) -> None:
        super().__init__()
        self.config = config
        self.com = ComCNN(config.channels)
        self.rec = RecCNN(config.channels, config.rec_layers, config.rec_channels)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ComRecPair:
        return cls(
            ComCnnConfig(
                channels=int(config["channels"]),
                rec_layers=int(config["rec_layers"]),
                rec_channels=int(config["rec_channels"]),
                inner=str(config.get("inner", "jpeg")),  # models made before there was a choice are JPEG's
            )
        )

    def config_dict(self) -> dict[str, Any]:
        return asdict(self.config)

    def compact(self, x: torch.Tensor) -> torch.Tensor:
        return self.com(x)

    def reconstruct(self, decoded_compact: torch.Tensor) -> torch.Tensor:
        return self.rec(upscale(decoded_compact))


ENHANCE_ARCHITECTURE = "comcnn-enhance"


@dataclass(frozen=True)
class EnhanceConfig:
    channels: int = 3
    layers: int = 10
    width: int = 32

    def __post_init__(self) -> None:
        ComCnnConfig(self.channels, self.layers, self.width)  # the same bounds


@register_architecture(ENHANCE_ARCHITECTURE)
class JpegEnhancer(nn.Module):
    """The paper's "RecCNN only" row as a tool: a RecCNN on a decoded full-resolution JPEG (no
    upscale) predicting the residual that removes its artifacts (`caec enhance`)."""

    def __init__(self, config: EnhanceConfig) -> None:
        super().__init__()
        self.config = config
        self.rec = RecCNN(config.channels, config.layers, config.width)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> JpegEnhancer:
        return cls(EnhanceConfig(int(config["channels"]), int(config["layers"]), int(config["width"])))

    def config_dict(self) -> dict[str, Any]:
        return asdict(self.config)

    def forward(self, decoded: torch.Tensor) -> torch.Tensor:
        return self.rec(decoded)
