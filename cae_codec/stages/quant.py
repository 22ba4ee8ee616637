"""Uniform scalar quantization of the PCA components, and the --quality scale.

Every component shares one step: PCA is orthonormal, so equal steps give equal squared
error per component, which is what minimises total MSE at a given rate; components whose
spread is below the step simply quantize to zero and cost almost nothing to code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

QUALITY_MIN, QUALITY_MAX, QUALITY_DEFAULT = 1, 10, 4
# step = 2 ** ((STEP_PIVOT_QUALITY - quality) / 2): each quality level halves the latent's
# quantization noise power, which the decoded image shows as +0.8..1.8 dB PSNR for 1.2-1.5x
# the bits (measured on Kodak: docs/design.md, "What the quality scale does")
STEP_PIVOT_QUALITY = 6.0
STEP_MIN, STEP_MAX = 1.0 / 64, 256.0
INT_LIMIT = 32767
# rounding dead zone of the encoder (a decoder never needs it): 0.1 step won on Kodak with
# cae-gdn-v2 (BD-rate +40.7% vs +44.9% for plain rounding, +49.8% for 0.2), docs/experiments.md
DEADZONE = 0.1
# most gradient steps `encode --refine` takes (cae_codec.cae.refine); here, not there, so that the
# CLI can check the option without importing torch
REFINE_MAX = 1000


def step_for_quality(quality: int) -> float:
    if not QUALITY_MIN <= quality <= QUALITY_MAX:
        raise ValueError(f"quality must be {QUALITY_MIN}..{QUALITY_MAX}, got {quality}")
    return float(np.float32(2.0 ** ((STEP_PIVOT_QUALITY - quality) / 2.0)))


def quantize(z: np.ndarray, step: float, deadzone: float = 0.0) -> np.ndarray:
    """Multiples of ``step`` as int16 (JPEG2000 codes 16-bit planes).

    ``deadzone`` in [0, 0.5) moves every decision threshold that far (in steps) away from
    zero: values just past a half step round towards zero instead, which saves more bits
    (zeros are cheap for the bitplane coder) than the small extra error costs.
    """
    scaled = z / np.float32(step)
    q = np.sign(scaled) * np.floor(np.abs(scaled) + np.float32(0.5 - deadzone))
    return np.clip(q, -INT_LIMIT, INT_LIMIT).astype(np.int16)


def quantize_dequantize(z: torch.Tensor, step: torch.Tensor | float, deadzone: float = 0.0) -> torch.Tensor:
    """What the decoder will see of ``z``: :func:`quantize` then :func:`dequantize`, in torch.

    For training a decoder on the latents it really gets (``step`` may be a per-sample
    (B, 1, 1, 1) tensor); it makes the same decisions as the numpy path (a test holds it to that).
    """
    import torch

    scaled = z / step
    q = torch.sign(scaled) * torch.floor(scaled.abs() + (0.5 - deadzone))
    return q.clamp(-INT_LIMIT, INT_LIMIT) * step


def dequantize(q: np.ndarray, step: float) -> np.ndarray:
    return q.astype(np.float32) * np.float32(step)
