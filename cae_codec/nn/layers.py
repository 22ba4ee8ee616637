"""Generalized divisive normalization (Balle et al. 2016), the non-linearity of the CAE."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class GDN(nn.Module):
    """y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2); ``inverse=True`` multiplies (IGDN).

    beta and gamma are stored as square roots so that they stay non-negative under
    plain gradient steps; the small floor keeps the denominator away from zero.
    """

    def __init__(self, channels: int, inverse: bool = False, gamma_init: float = 0.1) -> None:
        super().__init__()
        self.inverse = inverse
        self.beta_sqrt = nn.Parameter(torch.ones(channels))
        self.gamma_sqrt = nn.Parameter(torch.sqrt(gamma_init * torch.eye(channels) + 1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        beta = self.beta_sqrt.square() + 1e-6
        gamma = self.gamma_sqrt.square().view(c, c, 1, 1)
        norm = torch.sqrt(F.conv2d(x * x, gamma, beta))
        return x * norm if self.inverse else x / norm
