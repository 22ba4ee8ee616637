"""Per-stage hidden widths: configs, parameter names, and a tiny trained model that codes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cae_codec import api
from cae_codec.cae.network import CAE, CAEConfig, macs_per_pixel
from cae_codec.cli import app
from cae_codec.weights import load_model
from tests.conftest import maker_of, smooth_image


def test_one_width_per_stage_equal_everywhere_is_the_single_width_network() -> None:
    one = CAE(CAEConfig(3, 64, 192, 4, 5, "factorized"))
    per_stage = CAE(CAEConfig(3, (64, 64, 64), 192, 4, 5, "factorized"))
    shapes = {k: v.shape for k, v in one.state_dict().items()}
    assert shapes == {k: v.shape for k, v in per_stage.state_dict().items()}
    assert macs_per_pixel(one.config) == macs_per_pixel(per_stage.config) == 20800
    assert one.config_dict()["hidden"] == 64  # shipped configs keep reading as they did


def test_per_stage_widths_shape_each_layer_and_mirror_in_the_decoder() -> None:
    cfg = CAEConfig(3, [8, 16, 24], 12, 4, 5)  # a list, as JSON gives it
    assert cfg.hidden == (8, 16, 24) and cfg.widths == (3, 8, 16, 24, 12)
    net = CAE(cfg)
    enc = [m.out_channels for m in net.encoder if hasattr(m, "out_channels")]
    dec = [m.out_channels for m in net.decoder if hasattr(m, "out_channels")]
    assert enc == [8, 16, 24, 12] and dec == [24, 16, 8, 3]
    assert net.config_dict()["hidden"] == [8, 16, 24]
    # 2*(3*8/4 + 8*16/16 + 16*24/64 + 24*12/256) * 25
    assert macs_per_pixel(cfg) == pytest.approx(2 * 25 * (6 + 8 + 6 + 1.125))


@pytest.mark.parametrize("hidden", [(8, 16), (8, 16, 24, 32), (8, 0, 24), (8, True, 24), (8, 16, 2000)])
def test_bad_per_stage_widths_are_refused(hidden: tuple) -> None:
    with pytest.raises(ValueError, match="hidden"):
        CAEConfig(3, hidden, 12, 4, 5)


def test_a_tiny_per_stage_model_trains_and_codes(train_dir: Path, tmp_path: Path, rng) -> None:
    out = tmp_path / "layout.safetensors"
    args = ["train", str(train_dir), "-o", str(out), "--patch-size", "32", "--batch-size", "2", "--steps", "3"]
    args += ["--hidden", "4,8", "--latent", "6", "--stages", "3", "--max-images", "4", "--pca-samples", "500"]
    result = CliRunner().invoke(app, [*args, "--device", "cpu", "--seed", "1"])
    assert result.exit_code == 0, result.output
    model = load_model(out)
    assert model.config["hidden"] == [4, 8] and model.metadata["train_config"]["hidden"] == [4, 8]
    img = smooth_image(rng, 24, 40, 3)
    data = api.encode(img, model=str(out), device="cpu")
    assert maker_of(data, tmp_path) == "layout"
    assert api.decode(data, model=str(out), device="cpu").shape == img.shape


@pytest.mark.parametrize("hidden", ["4,x", "4,8,16", "0"])
def test_bad_hidden_option_is_a_usage_error(train_dir: Path, tmp_path: Path, hidden: str) -> None:
    result = CliRunner().invoke(
        app, ["train", str(train_dir), "-o", str(tmp_path / "m.safetensors"), "--stages", "3", "--hidden", hidden]
    )
    assert result.exit_code == 2 and "--hidden" in result.output
    assert not (tmp_path / "m.safetensors").exists()


def test_shipped_models_still_load_with_one_width(codec) -> None:
    from cae_codec.cae.codec import plain_codecs

    for c in plain_codecs(codec):
        assert isinstance(c.model.config["hidden"], int)
    assert np.isfinite(macs_per_pixel(CAEConfig(**plain_codecs(codec)[0].model.config)))


def test_a_decoder_of_its_own_widths_shapes_only_the_decoder() -> None:
    cfg = CAEConfig(3, 8, 12, 4, 5, decoder_hidden=[16, 24, 32])  # a list, as JSON gives it
    assert cfg.widths == (3, 8, 8, 8, 12) and cfg.decoder_widths == (3, 16, 24, 32, 12)
    net = CAE(cfg)
    enc = [m.out_channels for m in net.encoder if hasattr(m, "out_channels")]
    dec = [m.out_channels for m in net.decoder if hasattr(m, "out_channels")]
    assert enc == [8, 8, 8, 12] and dec == [32, 24, 16, 3]
    assert net.config_dict()["decoder_hidden"] == [16, 24, 32]
    assert "decoder_hidden" not in CAE(CAEConfig(3, 8, 12, 4, 5)).config_dict()  # mirrored: as before
    # encoder (3*8/4 + 8*8/16 + 8*8/64 + 8*12/256) + decoder (3*16/4 + 16*24/16 + 24*32/64 + 32*12/256), x25
    assert macs_per_pixel(cfg) == pytest.approx(25 * ((6 + 4 + 1 + 0.375) + (12 + 24 + 12 + 1.5)))
    with pytest.raises(ValueError, match="decoder_hidden"):
        CAEConfig(3, 8, 12, 4, 5, decoder_hidden=(16, 24))


def test_a_tiny_model_with_a_wider_decoder_trains_codes_and_rejects_bad_widths(
    train_dir: Path, tmp_path: Path, rng
) -> None:
    out = tmp_path / "asym.safetensors"
    args = ["train", str(train_dir), "-o", str(out), "--patch-size", "32", "--batch-size", "2", "--steps", "3"]
    args += ["--hidden", "4", "--decoder-hidden", "8,12", "--latent", "6", "--stages", "3", "--max-images", "4"]
    result = CliRunner().invoke(app, [*args, "--pca-samples", "500", "--device", "cpu", "--seed", "1"])
    assert result.exit_code == 0, result.output
    model = load_model(out)
    assert model.config["decoder_hidden"] == [8, 12] and model.metadata["train_config"]["decoder_hidden"] == [8, 12]
    img = smooth_image(rng, 24, 40, 3)
    data = api.encode(img, model=str(out), device="cpu")
    assert api.decode(data, model=str(out), device="cpu").shape == img.shape
    bad = tmp_path / "bad.safetensors"
    result = CliRunner().invoke(
        app, ["train", str(train_dir), "-o", str(bad), "--stages", "3", "--decoder-hidden", "4,8,16"]
    )
    assert result.exit_code == 2 and "--decoder-hidden" in result.output and not bad.exists()
