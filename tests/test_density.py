"""The training rate models: each must learn the entropy of data it is fitted to."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cae_codec.nn.density import DENSITIES


def _empirical_bits(symbols: torch.Tensor) -> float:
    _, counts = np.unique(symbols.numpy(), return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


@pytest.mark.parametrize("name", sorted(DENSITIES))
def test_density_learns_the_entropy_of_rounded_laplace_data(name: str) -> None:
    torch.manual_seed(0)
    channels, scale = 4, 3.0
    data = torch.distributions.Laplace(0.0, scale).sample((64, channels, 8, 8))
    density = DENSITIES[name](channels)
    opt = torch.optim.Adam(density.parameters(), lr=0.02)
    for _ in range(400):
        noisy = data + torch.rand_like(data) - 0.5
        loss = density(noisy, 1.0).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        per_symbol = float(density(data.round(), 1.0).mean()) / (channels * 64)
    truth = _empirical_bits(data.round())
    # the fitted model costs at most a few percent over the empirical entropy (and, being a
    # proper distribution over the bins, cannot beat it by more than sampling noise)
    assert truth - 0.05 < per_symbol < truth * 1.05 + 0.02, (per_symbol, truth)


@torch.no_grad()
def test_factorized_bins_of_any_step_sum_to_one() -> None:
    torch.manual_seed(1)
    density = DENSITIES["factorized"](1)
    for step in (0.5, 1.0, 3.0):
        y = (torch.arange(-400, 400, dtype=torch.float32) * step).view(-1, 1, 1, 1)
        total = float((2.0 ** -density(y, step)).sum())
        assert math.isclose(total, 1.0, rel_tol=1e-3), (step, total)


@torch.no_grad()
def test_per_sample_steps_match_scalar_steps() -> None:
    torch.manual_seed(2)
    density = DENSITIES["factorized"](3)
    y = torch.randn(2, 3, 4, 4) * 4
    mixed = density(y, torch.tensor([0.5, 2.0]).view(2, 1, 1, 1))
    assert torch.allclose(mixed[0], density(y[:1], 0.5)[0])
    assert torch.allclose(mixed[1], density(y[1:], 2.0)[0])
