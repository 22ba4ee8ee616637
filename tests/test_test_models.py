"""The tests run the tiny models made by tests/conftest.py, not the shipped weights: the
library's, the CLI's and the evaluation's default model is the tiny family for the session,
and a file encoded with the defaults is made by a tiny member."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from typer.testing import CliRunner

from cae_codec import api, zoo
from cae_codec.cae.codec import FamilyCodec
from cae_codec.cli import app
from cae_codec.registry import DEFAULT_CODEC
from tests.conftest import TINY_FAMILY, maker_of, smooth_image


def test_the_default_model_is_the_tiny_family(tiny_models: Path, codec) -> None:
    found = zoo.resolve(api.DEFAULT_MODEL)
    assert (found.name, found.kind, found.path.parent) == (TINY_FAMILY, "family", tiny_models)
    assert isinstance(codec, FamilyCodec) and codec.name == TINY_FAMILY
    assert zoo.default_model(DEFAULT_CODEC) != TINY_FAMILY  # the shipped catalogue is untouched


def test_the_library_and_the_cli_encode_with_a_tiny_member_by_default(tiny_models: Path, rng, tmp_path: Path) -> None:
    img = smooth_image(rng, 24, 40, 3)
    by_library = api.encode(img, device="cpu")
    assert maker_of(by_library, tiny_models).startswith("tiny-")
    assert api.info(by_library)["model"].startswith("tiny-")

    Image.fromarray(img).save(tmp_path / "p.png")
    result = CliRunner().invoke(app, ["encode", str(tmp_path / "p.png"), "--device", "cpu", "--quiet"])
    assert result.exit_code == 0, result.output
    by_cli = (tmp_path / "p.cae").read_bytes()
    assert maker_of(by_cli, tiny_models).startswith("tiny-")
    assert by_cli == by_library  # the same defaults, the same model


def test_the_shipped_codec_fixture_is_the_shipped_default(shipped_codec) -> None:
    assert shipped_codec.name == zoo.default_model(DEFAULT_CODEC)
