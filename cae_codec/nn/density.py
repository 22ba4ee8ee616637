"""Rate models of the noisy latent, used only by the training loss.

The decoder never evaluates them: the quantized latent is coded by JPEG 2000, whose
adaptive contexts learn their own statistics. What they do is teach the encoder what a
symbol costs, so the better they fit the latent's real distribution, the closer the
training trade-off is to the one the codec then makes.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def _bits(lik: torch.Tensor) -> torch.Tensor:
    """Bits per sample (B,) from per-element bin probabilities (B, C, H, W)."""
    return -torch.log2(lik.clamp_min(1e-9)).sum(dim=(1, 2, 3))


class LaplaceDensity(nn.Module):
    """Zero-mean Laplace per channel with a learned scale: two parameters' worth of shape."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(channels))

    def forward(self, y: torch.Tensor, step: torch.Tensor | float) -> torch.Tensor:
        b = torch.exp(self.log_scale).view(1, -1, 1, 1)
        half = 0.5 * step

        def cdf(v: torch.Tensor) -> torch.Tensor:
            return 0.5 + 0.5 * torch.sign(v) * (1.0 - torch.exp(-v.abs() / b))

        return _bits(cdf(y + half) - cdf(y - half))


class FactorizedDensity(nn.Module):
    """Balle et al. 2018's non-parametric density, one per channel (appendix 6.1).

    The cumulative is a small monotone network per channel: softplus-positive matrices,
    gated tanh non-linearities, a final sigmoid. The probability of a bin is the
    difference of two cumulatives, taken on the side of the median where it does not
    cancel to zero in floating point.
    """

    def __init__(self, channels: int, filters: tuple[int, ...] = (3, 3, 3), init_scale: float = 10.0) -> None:
        super().__init__()
        dims = (1, *filters, 1)
        scale = init_scale ** (1 / (len(filters) + 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(filters) + 1):
            init = math.log(math.expm1(1 / scale / dims[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, dims[i + 1], dims[i]), init)))
            self.biases.append(nn.Parameter(torch.rand(channels, dims[i + 1], 1) - 0.5))
            if i < len(filters):
                self.factors.append(nn.Parameter(torch.zeros(channels, dims[i + 1], 1)))

    def _logits_cdf(self, v: torch.Tensor) -> torch.Tensor:
        """(C, 1, N) values -> (C, 1, N) logits of each channel's cumulative."""
        for i, matrix in enumerate(self.matrices):
            v = torch.matmul(F.softplus(matrix), v) + self.biases[i]
            if i < len(self.factors):
                v = v + torch.tanh(self.factors[i]) * torch.tanh(v)
        return v

    def forward(self, y: torch.Tensor, step: torch.Tensor | float) -> torch.Tensor:
        # the cumulative's tails need fp32: under bf16 autocast a bin's probability would
        # round to zero long before it is small
        with torch.autocast(y.device.type, enabled=False):
            y = y.float()
            half = 0.5 * step  # a (B,1,1,1) step broadcasts over each sample's latent
            b, c, h, w = y.shape

            def per_channel(v: torch.Tensor) -> torch.Tensor:
                return v.transpose(0, 1).reshape(c, 1, -1)

            lower = self._logits_cdf(per_channel(y - half))
            upper = self._logits_cdf(per_channel(y + half))
            sign = -torch.sign(lower + upper).detach()
            lik = (torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower)).abs()
            return _bits(lik.reshape(c, b, h, w).transpose(0, 1))


DENSITIES: dict[str, type[nn.Module]] = {"laplace": LaplaceDensity, "factorized": FactorizedDensity}
