"""research/merge_bands.py, layer_speed.py and encoder_gain.py run and refuse bad input in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.test_train import run_train

RESEARCH = Path(__file__).parents[1]


def test_merge_script_reports_one_line(band_parts: tuple[Path, Path, Path], tmp_path: Path) -> None:
    _, fine, _ = band_parts
    out = tmp_path / "m.safetensors"
    cmd = [
        sys.executable,
        str(RESEARCH / "merge_bands.py"),
        str(fine),
        str(tmp_path / "missing.safetensors"),
    ]
    r = subprocess.run([*cmd, "--boundary", "0.05", "-o", str(out)], capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.startswith("merge_bands: error: ") and r.stderr.count("\n") == 1
    assert "Traceback" not in r.stderr and not out.exists()


def test_layer_speed_times_every_layer_and_both_forms_of_each_upconv() -> None:
    script = RESEARCH / "layer_speed.py"
    ran = subprocess.run(
        [sys.executable, str(script), "--tiles", "1", "--rounds", "1"], capture_output=True, text=True, timeout=300
    )
    assert ran.returncode == 0, ran.stderr
    rows = [line for line in ran.stdout.splitlines() if line.startswith("| encoder") or line.startswith("| decoder")]
    assert len(rows) == 7 + 7 + 4  # 7 encoder layers; 7 decoder layers, the 4 UpConvs timed twice
    assert sum("(what the codec runs)" in r for r in rows) == 4
    assert "decoder 6 UpConv as sub-pixel (what the codec runs)" in ran.stdout
    bad = subprocess.run([sys.executable, str(script), "--rounds", "0"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and bad.stderr.strip().splitlines() == [
        "layer_speed: --tiles, --rounds and --threads must be at least 1"
    ]


def test_encoder_gain_compares_encoders_that_share_decoders_and_refuses_others(
    train_dir: Path, tmp_path: Path, rng
) -> None:
    from PIL import Image

    from tests.conftest import smooth_image

    base, enc, dec = (tmp_path / f"{n}.safetensors" for n in ("base", "enc", "dec"))
    run_train(train_dir, base, "--steps", "2")
    run_train(train_dir, enc, "--steps", "2", "--init", str(base), "--encoder-only", "--lr", "1e-2")
    run_train(train_dir, dec, "--steps", "2", "--init", str(base), "--decoder-only", "--lr", "1e-2")
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        Image.fromarray(smooth_image(rng, 40, 56, 3)).save(photos / f"p{i}.png")
    script = [sys.executable, str(RESEARCH / "encoder_gain.py"), "--workers", "1"]
    common = ["--base", str(base), "--dataset", str(photos), "--qualities", "1,10"]
    ok = subprocess.run([*script, *common, "--tuned", str(enc)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    rows = [line for line in ok.stdout.splitlines() if line.startswith(("| 1 |", "| 10 |"))]
    assert len(rows) == 2 and "BD-rate of" in ok.stdout
    refused = subprocess.run([*script, *common, "--tuned", str(dec)], capture_output=True, text=True)
    assert refused.returncode == 1 and refused.stderr.strip().endswith("decoders are not base's")
    assert "Traceback" not in refused.stderr
