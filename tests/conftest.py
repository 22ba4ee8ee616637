"""Shared fixtures. Data from ../shared/data is read in place, never copied into the repo."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("CAEC_SHARED_DATA", REPO.parent / "shared" / "data"))
KODAK = SHARED_DATA / "kodak"
TRAIN = SHARED_DATA / "train"
ANCHORS = SHARED_DATA / "anchors" / "compressai_kodak"


@pytest.fixture(scope="session")
def kodak_dir() -> Path:
    if not (KODAK / "kodim01.png").is_file():
        pytest.skip(f"Kodak images not found in {KODAK} (set CAEC_SHARED_DATA to the shared/data folder)")
    return KODAK


@pytest.fixture(scope="session")
def train_dir() -> Path:
    if not TRAIN.is_dir() or not any(TRAIN.iterdir()):
        pytest.skip(f"training images not found in {TRAIN}")
    return TRAIN


@pytest.fixture(scope="session")
def anchors_dir() -> Path:
    """CompressAI's published Kodak curves (JSON), as copied under shared/data/anchors."""
    if not (ANCHORS / "jpeg2000.json").is_file():
        pytest.skip(f"CompressAI anchor curves not found in {ANCHORS} (set CAEC_SHARED_DATA to the shared/data folder)")
    return ANCHORS


@pytest.fixture(scope="session")
def codec():
    """The shipped model (or $CAEC_MODEL) on CPU, loaded once per test session."""
    from cae_codec.api import get_codec

    return get_codec(device="cpu")


def default_weights() -> Path:
    """The weights file behind the default model; for a family, the member that serves the
    default --quality (the model named in files encoded with the defaults)."""
    from cae_codec import api, quant
    from cae_codec.family import read_family, resolve_family
    from cae_codec.modelfiles import resolve_model_path

    family_path = resolve_family(api.DEFAULT_MODEL)
    if family_path is None:
        return resolve_model_path(api.DEFAULT_MODEL)
    family = read_family(family_path)
    return family.member_path(family.member_for(quant.step_for_quality(quant.QUALITY_DEFAULT)).model)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def smooth_image(rng: np.random.Generator, h: int, w: int, c: int) -> np.ndarray:
    """A photo-like test image: smooth gradients plus mild noise (pure noise is not what codecs are for)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    chans = []
    for k in range(c):
        base = 128 + 90 * np.sin(xx / (9.0 + 4 * k) + k) * np.cos(yy / (13.0 + 3 * k))
        chans.append(base + rng.normal(0, 4, (h, w)))
    return np.clip(np.stack(chans, axis=2), 0, 255).astype(np.uint8)
