"""The PCA rotation of a latent: a stage of its own, fitted once per model and stored with its
weights (per-image PCA would cost M x M coefficients of side information in every file).

Latents are (B, M, h, w); ``mean`` is (M,) and ``basis`` (M, M) holds the principal
directions as columns, by descending variance. ``rotate`` gives the components, ``unrotate``
takes the first K of them (K = basis columns given) back to the latent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def rotate(y: torch.Tensor, mean: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Latents (B, M, h, w) to their components (B, K, h, w) along ``basis`` (M, K)."""
    import torch

    return torch.einsum("bmhw,mk->bkhw", y - mean.view(1, -1, 1, 1), basis)


def unrotate(z: torch.Tensor, mean: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Components (B, K, h, w) back to latents (B, M, h, w); ``basis`` is (M, K)."""
    import torch

    return torch.einsum("bkhw,mk->bmhw", z, basis) + mean.view(1, -1, 1, 1)


def rotate_np(y: np.ndarray, mean: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """:func:`rotate` in numpy (float32), as one 2-D matrix product over all positions: numpy's
    batched matmul and plain einsum ran it 50x slower (no BLAS for those layouts)."""
    b, m, h, w = y.shape
    rows = (y - mean.reshape(1, -1, 1, 1)).transpose(0, 2, 3, 1).reshape(b * h * w, m)
    return np.ascontiguousarray((rows @ basis).reshape(b, h, w, basis.shape[1]).transpose(0, 3, 1, 2))


def unrotate_np(z: np.ndarray, mean: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """:func:`unrotate` in numpy (float32), the same way."""
    b, k, h, w = z.shape
    # the sizes spelt out: a file without a latent has K = 0, and -1 cannot be inferred from 0
    rows = z.transpose(0, 2, 3, 1).reshape(b * h * w, k) @ basis.T
    m = basis.shape[0]
    return np.ascontiguousarray(rows.reshape(b, h, w, m).transpose(0, 3, 1, 2)) + mean.reshape(1, -1, 1, 1)


def fit(vectors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and principal directions (columns, by descending variance) of ``vectors`` (N, M),
    computed in float64 and returned in float32. Each direction's sign is fixed (its largest
    entry positive), so that refits on the same vectors give the same basis."""
    import torch

    allv = vectors.double()
    mean = allv.mean(0)
    cov = torch.cov((allv - mean).T)
    evals, evecs = torch.linalg.eigh(cov)
    basis = evecs[:, torch.argsort(evals, descending=True)]
    signs = torch.sign(basis[basis.abs().argmax(dim=0), torch.arange(basis.shape[1])])
    return mean.float(), (basis * signs).float()
