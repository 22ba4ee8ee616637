"""The metrics every codec is measured with, defined once (see docs/evaluation.md).

All of them work on 8-bit RGB: the codecs are fed the RGB image (grey replicated, alpha
dropped) and their 8-bit output is compared with it.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from pytorch_msssim import ms_ssim

# pytorch-msssim's 5-scale MS-SSIM with an 11-tap window needs a smaller side > (11 - 1) * 2**4
MS_SSIM_MIN_SIDE = 161


def as_rgb8(img: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 from (H, W) or (H, W, C) uint8: grey is replicated, alpha dropped."""
    arr = np.asarray(img)
    if arr.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"expected an (H, W, 1..4) image, got shape {arr.shape}")
    if arr.shape[2] in (1, 2):
        arr = np.repeat(arr[:, :, :1], 3, axis=2)
    return np.ascontiguousarray(arr[:, :, :3])


def bits_per_pixel(nbytes: int, height: int, width: int) -> float:
    """8 x file bytes / original pixels: every byte of the file counts, headers included."""
    return 8.0 * nbytes / (height * width)


def _check_pair(ref: np.ndarray, rec: np.ndarray) -> None:
    if ref.shape != rec.shape:
        raise ValueError(f"reconstruction is {rec.shape}, the original {ref.shape}")
    if ref.dtype != np.uint8 or rec.dtype != np.uint8:
        raise ValueError("metrics take 8-bit images")


def psnr_rgb(ref: np.ndarray, rec: np.ndarray) -> float:
    """PSNR in dB over all pixels and the three channels (peak 255); inf when identical."""
    _check_pair(ref, rec)
    mse = float(np.mean((ref.astype(np.float64) - rec.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def ms_ssim_rgb(ref: np.ndarray, rec: np.ndarray) -> float:
    """MS-SSIM (pytorch-msssim, 5 scales, data_range 255) of (H, W, 3) uint8 images.

    NaN when the smaller side is under MS_SSIM_MIN_SIDE: fewer scales would be a different
    metric, not comparable with published numbers, so there is no value rather than a wrong one.
    """
    _check_pair(ref, rec)
    if min(ref.shape[:2]) < MS_SSIM_MIN_SIDE:
        return math.nan
    x = torch.from_numpy(np.ascontiguousarray(ref.transpose(2, 0, 1))).float().unsqueeze(0)
    y = torch.from_numpy(np.ascontiguousarray(rec.transpose(2, 0, 1))).float().unsqueeze(0)
    with torch.inference_mode():
        return float(ms_ssim(x, y, data_range=255, size_average=True))


def ms_ssim_db(value: float) -> float:
    """-10 log10(1 - MS-SSIM): spreads the values near 1 for plots and BD-rate."""
    return math.inf if value >= 1.0 else -10.0 * math.log10(1.0 - value)
