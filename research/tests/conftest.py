"""The product tests' fixtures, for the research scripts' tests (run by hand: `pytest research/tests`)."""

from tests.conftest import codec, kodak_dir, rng, tiny_models, tiny_zoo, train_dir  # noqa: F401
from tests.test_bands import band_parts  # noqa: F401
