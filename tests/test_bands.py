"""Models with one decoder per rate band: routing by step, assembly from decoder-only runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from cae_codec import container
from cae_codec.cae.codec import CaePcaJ2kCodec
from cae_codec.cae.network import CAE, CAEConfig
from cae_codec.errors import ModelError
from cae_codec.weights import load_model, merge_band_decoders
from tests.test_train import run_train

CPU = torch.device("cpu")


def _banded() -> CAE:
    torch.manual_seed(0)
    net = CAE(CAEConfig(hidden=4, latent=3, stages=2, decoder_bands=(1.0, 4.0)))
    with torch.no_grad():  # make the three decoders tell themselves apart
        for i, dec in enumerate(net.decoders()):
            for p in dec.parameters():
                p.add_(0.3 * i)
    return net.eval()


def test_the_step_picks_the_bands_decoder() -> None:
    net = _banded()
    y = torch.randn(4, 3, 2, 2)
    per_band = [dec(y) + 0.5 for dec in net.decoders()]
    for step, band in ((0.25, 0), (0.999, 0), (1.0, 1), (3.9, 1), (4.0, 2), (40.0, 2)):
        assert net.band_of(step) == band
        assert torch.equal(net.decode(y, step), per_band[band]), step
    assert not torch.allclose(per_band[0], per_band[1])
    with pytest.raises(ValueError, match="needs the quantization step"):
        net.decode(y)


def test_per_sample_steps_route_each_sample_like_a_single_step() -> None:
    net = _banded()
    y = torch.randn(5, 3, 2, 2)
    steps = torch.tensor([0.5, 5.0, 1.5, 0.5, 8.0]).view(-1, 1, 1, 1)
    got = net.decode(y, steps)
    for i in range(5):
        torch.testing.assert_close(got[i : i + 1], net.decode(y[i : i + 1], float(steps[i])))


def test_band_config_is_checked_and_single_decoder_configs_are_unchanged() -> None:
    for bad in ((2.0, 1.0), (1.0, 1.0), (-1.0,)):
        with pytest.raises(ValueError, match="decoder_bands"):
            CAEConfig(decoder_bands=bad)
    assert "decoder_bands" not in CAE(CAEConfig(hidden=4, latent=3, stages=2)).config_dict()
    assert CAEConfig(decoder_bands=[1, 2]).decoder_bands == (1.0, 2.0)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def band_parts(train_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return make_band_parts(train_dir, tmp_path_factory.mktemp("bands"))


def make_band_parts(train_dir: Path, d: Path) -> tuple[Path, Path, Path]:
    """A base model and two decoders fine-tuned from it for a fine and a coarse band (research/tests use it too)."""
    base, fine, coarse = d / "base.safetensors", d / "fine.safetensors", d / "coarse.safetensors"
    run_train(train_dir, base, "--steps", "2")
    tune = ["--init", str(base), "--decoder-only", "--lr", "1e-2", "--steps", "2"]
    run_train(train_dir, fine, *tune, "--step-min", "0.02", "--step-max", "0.05")
    run_train(train_dir, coarse, *tune, "--step-min", "0.05", "--step-max", "0.2")
    return base, fine, coarse


def test_merged_model_decodes_each_band_like_its_part(band_parts: tuple[Path, Path, Path], tmp_path: Path) -> None:
    base, fine, coarse = band_parts
    merged = tmp_path / "merged.safetensors"
    merge_band_decoders([fine, coarse], [0.05], merged, "test merge")
    model = load_model(merged)
    assert model.config["decoder_bands"] == [0.05] and [b["from"] for b in model.metadata["bands"]] == [
        "fine",
        "coarse",
    ]
    # base (2 steps) + two decoder-only runs (2 steps each), batch 2 of 32x32 crops, each counted once
    assert model.metadata["total_patch128_equivalents"] == pytest.approx(
        6 * 2 * 32 * 32 / 128**2, abs=0.06
    )  # recorded to 0.1
    img = (np.arange(40 * 48 * 3) % 251).reshape(40, 48, 3).astype(np.uint8)
    codecs = {p: CaePcaJ2kCodec(load_model(p), CPU) for p in (base, fine, coarse, merged)}
    for step, part in ((0.03, fine), (0.1, coarse)):
        data = codecs[merged].pack(codecs[merged].analyse(img), step)
        ref = codecs[part].pack(codecs[part].analyse(img), step)
        box, ref_box = container.parse(data), container.parse(ref)
        assert box.chunks == ref_box.chunks, "every band decodes the same bitstream"
        np.testing.assert_array_equal(codecs[merged].decode(box), codecs[part].decode(ref_box))


def test_merge_refuses_parts_with_different_encoders(
    band_parts: tuple[Path, Path, Path], train_dir: Path, tmp_path: Path
) -> None:
    _, fine, _ = band_parts
    other = tmp_path / "other.safetensors"
    run_train(train_dir, other, "--steps", "2", "--seed", "9")
    with pytest.raises(ModelError, match="does not share the encoder"):
        merge_band_decoders([fine, other], [0.05], tmp_path / "m.safetensors")
    assert not (tmp_path / "m.safetensors").exists()


def test_decoder_only_training_of_a_banded_model_trains_every_band(
    band_parts: tuple[Path, Path, Path], train_dir: Path, tmp_path: Path
) -> None:
    _, fine, coarse = band_parts
    merged = tmp_path / "merged.safetensors"
    merge_band_decoders([fine, coarse], [0.05], merged)
    tuned = tmp_path / "tuned.safetensors"
    run_train(
        train_dir,
        tuned,
        "--init",
        str(merged),
        "--decoder-only",
        "--lr",
        "1e-2",
        "--steps",
        "4",
        "--step-min",
        "0.02",
        "--step-max",
        "0.2",
    )
    a, b = load_model(merged).network, load_model(tuned).network
    for da, db in zip(a.decoders(), b.decoders(), strict=True):  # type: ignore[operator]
        assert any(not torch.equal(p, q) for p, q in zip(da.parameters(), db.parameters(), strict=True))
    meta = load_model(tuned).metadata
    assert load_model(tuned).config["decoder_bands"] == [0.05]
    assert meta["total_patch128_equivalents"] == pytest.approx((2 + 2 + 2 + 4) * 2 * 32 * 32 / 128**2, abs=0.06), (
        "the runs behind a merged model stay counted when it is trained further"
    )


def test_merge_refuses_wrong_part_counts_and_banded_parts(band_parts: tuple[Path, Path, Path], tmp_path: Path) -> None:
    _, fine, coarse = band_parts
    out = tmp_path / "m.safetensors"
    for parts, bounds in (([fine], []), ([fine, coarse], []), ([fine, coarse], [0.05, 0.1])):
        with pytest.raises(ModelError, match="one boundary step fewer than parts"):
            merge_band_decoders(parts, bounds, out)
    merge_band_decoders([fine, coarse], [0.05], out)
    with pytest.raises(ModelError, match="is not a single-decoder CAE"):
        merge_band_decoders([out, coarse], [0.1], tmp_path / "again.safetensors")
    assert not (tmp_path / "again.safetensors").exists()
