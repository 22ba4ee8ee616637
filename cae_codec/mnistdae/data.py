"""MNIST as the IDX files LeCun distributes (gzip or plain), and the two data protocols.

Torch-free: the codec's batch path and the experiment read IDX files with numpy alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cae_codec.errors import CaecError
from cae_codec.idx import read_idx

SIDE = 28
PIXELS = SIDE * SIDE


@dataclass(frozen=True)
class Protocol:
    """Which MNIST images train and which test."""

    name: str
    train: int  # the first this many training images
    test: int  # the first this many test images
    text: str


PROTOCOLS = {
    "design": Protocol("design", 20_000, 1_000, "the design's: the first 20,000 training images, 1,000 test images"),
    "hinton": Protocol("hinton", 60_000, 10_000, "Hinton & Salakhutdinov's: all 60,000 training, 10,000 test images"),
}


@dataclass(frozen=True)
class Split:
    train: np.ndarray  # (N, 784) uint8
    test: np.ndarray
    train_labels: np.ndarray
    test_labels: np.ndarray


def load_split(folder: Path, protocol: str) -> Split:
    """The protocol's training and test images (flattened uint8) and labels from ``folder``."""
    p = PROTOCOLS[protocol]

    def images(prefix: str, n: int) -> np.ndarray:
        arr = read_idx(folder / f"{prefix}-images-idx3-ubyte.gz")
        if arr.ndim != 3 or arr.shape[1:] != (SIDE, SIDE) or len(arr) < n:
            raise CaecError(f"{folder}: {prefix} images are {arr.shape}, need at least {n} of {SIDE}x{SIDE}")
        return arr[:n].reshape(n, PIXELS)

    def labels(prefix: str, n: int) -> np.ndarray:
        return read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz")[:n]

    return Split(images("train", p.train), images("t10k", p.test), labels("train", p.train), labels("t10k", p.test))


def squared_error_per_image(original: np.ndarray, decoded: np.ndarray) -> float:
    """The paper's measure: the squared error summed over an image's pixels (in [0, 1]),
    averaged over the images. Either argument may be uint8 (0..255) or float in [0, 1]."""

    def unit(a: np.ndarray) -> np.ndarray:
        a = np.asarray(a)
        a = a.astype(np.float64) / 255.0 if a.dtype == np.uint8 else a.astype(np.float64)
        return a.reshape(len(a), -1)

    return float(((unit(original) - unit(decoded)) ** 2).sum(axis=1).mean())


def psnr_of_error(error: float, pixels: int = PIXELS) -> float:
    """PSNR (peak 1) of an average squared error per image of ``pixels`` pixels."""
    return float(10 * np.log10(pixels / error)) if error > 0 else float("inf")
