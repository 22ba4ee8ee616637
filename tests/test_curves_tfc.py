"""Published curves in tensorflow-compression's layout (`caec bdrate --reference X.txt`)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from cae_codec.errors import CaecError
from cae_codec.evaluate.curves import RDCurve


def write(folder: Path, metric: str, name: str, rows: list[tuple[float, float]], title: str = "Paper 2017") -> Path:
    (folder / metric).mkdir(parents=True, exist_ok=True)
    path = folder / metric / name
    lines = [f'# Aggregate rate-distortion data for "{title}" on kodak.', "#"]
    path.write_text("\n".join(lines + [f"{b:f}, {v:f}" for b, v in rows]) + "\n")
    return path


def test_a_tfc_curve_reads_both_metrics_from_either_file(tmp_path: Path) -> None:
    psnr = write(tmp_path, "PSNR_sRGB_RGB", "p.txt", [(0.25, 25.0), (0.5, 28.0), (1.0, 31.0)])
    msssim = write(tmp_path, "MS-SSIM_sRGB_RGB", "p.txt", [(0.25, 0.90), (0.75, 0.96)])
    for path in (psnr, msssim):
        curve = RDCurve.load(path)
        assert curve.name == "Paper 2017" and curve.bpp == [0.25, 0.5, 1.0] and curve.psnr == [25.0, 28.0, 31.0]
        assert curve.ms_ssim[:2] == pytest.approx([0.90, 0.93]) and math.isnan(curve.ms_ssim[2])


def test_a_tfc_curve_without_its_psnr_or_with_a_bad_line_is_one_error(tmp_path: Path) -> None:
    only = write(tmp_path, "MS-SSIM_sRGB_RGB", "q.txt", [(0.25, 0.9)])
    with pytest.raises(CaecError, match="PSNR_sRGB_RGB"):
        RDCurve.load(only)
    bad = tmp_path / "PSNR_sRGB_RGB" / "r.txt"
    bad.parent.mkdir(exist_ok=True)
    bad.write_text("0.25; 25\n")
    with pytest.raises(CaecError, match="not a 'bpp, value' line"):
        RDCurve.load(bad)
    with pytest.raises(CaecError, match="folder"):
        RDCurve.load(tmp_path / "elsewhere.txt")
