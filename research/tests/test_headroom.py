"""research/headroom.py: its bounds and layouts are what they claim, and its own decoder is the codec's;
the research scripts refuse bad settings in one line."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

from cae_codec import api, container
from cae_codec.cae import payload
from cae_codec.stages import quant
from tests.conftest import smooth_image

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def headroom() -> ModuleType:
    spec = importlib.util.spec_from_file_location("headroom", ROOT / "research" / "headroom.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_entropies(headroom, rng) -> None:
    assert headroom.entropy_bits(np.array([0, 0, 1, 1])) == pytest.approx(4.0)
    assert headroom.entropy_bits(np.zeros(10)) == 0.0
    plane = np.where(rng.random((20, 30)) < 0.3, rng.integers(-3, 4, (20, 30)), 0)
    # conditioning never raises the empirical entropy
    assert headroom.context_entropy_bits(plane) <= headroom.entropy_bits(plane) + 1e-9


def test_interleaving_puts_the_components_of_one_place_side_by_side(headroom, rng) -> None:
    q = rng.integers(-50, 50, (11, 3, 5)).astype(np.int16)
    grouped = headroom.interleaved(q, 2)
    assert grouped.shape == (3, 6, 10)  # 11 components padded to 12, 4 per group
    assert grouped[1, 2 * 2 + 1, 2 * 4 + 0] == q[4 + 2, 2, 4]  # group 1, component 2 at (y=2, x=4)
    assert sorted(grouped.ravel().tolist()) == sorted([*q.ravel().tolist(), *[0] * 15])


def test_tiles_round_trip(headroom, rng) -> None:
    y = rng.standard_normal((6, 16, 24))
    tiles = headroom.to_tiles(y, 8)
    assert tiles.shape == (6, 64, 6)
    assert np.array_equal(tiles[1, 0], y[:, 0, 8])  # second tile of the first row, its first position
    assert np.array_equal(headroom.from_tiles(tiles, 16, 24, 8), y)


def test_the_scripts_decoder_is_the_codecs(headroom, rng) -> None:
    codec = api.get_codec(api.DEFAULT_MODEL, "cpu")
    plain, step = headroom.member_at(codec, 7)
    img = smooth_image(rng, 130, 260, 3)
    box = container.parse(plain.pack(plain.analyse(img), step))
    p = payload.params(box)
    side = 128 // plain.model.stride
    h, w = p.padded_height // plain.model.stride, p.padded_width // plain.model.stride
    q = np.zeros((plain.model.latent_channels, h, w), np.float32)
    q[: p.components] = quant.dequantize(payload.read_components(box, p, h, w), p.step)
    stored = plain.basis.numpy().astype(np.float64)
    labels = np.zeros(len(headroom.to_tiles(q, side)), int)
    rec = headroom.synthesize(plain, q, [stored], labels, p.step, 130, 260)
    assert np.abs(rec.astype(int) - plain.decode(box)).max() <= 1


def test_clustered_bases_are_orthonormal(headroom, rng) -> None:
    tiles = rng.standard_normal((40, 16, 6)) * np.linspace(3, 0.1, 6)
    bases = headroom.fit_clustered_bases(tiles, np.eye(6), 2, 0.5)
    assert len(bases) == 2
    for b in bases:
        assert np.allclose(b.T @ b, np.eye(6), atol=1e-9)


def test_only_lone_ones_below_the_threshold_are_zeroed(headroom) -> None:
    step, deadzone = 2.0, 0.1
    z = np.zeros((6, 6), dtype=np.float32)
    z[0, 0] = 1.3  # lone 1 (0.65 steps): under 0.5 + 0.1 + 0.3
    z[0, 5] = 1.9  # lone 1 (0.95 steps): over the threshold, kept
    z[3, 3], z[4, 4] = 1.3, 1.3  # two 1s touching diagonally: neither is alone
    z[5, 0] = -5.0  # a lone 3 (-2.5 steps rounds away from zero): only 1s are zeroed
    q = headroom.zero_isolated_ones(z, step, deadzone, 0.3)
    plain = quant.quantize(z, step, deadzone)
    assert plain[0, 0] == 1 and q[0, 0] == 0
    assert q[0, 5] == 1 and q[3, 3] == q[4, 4] == 1 and q[5, 0] == plain[5, 0] == -2
    assert q.dtype == np.int16 and np.count_nonzero(q != plain) == 1


def test_chroma_lowpass_keeps_luma_and_flattens_chroma_detail(headroom) -> None:
    grey = np.full((8, 8, 3), 120, np.uint8)
    grey[:, :4] = 30  # luma detail only: nothing for the chroma low-pass to remove
    assert np.abs(headroom.chroma_lowpassed(grey, 2).astype(int) - grey).max() <= 1
    checker = np.full((8, 8, 3), 128, np.uint8)
    checker[::2, ::2, 0] = checker[1::2, 1::2, 0] = 160  # a redder checkerboard: chroma detail
    out = headroom.ycbcr_planes(headroom.chroma_lowpassed(checker, 2))
    ref = headroom.ycbcr_planes(checker)
    assert np.ptp(out[1:], axis=(1, 2)).max() < 2 < 5 < np.ptp(ref[1:], axis=(1, 2)).min()
    assert np.abs(out[0] - ref[0]).max() < 1.5  # luma stays, to 8-bit rounding


def test_every_check_runs_on_a_tiny_dataset(tmp_path: Path, rng) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(smooth_image(rng, 128, 256, 3)).save(photos / "a.png")
    args = ["--dataset", str(photos), "--images", "1", "--qualities", "2,8", "--steps", "0.5", "--keep", "64"]
    args += ["--clusters", "2", "--train", str(photos), "--targets", "1", "--bases", "0.4", "--deadzones", "0.06"]
    args += ["--decoder-iterations", "3", "--isolated", "0.3", "--alphas", "1", "--sensitivity-images", "1"]
    args += ["--chroma-factors", "2"]
    result = subprocess.run(
        [sys.executable, str(ROOT / "research" / "headroom.py"), *args], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    headers = ("| quality | JPEG 2000 (bpp)", "| quality | shipped latent", "| step | bpp", "| variant |", "| bpp |")
    headers += ("| member | dead zone |", "| isolated +-1 zeroed below (steps) |", "| member | step | s_k / s_mean")
    headers += ("| alpha 0 (equal steps, shipped) | +0.00% |",)
    headers += ("| 5 | OpenJPEG |", "| averaged over 2x2 and interpolated back |")
    assert all(h in result.stdout for h in headers)
    assert "per-image PCA (oracle)" in result.stdout and "caec 0.4 bpp + residual" in result.stdout
    # a latent optimized for the decoder reconstructs better than the encoder's, step by step
    mean_row = next(ln for ln in result.stdout.splitlines() if ln.startswith("| mean |"))
    psnr = [float(v) for v in mean_row.strip("| ").split("|")[1:]]
    assert len(psnr) == 4 and psnr == sorted(psnr) and psnr[-1] > psnr[0]


def _one_line_failure(script: str, args: list[str]) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "research" / script), *args], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_headroom_refuses_an_unknown_check_before_running_any(tmp_path: Path) -> None:
    line = _one_line_failure("headroom.py", ["--checks", "entropy,entropyy", "--dataset", str(tmp_path)])
    known = "entropy, layout, ceiling, decoder, pca, hybrid, deadzone, isolated, components, chroma"
    assert line == f"headroom: unknown check 'entropyy' (choose from {known})"


def test_headroom_refuses_a_folder_without_photos(tmp_path: Path) -> None:
    line = _one_line_failure("headroom.py", ["--checks", "entropy", "--dataset", str(tmp_path)])
    assert line.startswith("headroom: no images (") and line.endswith(f") in {tmp_path}")


@pytest.mark.parametrize(
    ("script", "args", "expected"),
    [
        ("refine_sweep.py", ["--lr", "0.01,fast"], "expected comma-separated numbers, got '0.01,fast'"),
        ("refine_sweep.py", ["--qualities", "0,4"], "qualities must be 1..10"),
        ("refine_sweep.py", ["--iterations", "0"], "iterations must be 1..1000"),
        ("refine_sweep.py", ["--dataset", "{empty}"], "no photos in {empty}"),
        ("layout_speed.py", ["64", "32,x"], "layout '32,x': widths are integers separated by commas"),
        ("layout_speed.py", ["64", "8/16/32"], "layout '8/16/32': at most one '/' (encoder/decoder widths)"),
        ("layout_speed.py", ["64/8,16"], "layout '64/8,16': CAE config decoder_hidden=(8, 16): 3 widths in 1..1024"),
        (
            "headroom.py",
            ["--isolated", "0.3,abc"],
            "headroom: --isolated '0.3,abc': expected floats separated by commas",
        ),
        ("headroom.py", ["--chroma-factors", "2.5"], "headroom: --chroma-factors '2.5': expected ints separated by"),
        ("headroom.py", ["--alphas", "half"], "headroom: --alphas 'half': expected floats separated by commas"),
        (
            "encoder_gain.py",
            ["--base", "cae-gdn-v3", "--tuned", "cae-gdn-v3", "--qualities", "0-3"],
            "encoder_gain: --qualities '0-3': give qualities in 1..10",
        ),
        ("encoder_gain.py", ["--base", "cae-gdn-v9", "--tuned", "cae-gdn-v3"], "encoder_gain: model 'cae-gdn-v9' not"),
        (
            "encoder_gain.py",
            ["--base", "cae-gdn-v3", "--tuned", "cae-gdn-v3", "--dataset", "{empty}"],
            "encoder_gain: no .png images in {empty}",
        ),
    ],
)
def test_research_scripts_refuse_bad_settings_in_one_line(
    tmp_path: Path, script: str, args: list[str], expected: str
) -> None:
    args = [a.replace("{empty}", str(tmp_path)) for a in args]
    line = _one_line_failure(script, args)
    assert line.startswith(expected.replace("{empty}", str(tmp_path))), line
