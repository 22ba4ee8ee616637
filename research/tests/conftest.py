"""The product tests' fixtures, for the research scripts' tests (run by hand: `pytest research/tests`)."""

from __future__ import annotations

from pathlib import Path

import pytest

# the hooks too: tiny_models needs what pytest_configure sets up (a run without them errored at setup)
from tests.conftest import (  # noqa: F401
    codec,
    kodak_dir,
    pytest_configure,
    pytest_unconfigure,
    rng,
    tiny_models,
    tiny_zoo,
    train_dir,
)


@pytest.fixture(scope="module")
def band_parts(train_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:  # noqa: F811
    """tests/test_bands.py's band parts. That module imports cae_codec, which must wait until
    pytest_configure has set the tests' default model: so it is imported here, not at the top."""
    from tests import test_bands

    return test_bands.make_band_parts(train_dir, tmp_path_factory.mktemp("bands"))
