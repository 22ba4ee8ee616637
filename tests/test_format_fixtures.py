"""Files written by earlier caec versions keep decoding to the same pixels.

tests/fixtures/v1-*.cae were written by caec 0.1.0 (container version 1, the cae-gdn-v3
members) and v1-*.png are their decoded pixels on the machine that wrote them. Float
synthesis may differ by one level between CPUs (docs/format.md, "Conformance"), so the
bound here is one level; on the machine that made them they decode bit-identically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cae_codec import api, zoo

FIXTURES = Path(__file__).resolve().parent / "fixtures"
V1_FILES = sorted(FIXTURES.glob("v1-*.cae"))


def test_there_are_version_1_fixtures() -> None:
    assert len(V1_FILES) >= 3


@pytest.mark.parametrize("path", V1_FILES, ids=lambda p: p.stem)
def test_version_1_files_decode_to_their_pixels(path: Path) -> None:
    expected = np.asarray(Image.open(path.with_suffix(".png")))
    if expected.ndim == 2:
        expected = expected[:, :, None]
    got = api.decode(path.read_bytes(), device="cpu")
    assert got.shape == expected.shape
    diff = np.abs(got.astype(np.int16) - expected.astype(np.int16))
    assert diff.max() <= 1, f"{int((diff > 0).sum())} samples differ, by up to {diff.max()}"


@pytest.mark.parametrize("path", V1_FILES, ids=lambda p: p.stem)
def test_info_on_version_1_files_says_so_and_shows_their_header(path: Path) -> None:
    fields = api.info(path.read_bytes())
    quality = int(path.stem.rsplit("-q", 1)[1])
    assert fields["format_version"] == 1 and fields["codec"] == "cae-pca-j2k"
    # a version-1 header names the member and holds all 16 bytes of its weights hash
    assert fields["model"] in zoo.catalogue().families["cae-gdn-v3"].members
    assert fields["weights_hash"] == zoo.catalogue().models[fields["model"]].weights_hash.hex()
    assert fields["quality"] == quality and fields["tile"] == 128 and fields["latent_channels"] == 192
    assert "PARM" not in fields["chunks"] and fields["file_bytes"] == path.stat().st_size
