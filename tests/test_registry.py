"""The house: a codec is one package plus one registry entry. A codec made for the tests
(tests/fake_codec.py: no weights, several images per file) is registered for a test and goes
through the library, every CLI command and the evaluation without any of them naming it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cae_codec import api, container, registry
from cae_codec.cli import app
from cae_codec.container import v2
from cae_codec.errors import CaecError, FormatError
from tests import fake_codec
from tests.conftest import REPO, smooth_image


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setitem(registry.CODECS, fake_codec.ID, fake_codec.INFO)
    monkeypatch.setitem(v2.CODEC_NUMBERS, fake_codec.ID, fake_codec.NUMBER)
    monkeypatch.setitem(v2.CODEC_IDS, fake_codec.NUMBER, fake_codec.ID)
    return fake_codec.ID


def test_the_registry_lists_codecs_without_importing_torch() -> None:
    code = (
        "import sys; from cae_codec import registry; "
        "print(registry.codec_ids(), 'torch' in sys.modules, 'cae_codec.cae.codec' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True).stdout
    # the codecs as this process lists them: a new codec adds itself here without a test to edit
    assert out.strip() == f"{registry.codec_ids()} False False"


def test_unknown_codecs_are_one_error() -> None:
    with pytest.raises(CaecError, match="unknown codec 'nope'"):
        registry.get("nope")
    with pytest.raises(FormatError, match="cannot decode"):
        registry.for_file("caec")  # an alias is for people: a file names a codec by its id
    assert registry.get("caec").id == registry.DEFAULT_CODEC


def test_a_registered_codec_goes_through_the_library(fake: str, rng) -> None:
    img = smooth_image(rng, 30, 44, 3)
    data = api.encode(img, codec=fake, quality=8)
    assert np.array_equal(api.decode(data), img)  # 8 bits kept: lossless
    coarse = api.decode(api.encode(img, codec=fake, quality=3))
    assert np.abs(coarse.astype(int) - img).max() < 32 and not np.array_equal(coarse, img)
    small = api.encode(img, codec=fake, size=1500)
    assert len(small) <= 1500
    fields = api.info(small)
    assert fields["codec"] == fake and fields["format_version"] == 2 and fields["images"] == 1
    with pytest.raises(CaecError, match=r"1\.\.8"):
        api.encode(img, codec=fake, quality=9)


def test_a_registered_codec_goes_through_the_cli(fake: str, tmp_path: Path, rng) -> None:
    runner = CliRunner()
    src = tmp_path / "p.png"
    Image.fromarray(smooth_image(rng, 30, 44, 3)).save(src)
    r = runner.invoke(app, ["encode", str(src), "--codec", fake, "-q", "5", "-v"])
    assert r.exit_code == 0 and "5 bits kept" in r.output, r.output
    r = runner.invoke(app, ["decode", str(tmp_path / "p.cae")])
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "p.decoded.png").size == (44, 30)
    r = runner.invoke(app, ["info", str(tmp_path / "p.cae"), "--json"])
    assert json.loads(r.output)["bits_kept"] == 5
    r = runner.invoke(app, ["models", "--codecs", "--json"])
    listed = {e["id"]: e for e in json.loads(r.output)}
    assert listed[fake]["capabilities"]["several_images"] and not listed[fake]["capabilities"]["learned"]
    r = runner.invoke(app, ["encode", str(src), "--codec", fake, "-q", "9", "-o", str(tmp_path / "x.cae")])
    assert r.exit_code == 2 and "1..8" in r.output
    r = runner.invoke(app, ["train", fake, "data"])
    assert r.exit_code == 2 and "no training command" in r.output


def test_a_file_of_several_images_decodes_to_numbered_images(fake: str, tmp_path: Path, rng) -> None:
    images = [smooth_image(rng, 12, 16, 1) for _ in range(3)]
    data = fake_codec.pack_images(images, 8)
    stack = api.decode(data)
    assert stack.shape == (3, 12, 16, 1) and all(np.array_equal(s, im) for s, im in zip(stack, images, strict=True))
    (tmp_path / "digits.cae").write_bytes(data)
    r = CliRunner().invoke(app, ["decode", str(tmp_path / "digits.cae")])
    assert r.exit_code == 0 and "3 images" in r.output, r.output
    for i, im in enumerate(images, 1):
        assert np.array_equal(np.asarray(Image.open(tmp_path / f"digits.decoded-{i}.png")), im[:, :, 0])
    r = CliRunner().invoke(app, ["decode", str(tmp_path / "digits.cae"), "-o", "-"])
    assert r.exit_code == 1 and "holds 3 images" in r.output
    assert container.parse(data).stack


def test_the_evaluation_runs_a_registered_codec(fake: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from cae_codec.evaluate import runner

    monkeypatch.setattr(runner, "CODEC_NAMES", [*runner.CODEC_NAMES, fake])
    codec = runner.make_codec(fake, "unused", "cpu")
    img = smooth_image(np.random.default_rng(3), 40, 48, 3)
    data = codec.prepare(img)(codec.knob.value(3))
    assert container.parse(data).codec == fake
    assert codec.decode(data).shape == (40, 48, 3)
