"""Encode-time latent refinement (``caec encode --refine N``, cae_codec.cae.refine)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from cae_codec import api, container
from cae_codec.cae import payload
from cae_codec.cae.codec import member_of, plain_codecs
from cae_codec.cae.evaluation import CaecCodec
from cae_codec.cae.refine import refine_latent, relaxed_quantize
from cae_codec.cli import app
from cae_codec.errors import CaecError
from cae_codec.evaluate.metrics import psnr_rgb
from cae_codec.imageio import open_image
from cae_codec.stages import quant
from tests.conftest import smooth_image


@pytest.fixture(scope="module")
def crop(kodak_dir: Path) -> np.ndarray:
    """A real photo, 2 x 3 tiles, the bottom row and right column cut short (edge tiles)."""
    return np.ascontiguousarray(open_image(kodak_dir / "kodim23.png")[100:330, 200:540])


def _objective(img: np.ndarray, data: bytes, codec) -> float:
    """What refinement minimizes, measured on the real file: distortion weighted as in
    cae_codec.cae.refine plus bits per pixel."""
    from cae_codec.cae.refine import RefineSettings

    rec = codec.decode(container.parse(data))
    step = payload.params(container.parse(data)).step
    mse = float(np.mean((rec.astype(np.float64) - img.astype(np.float64)) ** 2))
    return RefineSettings().distortion_weight / step**2 * mse + 8 * len(data) / (img.shape[0] * img.shape[1])


@pytest.mark.parametrize("quality", [2, 7])
def test_refined_files_have_a_lower_rate_distortion_cost_and_decode_as_usual(codec, crop, quality: int) -> None:
    plain = codec.encode(crop, quality=quality)
    refined = codec.encode(crop, quality=quality, refine=12)
    a, b = container.parse(plain), container.parse(refined)
    pa, pb = payload.params(a), payload.params(b)
    # the same file but for the integers: model, step, quality and layout are kept
    assert (a.model_number, a.weights_hash, pa.step, pa.quality, pa.latent_channels) == (
        b.model_number,
        b.weights_hash,
        pb.step,
        pb.quality,
        pb.latent_channels,
    )
    assert plain != refined
    assert _objective(crop, refined, codec) < 0.99 * _objective(crop, plain, codec)
    # decoded by the ordinary decoder of the member the file names, with no refinement state
    rec = api.decode(refined, device="cpu")
    assert rec.shape == crop.shape
    assert psnr_rgb(crop, rec) > psnr_rgb(crop, codec.decode(container.parse(plain)))


def test_refinement_is_seeded_so_the_same_machine_makes_the_same_file(codec, crop) -> None:
    assert codec.encode(crop, quality=5, refine=4) == codec.encode(crop, quality=5, refine=4)


def test_zero_iterations_is_the_plain_encoder(codec, crop) -> None:
    member = plain_codecs(codec)[0]
    a = member.analyse(crop)
    assert refine_latent(member, a, crop, 1.0, 0) is a
    assert codec.encode(crop, quality=6, refine=0) == codec.encode(crop, quality=6)
    with pytest.raises(ValueError, match=r"0\.\.1000"):
        refine_latent(member, a, crop, 1.0, quant.REFINE_MAX + 1)


@pytest.mark.parametrize("bpp", [0.3, 1.2])
def test_bpp_with_refinement_stays_within_the_budget(codec, crop, bpp: float) -> None:
    data = codec.encode(crop, bpp=bpp, refine=6)
    assert 8 * len(data) <= bpp * crop.shape[0] * crop.shape[1]
    # the budget is used: a refined file is not far below the plain one at the same target
    plain = codec.encode(crop, bpp=bpp)
    assert len(data) > 0.9 * len(plain)


def test_the_shared_network_keeps_its_gradient_flags(codec, crop) -> None:
    member = plain_codecs(codec)[0]
    flags = [p.requires_grad for p in member.net.parameters()]
    refine_latent(member, member.analyse(crop), crop, 0.5, 2)
    assert [p.requires_grad for p in member.net.parameters()] == flags
    assert all(p.grad is None for p in member.net.parameters())


@pytest.mark.parametrize("channels", [1, 2, 4])
def test_grey_and_alpha_images_refine_and_keep_their_channels(codec, rng, channels: int) -> None:
    img = smooth_image(rng, 70, 150, channels)
    data = codec.encode(img, quality=6, refine=3)
    rec = codec.decode(container.parse(data))
    assert rec.shape == img.shape
    if channels in (2, 4):
        assert np.array_equal(rec[:, :, -1], img[:, :, -1])  # alpha is lossless and untouched


def test_hard_limit_of_the_relaxation_is_the_encoders_quantizer() -> None:
    g = torch.Generator().manual_seed(0)
    noise = lambda n: torch.rand((2, n), generator=g)  # noqa: E731
    z = torch.randn(4000) * 3
    step = 0.7
    # away from the decision thresholds, where a cold soft rounding is certain
    frac = (z.abs() / step - quant.DEADZONE) % 1
    z = z[(frac - 0.5).abs() > 0.05]
    cold = relaxed_quantize(z, step, quant.DEADZONE, tau=1e-3, uniform=noise(len(z)))
    assert torch.allclose(cold, quant.quantize_dequantize(z, step, quant.DEADZONE), atol=1e-4)
    # warm, it is a mix of the two neighbouring lattice points, and gradients flow through it
    w = z.clone().requires_grad_(True)
    warm = relaxed_quantize(w, step, quant.DEADZONE, tau=0.5, uniform=noise(len(w)))
    warm.sum().backward()
    assert w.grad is not None and float(w.grad.abs().sum()) > 0


def test_the_evaluation_refines_the_searched_file_within_its_budget(codec, crop) -> None:
    budget = int(0.5 * crop.shape[0] * crop.shape[1] / 8)
    searched = codec.encode(crop, bpp=0.5)
    plain, refining = CaecCodec(codec), CaecCodec(codec, refine=5)
    assert plain.finish(crop, searched, budget) == searched
    data = refining.finish(crop, searched, budget)
    assert len(data) <= budget and data != searched
    # the member behind the file, found by its weights hash, is the model its number names
    assert member_of(codec, container.parse(data)).name == api.info(data)["model"]
    assert refining.describe()["settings"]["refine"] == 5


def test_cli_encode_refine_and_its_bad_values(tmp_path: Path, rng) -> None:
    photo = tmp_path / "p.png"
    Image.fromarray(smooth_image(rng, 60, 140, 3)).save(photo)
    runner = CliRunner()
    r = runner.invoke(app, ["encode", str(photo), "-q", "5", "--refine", "3"])
    assert r.exit_code == 0, r.output
    assert api.info(photo.with_suffix(".cae").read_bytes())["quality"] == 5
    for bad in ("-1", str(quant.REFINE_MAX + 1), "many"):
        r = runner.invoke(app, ["encode", str(photo), "-o", str(tmp_path / "x.cae"), "--refine", bad])
        # a usage error, as for every other option: exit 2, the option named, no traceback
        assert r.exit_code == 2 and "--refine" in r.output and "Traceback" not in r.output
        assert not (tmp_path / "x.cae").exists()
    with pytest.raises(CaecError, match="refine must be"):
        api.encode(smooth_image(rng, 20, 20, 3), refine=-1)


def test_in_place_refinement_is_the_same_as_on_a_copy(codec, crop) -> None:
    member = plain_codecs(codec)[0]
    a = member.analyse(crop)
    before = a.z.copy()
    copied = refine_latent(member, a, crop, 0.7, 3)
    assert np.array_equal(a.z, before) and copied.z is not a.z  # the caller's latent is untouched
    in_place = refine_latent(member, a, crop, 0.7, 3, in_place=True)
    assert in_place.z is a.z and np.array_equal(in_place.z, copied.z)


def test_refinement_does_not_depend_on_how_tiles_are_batched(codec, crop, monkeypatch) -> None:
    import cae_codec.cae.refine as refine_module

    member = plain_codecs(codec)[0]
    a = member.analyse(crop)
    batched = refine_latent(member, a, crop, 0.7, 4)
    monkeypatch.setattr(refine_module, "BATCH_TILES", 1)
    one_by_one = refine_latent(member, a, crop, 0.7, 4)
    # the same random streams and gradients per tile; only float summation order may differ
    assert np.allclose(batched.z, one_by_one.z, atol=1e-3 * 0.7)
