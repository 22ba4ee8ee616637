"""research/family_gain.py: the step gain that joins two members' rates."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from cae_codec import api
from cae_codec.imageio import IMAGE_SUFFIXES
from tests.conftest import REPO, smooth_image

SCRIPT = REPO / "research" / "family_gain.py"


def test_family_gain_script_finds_the_step_that_matches_the_rate(tiny_zoo: Path, rng) -> None:
    spec = importlib.util.spec_from_file_location("family_gain", SCRIPT)
    assert spec is not None and spec.loader is not None
    fg = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fg)
    fine, coarse = api.get_codec("tiny-fine", "cpu"), api.get_codec("tiny-coarse", "cpu")
    images = [smooth_image(rng, 96, 128, 3), smooth_image(rng, 64, 160, 3)]
    # untrained tiny models spend bits at fine steps only: at 1.0 their files are all header
    target, step = fg.fit_step(fine, coarse, images, 0.05)
    reached = fg.mean_bpp(coarse, [coarse.analyse(i) for i in images], step)
    # file sizes move in whole bytes, so the match is to within a few of them per image
    assert reached == pytest.approx(target, rel=0.05)
    assert fg.mean_bpp(coarse, [coarse.analyse(i) for i in images], step * 0.8) > target


def test_family_gain_script_refuses_a_folder_without_photos_in_one_line(tiny_zoo: Path, tmp_path: Path) -> None:
    args = [sys.executable, str(SCRIPT), "--fine", "tiny-fine", "--coarse", "tiny-coarse", "--boundary", "1"]
    result = subprocess.run([*args, "--dataset", str(tmp_path)], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    expected = f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {tmp_path}"
    assert result.stderr.strip().splitlines() == [expected]
